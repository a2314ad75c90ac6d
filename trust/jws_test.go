package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

const cmd = `{"id":"r1","type":"bin.open","data":{"bin":1},"box_id":"box-0001","counter":7}`

func TestSignHeader(t *testing.T) {
	_, priv := testKey(t, "cloud")
	for _, tt := range []struct{ kid, want string }{
		{"cloud", `{"alg":"EdDSA","kid":"cloud"}`},
		{"ops-7", `{"alg":"EdDSA","kid":"ops-7"}`},
		{`a"b\c`, `{"alg":"EdDSA","kid":"a\"b\\c"}`},
		{"grüße", `{"alg":"EdDSA","kid":"grüße"}`},
	} {
		t.Run(tt.kid, func(t *testing.T) {
			h, _, _ := parts(Sign(priv, tt.kid, []byte(cmd)))
			got, err := base64.RawURLEncoding.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("header = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSignPanicsOnEmptyKid(t *testing.T) {
	_, priv := testKey(t, "cloud")
	defer func() {
		if recover() == nil {
			t.Error("Sign with an empty kid did not panic")
		}
	}()
	Sign(priv, "", nil)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv := testKey(t, "cloud")
	for _, payload := range []string{cmd, "", "x", strings.Repeat("é", 1000)} {
		tok := Sign(priv, "cloud", []byte(payload))
		if !LooksLikeJWS([]byte(tok)) {
			t.Errorf("LooksLikeJWS(%q) = false", tok)
		}
		kid, err := Kid([]byte(tok))
		if err != nil || kid != "cloud" {
			t.Errorf("Kid = %q, %v", kid, err)
		}
		j, err := Parse([]byte(tok))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if j.Kid != "cloud" || string(j.Payload) != payload {
			t.Errorf("Parse = kid %q payload %q", j.Kid, j.Payload)
		}
		if err := j.Verify(pub); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if got := j.Compact(); got != tok {
			t.Errorf("Compact = %q, want %q", got, tok)
		}
	}
}

func TestVerifyLookup(t *testing.T) {
	cloudPub, cloudPriv := testKey(t, "cloud")
	opsPub, opsPriv := testKey(t, "ops-7")
	keys := map[string]ed25519.PublicKey{"cloud": cloudPub, "ops-7": opsPub, "short": cloudPub[:31]}
	lookup := func(kid string) (ed25519.PublicKey, bool) { k, ok := keys[kid]; return k, ok }

	good := Sign(cloudPriv, "cloud", []byte(cmd))
	h, p, s := parts(good)
	flipped := []byte(s)
	flipped[10] ^= 'A' ^ 'B'
	if flipped[10] == s[10] {
		t.Fatal("flip changed nothing")
	}
	otherPayload := enc(strings.Replace(cmd, `"bin":1`, `"bin":2`, 1))

	tests := []struct {
		name    string
		tok     string
		wantKid string
		wantErr error
	}{
		{"good", good, "cloud", nil},
		{"other key's token", Sign(opsPriv, "ops-7", []byte(cmd)), "ops-7", nil},
		{"unknown kid", Sign(cloudPriv, "mallory", []byte(cmd)), "mallory", ErrUnknownKey},
		{"kid names another key", Sign(cloudPriv, "ops-7", []byte(cmd)), "ops-7", ErrSignature},
		{"payload changed", h + "." + otherPayload + "." + s, "cloud", ErrSignature},
		{"signature changed", h + "." + p + "." + string(flipped), "cloud", ErrSignature},
		{"key of the wrong size", Sign(cloudPriv, "short", []byte(cmd)), "short", ErrUnknownKey},
		{"not a jws", cmd, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kid, payload, err := Verify([]byte(tt.tok), lookup)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if kid != tt.wantKid {
				t.Errorf("kid = %q, want %q", kid, tt.wantKid)
			}
			if tt.wantErr == nil && string(payload) != cmd {
				t.Errorf("payload = %q", payload)
			}
			if tt.wantErr != nil && payload != nil {
				t.Errorf("payload %q returned with an error", payload)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	_, priv := testKey(t, "cloud")
	good := Sign(priv, "cloud", []byte(cmd))
	h, p, s := parts(good)
	sig := func(n int) string { return base64.RawURLEncoding.EncodeToString(make([]byte, n)) }
	// A padded, a standard-alphabet and a non-canonical spelling of parts
	// that otherwise decode to the same bytes.
	padded := base64.URLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"cloud"}`))
	if !strings.HasSuffix(padded, "=") {
		t.Fatal("test header needs padding")
	}
	// The signature's last character carries 4 spare bits: setting the
	// lowest decodes to the same bytes with the standard decoder.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanon := s[:len(s)-1] + string(alphabet[strings.IndexByte(alphabet, s[len(s)-1])^1])
	if b, err := base64.RawURLEncoding.DecodeString(nonCanon); err != nil || len(b) != 64 {
		t.Fatalf("non-canonical signature does not decode leniently: %v", err)
	}

	tests := []struct {
		name string
		tok  string
	}{
		{"empty", ""},
		{"json command", cmd},
		{"two parts", h + "." + p},
		{"four parts", good + "." + s},
		{"empty header", "." + p + "." + s},
		{"empty signature", h + "." + p + "."},
		{"padded header", padded + "." + p + "." + s},
		{"padded signature", h + "." + p + "." + s + "=="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(h) + "+/." + p + "." + s},
		{"line break in payload", h + "." + p[:10] + "\n" + p[10:] + "." + s},
		{"carriage return in signature", h + "." + p + "." + s[:10] + "\r" + s[10:]},
		{"space", h + " ." + p + "." + s},
		{"non-canonical signature", h + "." + p + "." + nonCanon},
		{"short signature", h + "." + p + "." + sig(63)},
		{"long signature", h + "." + p + "." + sig(65)},
		{"bad base64 length", h + "." + p + "x." + s},
		{"header not json", forge(priv, `{"alg":"EdDSA","kid":"cloud"`, cmd)},
		{"header trailing data", forge(priv, `{"alg":"EdDSA","kid":"cloud"}x`, cmd)},
		{"header two objects", forge(priv, `{"alg":"EdDSA","kid":"cloud"}{}`, cmd)},
		{"header an array", forge(priv, `["EdDSA","cloud"]`, cmd)},
		{"header a string", forge(priv, `"EdDSA"`, cmd)},
		{"header invalid utf-8", forge(priv, "{\"alg\":\"EdDSA\",\"kid\":\"cl\xffud\"}", cmd)},
		{"no alg", forge(priv, `{"kid":"cloud"}`, cmd)},
		{"alg none", forge(priv, `{"alg":"none","kid":"cloud"}`, cmd)},
		{"alg HS256", forge(priv, `{"alg":"HS256","kid":"cloud"}`, cmd)},
		{"alg lower case", forge(priv, `{"alg":"eddsa","kid":"cloud"}`, cmd)},
		{"alg Ed25519", forge(priv, `{"alg":"Ed25519","kid":"cloud"}`, cmd)},
		{"alg not a string", forge(priv, `{"alg":1,"kid":"cloud"}`, cmd)},
		{"no kid", forge(priv, `{"alg":"EdDSA"}`, cmd)},
		{"empty kid", forge(priv, `{"alg":"EdDSA","kid":""}`, cmd)},
		{"kid a number", forge(priv, `{"alg":"EdDSA","kid":7}`, cmd)},
		{"kid null", forge(priv, `{"alg":"EdDSA","kid":null}`, cmd)},
		{"alg twice", forge(priv, `{"alg":"EdDSA","kid":"cloud","alg":"EdDSA"}`, cmd)},
		{"kid twice", forge(priv, `{"alg":"EdDSA","kid":"ops-7","kid":"cloud"}`, cmd)},
		{"kid in another case", forge(priv, `{"alg":"EdDSA","kid":"cloud","KID":"ops-7"}`, cmd)},
		{"other member twice", forge(priv, `{"alg":"EdDSA","kid":"cloud","typ":"a","typ":"b"}`, cmd)},
		{"crit", forge(priv, `{"alg":"EdDSA","kid":"cloud","crit":["exp"],"exp":1}`, cmd)},
		{"b64 false", forge(priv, `{"alg":"EdDSA","kid":"cloud","b64":false,"crit":["b64"]}`, cmd)},
		{"b64 alone", forge(priv, `{"alg":"EdDSA","kid":"cloud","b64":true}`, cmd)},
		{"header too large", forge(priv, headerOf(MaxHeaderSize+1), cmd)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.tok)); !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse: err = %v, want ErrMalformed", err)
			}
			kid, payload, err := Verify([]byte(tt.tok), func(string) (ed25519.PublicKey, bool) {
				t.Error("lookup called for a malformed token")
				return nil, false
			})
			if !errors.Is(err, ErrMalformed) || kid != "" || payload != nil {
				t.Errorf("Verify = %q, %q, %v; want ErrMalformed", kid, payload, err)
			}
		})
	}
}

// headerOf returns a valid header of n bytes.
func headerOf(n int) string {
	const pre, post = `{"alg":"EdDSA","kid":"cloud","x":"`, `"}`
	return pre + strings.Repeat("a", n-len(pre)-len(post)) + post
}

func TestParseAccepts(t *testing.T) {
	pub, priv := testKey(t, "cloud")
	tests := []struct {
		name, header, kid string
	}{
		{"members reordered", `{"kid":"cloud","alg":"EdDSA"}`, "cloud"},
		{"white space", " {\n\t\"alg\" : \"EdDSA\" , \"kid\" : \"cloud\" }\r\n", "cloud"},
		{"typ ignored", `{"alg":"EdDSA","kid":"cloud","typ":"JOSE"}`, "cloud"},
		{"unknown member ignored", `{"alg":"EdDSA","kid":"cloud","x":{"y":[1,2,null]}}`, "cloud"},
		{"escaped kid", `{"alg":"EdDSA","kid":"\u0063loud"}`, "cloud"},
		{"header at its limit", headerOf(MaxHeaderSize), "cloud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := forge(priv, tt.header, cmd)
			j, err := Parse([]byte(tok))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if j.Kid != tt.kid {
				t.Errorf("kid = %q, want %q", j.Kid, tt.kid)
			}
			if err := j.Verify(pub); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if j.Compact() != tok {
				t.Errorf("Compact changed the token")
			}
		})
	}
}

func TestPayloadLimit(t *testing.T) {
	pub, priv := testKey(t, "cloud")
	// The limit itself, on a small one: every length around it, as the
	// encoded length's rounding differs by the remainder mod 3.
	const max = 1000
	for n := max - 3; n <= max+3; n++ {
		tok := Sign(priv, "cloud", bytes.Repeat([]byte{'a'}, n))
		j, err := parse([]byte(tok), max)
		if n <= max {
			if err != nil {
				t.Fatalf("payload of %d bytes, limit %d: %v", n, max, err)
			}
			if err := j.Verify(pub); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("payload of %d bytes, limit %d: err = %v, want ErrMalformed", n, max, err)
		}
	}
	// MaxPayloadSize is what Parse uses: one byte more is refused before
	// anything is decoded (the signature here is not even valid).
	h := enc(`{"alg":"EdDSA","kid":"cloud"}`)
	over := h + "." + strings.Repeat("A", base64.RawURLEncoding.EncodedLen(MaxPayloadSize+1)) + "." + strings.Repeat("A", 86)
	if _, err := Parse([]byte(over)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "longer") {
		t.Errorf("payload over MaxPayloadSize: err = %v, want ErrMalformed", err)
	}
}

func TestLooksLikeJWS(t *testing.T) {
	_, priv := testKey(t, "cloud")
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{Sign(priv, "cloud", []byte(cmd)), true},
		{Sign(priv, "cloud", nil), true},
		{"a.b.c", true},
		{"a..c", true},
		{cmd, false},
		{" " + cmd, false},
		{"", false},
		{"..", false},
		{".b.c", false},
		{"a.b.", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a.b=.c", false},
		{"a.b.c\n", false},
	} {
		if got := LooksLikeJWS([]byte(tt.in)); got != tt.want {
			t.Errorf("LooksLikeJWS(%.40q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestKidRefusesBadHeaders(t *testing.T) {
	_, priv := testKey(t, "cloud")
	for _, tok := range []string{
		cmd,
		forge(priv, `{"alg":"none","kid":"cloud"}`, cmd),
		forge(priv, `{"alg":"EdDSA"}`, cmd),
		"a.b",
	} {
		if kid, err := Kid([]byte(tok)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Kid(%.40q) = %q, %v; want ErrMalformed", tok, kid, err)
		}
	}
}

// TestGoJoseSignsOursVerifies checks tokens of an independent JOSE
// implementation verify here.
func TestGoJoseSignsOursVerifies(t *testing.T) {
	pub, priv := testKey(t, "cloud")
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.EdDSA,
		Key:       jose.JSONWebKey{Key: priv, KeyID: "cloud"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{cmd, "", `{"box_id":"box-0001","seq":42}`} {
		obj, err := signer.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		kid, got, err := Verify([]byte(tok), func(k string) (ed25519.PublicKey, bool) {
			return pub, k == "cloud"
		})
		if err != nil {
			t.Fatalf("Verify(go-jose token %q): %v", tok, err)
		}
		if kid != "cloud" || string(got) != payload {
			t.Errorf("Verify = %q, %q", kid, got)
		}
	}
}

// TestOursSignsGoJoseVerifies checks tokens made here verify with an
// independent JOSE implementation, and that it reads the same header.
func TestOursSignsGoJoseVerifies(t *testing.T) {
	pub, priv := testKey(t, "ops-7")
	otherPub, _ := testKey(t, "cloud")
	for _, payload := range []string{cmd, "", "\x00\xff binary"} {
		tok := Sign(priv, "ops-7", []byte(payload))
		obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatalf("go-jose ParseSignedCompact: %v", err)
		}
		if len(obj.Signatures) != 1 {
			t.Fatalf("%d signatures", len(obj.Signatures))
		}
		h := obj.Signatures[0].Header
		if h.KeyID != "ops-7" || h.Algorithm != string(jose.EdDSA) {
			t.Errorf("go-jose header = kid %q alg %q", h.KeyID, h.Algorithm)
		}
		got, err := obj.Verify(pub)
		if err != nil {
			t.Fatalf("go-jose Verify: %v", err)
		}
		if string(got) != payload {
			t.Errorf("go-jose payload = %q, want %q", got, payload)
		}
		if _, err := obj.Verify(otherPub); err == nil {
			t.Error("go-jose verified with the wrong key")
		}
	}
}

func FuzzParse(f *testing.F) {
	_, priv := testKey(f, "cloud")
	f.Add([]byte(Sign(priv, "cloud", []byte(cmd))))
	f.Add([]byte(Sign(priv, "c", nil)))
	f.Add([]byte(forge(priv, `{"kid":"x","alg":"EdDSA","typ":"JOSE"}`, "{}")))
	f.Add([]byte(forge(priv, `{"alg":"EdDSA","kid":"x","crit":["b64"]}`, "{}")))
	f.Add([]byte(cmd))
	f.Add([]byte("a.b.c"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		looks := LooksLikeJWS(tok)
		kid, kidErr := Kid(tok)
		j, err := Parse(tok)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		if !looks {
			t.Errorf("Parse accepted what LooksLikeJWS refuses: %q", tok)
		}
		if kidErr != nil || kid != j.Kid {
			t.Errorf("Kid = %q, %v; Parse kid %q", kid, kidErr, j.Kid)
		}
		if j.Kid == "" {
			t.Error("empty kid accepted")
		}
		if got := j.Compact(); got != string(tok) {
			t.Errorf("Compact = %q, want %q", got, tok)
		}
	})
}

func FuzzVerify(f *testing.F) {
	pub, priv := testKey(f, "cloud")
	f.Add([]byte(Sign(priv, "cloud", []byte(cmd))), []byte(nil))
	f.Add([]byte(Sign(priv, "other", []byte(cmd))), []byte(pub[:31]))
	f.Add([]byte(Sign(priv, "other", []byte(cmd))), []byte(pub))
	f.Add([]byte(forge(priv, `{"kid":"cloud","alg":"EdDSA"}`, "{}")), []byte(nil))
	f.Add([]byte(cmd), []byte(nil))
	f.Fuzz(func(t *testing.T, tok, other []byte) {
		// "cloud" is the real key; any other kid gets whatever bytes the
		// fuzzer chose, of any length.
		lookup := func(k string) (ed25519.PublicKey, bool) {
			if k == "cloud" {
				return pub, true
			}
			return other, other != nil
		}
		kid, payload, err := Verify(tok, lookup)
		if err != nil {
			if payload != nil {
				t.Errorf("payload returned with %v", err)
			}
			return
		}
		// Whatever verifies must be signed over exactly these bytes.
		key, _ := lookup(kid)
		i := bytes.LastIndexByte(tok, '.')
		sig, derr := base64.RawURLEncoding.DecodeString(string(tok[i+1:]))
		if derr != nil || len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, tok[:i], sig) {
			t.Errorf("Verify accepted a token ed25519 refuses: %q", tok)
		}
		if _, perr := Parse(tok); perr != nil {
			t.Errorf("Verify accepted what Parse refuses: %v", perr)
		}
	})
}
