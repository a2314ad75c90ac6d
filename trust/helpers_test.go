package trust

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// testKey derives a fixed key pair from name, so a failure is reproducible.
func testKey(t testing.TB, name string) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, name)
	priv := ed25519.NewKeyFromSeed(seed)
	return priv.Public().(ed25519.PublicKey), priv
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// forge builds a token from a raw header and payload, signed with priv over
// exactly what it joins, so only the part under test is wrong.
func forge(priv ed25519.PrivateKey, header, payload string) string {
	in := enc(header) + "." + enc(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// parts splits a token for tests that alter one part.
func parts(tok string) (h, p, s string) {
	a := strings.Split(tok, ".")
	return a[0], a[1], a[2]
}
