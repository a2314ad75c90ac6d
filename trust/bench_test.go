package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// BenchmarkVerify is a command's whole check here: the strict parse, the
// key lookup and the signature; BenchmarkBareEd25519Verify is its floor.
func BenchmarkVerify(b *testing.B) {
	pub, priv := testKey(b, "cloud")
	tok := []byte(Sign(priv, "cloud", []byte(cmd)))
	lookup := func(kid string) (ed25519.PublicKey, bool) { return pub, kid == "cloud" }
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(tok, lookup); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareEd25519Verify(b *testing.B) {
	pub, priv := testKey(b, "cloud")
	tok := Sign(priv, "cloud", []byte(cmd))
	i := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:i])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("does not verify")
		}
	}
}

// BenchmarkVerifySnapshot verifies a 1 MiB sync.snapshot-sized token.
func BenchmarkVerifySnapshot(b *testing.B) {
	pub, priv := testKey(b, "cloud")
	payload := []byte(`{"keys":[` + strings.Repeat(`{"key_id":"k","name":"n"},`, 1<<20/26) + `{}]}`)
	tok := []byte(Sign(priv, "cloud", payload))
	lookup := func(string) (ed25519.PublicKey, bool) { return pub, true }
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(tok, lookup); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenSealed(b *testing.B) {
	id, _ := NewIdentity()
	sealed, _ := Seal(id.PublicKey(), []byte("246810"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenSealed(sealed, &id.pub, &id.priv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareOpenAnonymous(b *testing.B) {
	pub, priv, _ := box.GenerateKey(rand.Reader)
	sealed, _ := box.SealAnonymous(nil, []byte("246810"), pub, rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := box.OpenAnonymous(nil, sealed, pub, priv); !ok {
			b.Fatal("does not open")
		}
	}
}

func BenchmarkWindowAccept(b *testing.B) {
	var w Window
	var c uint64
	b.ReportAllocs()
	for b.Loop() {
		c++
		if err := w.Accept(c); err != nil {
			b.Fatal(err)
		}
	}
}
