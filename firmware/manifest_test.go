package firmware

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"smartboxd/contract"
	"smartboxd/trust"
)

func keys(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := trust.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestParseManifest(t *testing.T) {
	pub, priv := keys(t)
	otherPub, other := keys(t)
	sum := sha256.Sum256([]byte("binary"))
	hexSum := strings.Repeat("ab", 32)
	m := Manifest{Version: Version{1, 4, 0}, SHA256: sum, Size: 6}
	good := SignManifest(priv, m)
	sign := func(payload string) string { return trust.Sign(priv, ReleaseKid, []byte(payload)) }
	for _, tc := range []struct {
		name  string
		token string
		keys  []ed25519.PublicKey
		ok    bool
	}{
		{"good", good, []ed25519.PublicKey{pub}, true},
		{"good, second of two keys", good, []ed25519.PublicKey{otherPub, pub}, true},
		{"another key's", SignManifest(other, m), []ed25519.PublicKey{pub}, false},
		{"no release keys", good, nil, false},
		{"not a jws", `{"version":"1.4.0"}`, []ed25519.PublicKey{pub}, false},
		{"tampered payload", good[:strings.Index(good, ".")+2] + "x" + good[strings.Index(good, ".")+3:], []ed25519.PublicKey{pub}, false},
		{"an extra member", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":6,"url":"x"}`), []ed25519.PublicKey{pub}, false},
		{"a member twice", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":6,"size":7}`), []ed25519.PublicKey{pub}, false},
		{"a member in another case", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","Size":6}`), []ed25519.PublicKey{pub}, false},
		{"no size", sign(`{"version":"1.4.0","sha256":"` + hexSum + `"}`), []ed25519.PublicKey{pub}, false},
		{"size zero", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":0}`), []ed25519.PublicKey{pub}, false},
		{"size too large", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":268435457}`), []ed25519.PublicKey{pub}, false},
		{"size a string", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":"6"}`), []ed25519.PublicKey{pub}, false},
		{"upper-case hex", sign(`{"version":"1.4.0","sha256":"` + strings.ToUpper(hexSum) + `","size":6}`), []ed25519.PublicKey{pub}, false},
		{"short hex", sign(`{"version":"1.4.0","sha256":"abcd","size":6}`), []ed25519.PublicKey{pub}, false},
		{"bad version", sign(`{"version":"1.4","sha256":"` + hexSum + `","size":6}`), []ed25519.PublicKey{pub}, false},
		{"trailing data", sign(`{"version":"1.4.0","sha256":"` + hexSum + `","size":6} {}`), []ed25519.PublicKey{pub}, false},
		{"too long", good + strings.Repeat("A", MaxManifestSize), []ed25519.PublicKey{pub}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseManifest([]byte(tc.token), tc.keys)
			if !tc.ok {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if !errors.Is(err, ErrManifest) || contract.CodeOf(err) != contract.CodeFirmwareSignatureInvalid {
					t.Fatalf("error %v: want ErrManifest and %s", err, contract.CodeFirmwareSignatureInvalid)
				}
				return
			}
			if err != nil || got != m {
				t.Fatalf("ParseManifest = %+v, %v; want %+v", got, err, m)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	pub, priv := keys(f)
	f.Add([]byte(`{"version":"1.4.0","sha256":"` + strings.Repeat("0", 64) + `","size":1}`))
	f.Add([]byte(`{"version":"1.4.0","sha256":"","size":1,"x":1}`))
	f.Add([]byte(`{"Version":"1.4.0"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := ParseManifest([]byte(trust.Sign(priv, ReleaseKid, payload)), []ed25519.PublicKey{pub})
		if err != nil {
			if contract.CodeOf(err) != contract.CodeFirmwareSignatureInvalid {
				t.Fatalf("error %v without its code", err)
			}
			return
		}
		// What is accepted re-encodes to a manifest that reads the same.
		again, err := decodeManifest(m.Payload())
		if err != nil || again != m {
			t.Fatalf("%q: %+v re-reads as %+v, %v", payload, m, again, err)
		}
	})
}
