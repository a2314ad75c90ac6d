package trust

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// torsion returns a point of small order other than the identity: the
// prime-order part cancelled out of a point decoded from arbitrary bytes.
func torsion(t *testing.T) *edwards25519.Point {
	t.Helper()
	for i := byte(0); ; i++ {
		y := make([]byte, 32)
		y[0], y[1] = i, 7
		p, err := new(edwards25519.Point).SetBytes(y)
		if err != nil {
			continue
		}
		q := new(edwards25519.Point).ScalarMult(minusOne, p)
		q.Add(q, p) // [ℓ]p
		if q.Equal(edwards25519.NewIdentityPoint()) == 0 {
			return q
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePublicKey(EncodePublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKey(EncodePublicKey) = %x, %v", got, err)
	}
	unpadded := strings.TrimRight(EncodePublicKey(pub), "=")
	if got, err := ParsePublicKey(unpadded); err != nil || !got.Equal(pub) {
		t.Errorf("unpadded: %x, %v", got, err)
	}

	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		t.Fatal(err)
	}
	T := torsion(t)
	mixed := new(edwards25519.Point).Add(p, T).Bytes()
	identity := edwards25519.NewIdentityPoint().Bytes()
	// y = p + 1 is a non-canonical spelling of the identity's y = 1.
	nonCanon := make([]byte, 32)
	nonCanon[0] = 0xee
	for i := 1; i < 31; i++ {
		nonCanon[i] = 0xff
	}
	nonCanon[31] = 0x7f
	if q, err := new(edwards25519.Point).SetBytes(nonCanon); err != nil || q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		t.Fatalf("test value is not the identity: %v", err)
	}
	var offCurve []byte
	for i := byte(0); offCurve == nil; i++ {
		y := make([]byte, 32)
		y[0], y[1] = i, 9
		if _, err := new(edwards25519.Point).SetBytes(y); err != nil {
			offCurve = y
		}
	}
	std := EncodePublicKey(pub)
	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "wrong key length: 0 bytes, want 32"},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(b64(append([]byte{0xfb, 0xff}, pub[2:]...))), "bad base64"},
		{"line break", std[:20] + "\n" + std[20:], "bad base64"},
		{"space", " " + std, "bad base64"},
		{"not base64", "not a key!", "bad base64"},
		{"trailing bits", std[:42] + string(std[42]+1) + "=", "bad base64"},
		{"short", b64(pub[:31]), "wrong key length: 31 bytes, want 32"},
		{"long", b64(append(pub, 0)), "wrong key length: 33 bytes, want 32"},
		{"private key", b64(make([]byte, 64)), "wrong key length: 64 bytes, want 32"},
		{"zeros", b64(make([]byte, 32)), "weak key: a point of small order"},
		{"identity", b64(identity), "weak key: a point of small order"},
		{"order 8", b64(T.Bytes()), "weak key: a point of small order"},
		{"torsion component", b64(mixed), "weak key: not in the prime-order subgroup"},
		{"non-canonical", b64(nonCanon), "not a canonical encoding"},
		{"off the curve", b64(offCurve), "not a point of the curve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKey(tt.in)
			if got != nil {
				t.Errorf("key %x returned", got)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want a *KeyError", err)
			}
			if ke.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", ke.Reason, tt.reason)
			}
			if err.Error() != "trust: "+tt.reason {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// TestIdentityKeyForges shows why ParsePublicKey refuses small-order keys:
// with the identity as public key, crypto/ed25519 accepts a signature
// anyone can make, on any message.
func TestIdentityKeyForges(t *testing.T) {
	identity := edwards25519.NewIdentityPoint().Bytes()
	h := sha512.Sum512([]byte("anyone"))
	s, err := edwards25519.NewScalar().SetUniformBytes(h[:])
	if err != nil {
		t.Fatal(err)
	}
	// R = [s]B, S = s: [S]B = R + [k]A holds for A the identity.
	sig := append(new(edwards25519.Point).ScalarBaseMult(s).Bytes(), s.Bytes()...)
	tok := forgeSig(`{"alg":"EdDSA","kid":"x"}`, cmd, sig)
	j, err := Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(ed25519.PublicKey(identity)); err != nil {
		t.Skipf("crypto/ed25519 refuses the identity key itself now: %v", err)
	}
	if _, err := ParsePublicKey(b64(identity)); err == nil {
		t.Fatal("ParsePublicKey accepted the identity, whose signatures anyone forges")
	}
}

func forgeSig(header, payload string, sig []byte) string {
	return enc(header) + "." + enc(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestPrivateKeyText(t *testing.T) {
	pub, priv, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	text := EncodePrivateKey(priv)
	if !strings.HasSuffix(text, "\n") || strings.Count(text, "\n") != 1 {
		t.Errorf("key file text %q is not one line", text)
	}
	for _, in := range []string{text, strings.TrimSpace(text), "  " + text + "\r\n", strings.TrimRight(text, "=\n")} {
		got, err := ParsePrivateKey(in)
		if err != nil {
			t.Fatalf("ParsePrivateKey: %v", err)
		}
		if !got.Equal(priv) {
			t.Error("ParsePrivateKey(EncodePrivateKey) is another key")
		}
		tok := Sign(got, "cloud", []byte(cmd))
		if _, _, err := Verify([]byte(tok), func(string) (ed25519.PublicKey, bool) { return pub, true }); err != nil {
			t.Errorf("token signed with the read key: %v", err)
		}
	}
	for _, tt := range []struct{ in, reason string }{
		{b64(priv), "wrong key length: 64 bytes, want 32 (the seed)"},
		{b64(priv[:31]), "wrong key length: 31 bytes, want 32 (the seed)"},
		{"", "wrong key length: 0 bytes, want 32 (the seed)"},
		{"seed!", "bad base64"},
	} {
		_, err := ParsePrivateKey(tt.in)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Reason != tt.reason {
			t.Errorf("ParsePrivateKey(%.20q) = %v, want reason %q", tt.in, err, tt.reason)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	pub, _ := testKey(f, "cloud")
	f.Add(EncodePublicKey(pub))
	f.Add(b64(make([]byte, 32)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) || k != nil {
				t.Fatalf("ParsePublicKey = %x, %v", k, err)
			}
			return
		}
		if len(k) != ed25519.PublicKeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
		if again := EncodePublicKey(k); strings.TrimRight(again, "=") != strings.TrimRight(s, "=") {
			t.Fatalf("re-encoding %q differs from %q", again, s)
		}
	})
}
