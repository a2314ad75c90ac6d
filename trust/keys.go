package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// ErrBadKey is matched (errors.Is) by every *KeyError.
var ErrBadKey = errors.New("trust: bad key")

// KeyError is returned by ParsePublicKey and ParsePrivateKey. Reason is
// the problem alone, without the package prefix, for a config check's line
// (`trust.keys[0].ed25519: bad base64`).
type KeyError struct {
	Reason string
}

func (e *KeyError) Error() string { return "trust: " + e.Reason }

// Is makes errors.Is(err, ErrBadKey) hold for every *KeyError.
func (e *KeyError) Is(target error) bool { return target == ErrBadKey }

// Keygen returns a fresh Ed25519 key pair.
func Keygen() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("trust: keygen: %w", err)
	}
	return pub, priv, nil
}

// EncodePublicKey returns the standard base64 of pub, as trust.keys[].ed25519
// and trust.release_keys take it.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a public key written by EncodePublicKey: standard
// base64 (padding optional) of 32 bytes that encode a point of the curve's
// prime-order subgroup, canonically. It refuses the identity and the other
// points of small order, with which anyone could forge a signature that
// crypto/ed25519 accepts: a key of zeros, a common placeholder, is one.
func ParsePublicKey(b64 string) (ed25519.PublicKey, error) {
	b, err := decodeStd(b64)
	if err != nil {
		return nil, &KeyError{Reason: "bad base64"}
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, &KeyError{Reason: fmt.Sprintf("wrong key length: %d bytes, want %d", len(b), ed25519.PublicKeySize)}
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, &KeyError{Reason: "not a point of the curve"}
	}
	if !bytes.Equal(p.Bytes(), b) {
		return nil, &KeyError{Reason: "not a canonical encoding"}
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, &KeyError{Reason: "weak key: a point of small order"}
	}
	if !inPrimeOrderSubgroup(p) {
		return nil, &KeyError{Reason: "weak key: not in the prime-order subgroup"}
	}
	return ed25519.PublicKey(b), nil
}

// minusOne is ℓ-1, the scalar -1.
var minusOne = func() *edwards25519.Scalar {
	one := make([]byte, 32)
	one[0] = 1
	s, err := edwards25519.NewScalar().SetCanonicalBytes(one)
	if err != nil {
		panic(err)
	}
	return edwards25519.NewScalar().Negate(s)
}()

// inPrimeOrderSubgroup reports whether [ℓ]p is the identity, computed as
// [ℓ-1]p + p.
func inPrimeOrderSubgroup(p *edwards25519.Point) bool {
	q := new(edwards25519.Point).ScalarMult(minusOne, p)
	q.Add(q, p)
	return q.Equal(edwards25519.NewIdentityPoint()) == 1
}

// EncodePrivateKey returns the text of a signing key file for priv: the
// standard base64 of its 32-byte seed (RFC 8032's private key) and a
// newline. Keep the file mode 0600.
func EncodePrivateKey(priv ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
}

// ParsePrivateKey reads the text of a signing key file (EncodePrivateKey):
// the standard base64 (padding optional) of the 32-byte seed, surrounding
// white space ignored. The 64-byte form of crypto/ed25519 is refused: it
// repeats the public key, which could disagree with the seed.
func ParsePrivateKey(text string) (ed25519.PrivateKey, error) {
	b, err := decodeStd(strings.TrimSpace(text))
	if err != nil {
		return nil, &KeyError{Reason: "bad base64"}
	}
	if len(b) != ed25519.SeedSize {
		return nil, &KeyError{Reason: fmt.Sprintf("wrong key length: %d bytes, want %d (the seed)", len(b), ed25519.SeedSize)}
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// decodeStd decodes standard base64 with or without padding, strictly:
// no line breaks, no bits beyond the data, no URL-safe alphabet.
func decodeStd(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isB64Std(c) && c != '=' {
			return nil, errors.New("bad base64")
		}
	}
	enc := base64.StdEncoding.Strict()
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding.Strict()
	}
	return enc.DecodeString(s)
}

func isB64Std(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
