package trust

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"

	"smartboxd/internal/atomicfile"
)

// MaxSealedPlaintext bounds what a sealed box may hold: codes are at most
// 16 digits and an offline key is 32 bytes.
const MaxSealedPlaintext = 256

// maxSealedB64 is the longest base64 OpenSealed reads.
var maxSealedB64 = base64.StdEncoding.EncodedLen(MaxSealedPlaintext + box.AnonymousOverhead)

var (
	// ErrSealed is returned by OpenSealed for anything that is not a sealed
	// box to the given key: bad base64, a wrong size, a box that does not
	// open.
	ErrSealed = errors.New("trust: sealed box does not open")
	// ErrIdentity is returned by LoadOrCreateIdentity when the identity
	// file is not one.
	ErrIdentity = errors.New("trust: bad identity file")
)

// Seal returns base64 (standard, padded) of an anonymous NaCl sealed box of
// plaintext to pub, as a cloud makes code_sealed.
func Seal(pub *[32]byte, plaintext []byte) (string, error) {
	if len(plaintext) > MaxSealedPlaintext {
		return "", fmt.Errorf("trust: seal: %d bytes, at most %d", len(plaintext), MaxSealedPlaintext)
	}
	b, err := box.SealAnonymous(nil, plaintext, pub, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("trust: seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// OpenSealed opens sealedB64, an anonymous NaCl sealed box to the key pair
// pub, priv, in standard base64 with or without its padding (the URL-safe
// alphabet and line breaks are refused). Every failure wraps ErrSealed and
// says nothing about the content.
func OpenSealed(sealedB64 string, pub, priv *[32]byte) ([]byte, error) {
	if len(sealedB64) > maxSealedB64 {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrSealed, maxSealedB64)
	}
	b, err := decodeStd(sealedB64)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrSealed)
	}
	if len(b) < box.AnonymousOverhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a sealed box", ErrSealed, len(b))
	}
	if len(b) > box.AnonymousOverhead+MaxSealedPlaintext {
		return nil, fmt.Errorf("%w: holds more than %d bytes", ErrSealed, MaxSealedPlaintext)
	}
	out, ok := box.OpenAnonymous(nil, b, pub, priv)
	if !ok {
		return nil, fmt.Errorf("%w: not sealed to this key, or altered", ErrSealed)
	}
	return out, nil
}

// Identity is a box's X25519 key pair: codes are sealed to its public key.
type Identity struct {
	pub, priv [32]byte
}

// identityPrefix starts the one line of an identity file, followed by the
// standard base64 of the 32-byte private key and a newline.
const identityPrefix = "x25519 "

var identityFileSize = len(identityPrefix) + base64.StdEncoding.EncodedLen(32) + 1

// NewIdentity makes a fresh key pair.
func NewIdentity() (*Identity, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("trust: make identity: %w", err)
	}
	return &Identity{pub: *pub, priv: *priv}, nil
}

// identityFromPrivate derives the public key of priv.
func identityFromPrivate(priv []byte) (*Identity, error) {
	id := &Identity{}
	copy(id.priv[:], priv)
	pub, err := curve25519.X25519(id.priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	copy(id.pub[:], pub)
	return id, nil
}

// LoadOrCreateIdentity reads the identity file at path, making it (mode
// 0600, atomically) when it does not exist; its directory must exist. The
// file is one line, "x25519 " and the standard base64 of the 32-byte
// private key. A file that is not exactly that, or that others than its
// owner may read, is refused with an error wrapping ErrIdentity that names
// it, never replaced: codes sealed to the old key would stop opening.
func LoadOrCreateIdentity(path string) (*Identity, error) {
	id, err := loadIdentity(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	id, err = NewIdentity()
	if err != nil {
		return nil, err
	}
	err = atomicfile.Create(path, id.marshal(), 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Made by another process since we looked: its key is the one.
		return loadIdentity(path)
	}
	if err != nil {
		return nil, fmt.Errorf("trust: write identity: %w", err)
	}
	return id, nil
}

func (id *Identity) marshal() []byte {
	return []byte(identityPrefix + base64.StdEncoding.EncodeToString(id.priv[:]) + "\n")
}

// loadIdentity reads an existing identity file; the error wraps
// fs.ErrNotExist when there is none.
func loadIdentity(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("trust: read identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("trust: read identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrIdentity, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600", ErrIdentity, path, perm)
	}
	if fi.Size() != int64(identityFileSize) {
		return nil, fmt.Errorf("%w: %s has %d bytes, want %d", ErrIdentity, path, fi.Size(), identityFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(identityFileSize)+1))
	if err != nil {
		return nil, fmt.Errorf("trust: read identity: %w", err)
	}
	n := len(b)
	if n != identityFileSize || !bytes.HasPrefix(b, []byte(identityPrefix)) || b[n-1] != '\n' {
		return nil, fmt.Errorf("%w: %s is not an x25519 identity", ErrIdentity, path)
	}
	priv, err := base64.StdEncoding.Strict().DecodeString(string(b[len(identityPrefix) : n-1]))
	if err != nil || len(priv) != 32 {
		return nil, fmt.Errorf("%w: %s: bad base64", ErrIdentity, path)
	}
	id, err := identityFromPrivate(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, path, err)
	}
	return id, nil
}

// Public returns the standard base64 of the public key: the status's
// seal_key.
func (id *Identity) Public() string { return base64.StdEncoding.EncodeToString(id.pub[:]) }

// PublicKey returns the public key.
func (id *Identity) PublicKey() *[32]byte { p := id.pub; return &p }

// Open opens a sealed box to this identity, as OpenSealed.
func (id *Identity) Open(sealedB64 string) ([]byte, error) {
	return OpenSealed(sealedB64, &id.pub, &id.priv)
}
