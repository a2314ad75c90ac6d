package firmware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"smartboxd/contract"
	"smartboxd/trust"
)

// MaxSize is the largest firmware a manifest may announce.
const MaxSize = 256 << 20

// MaxManifestSize bounds a manifest token; a real one is about 300 bytes.
const MaxManifestSize = 4 << 10

// ReleaseKid is the key id SignManifest writes. A box tries every release
// key whatever the kid says: release keys have no names.
const ReleaseKid = "release"

// ErrManifest is returned by ParseManifest for a manifest that is not a
// JWS by a release key, or whose payload is not exactly a manifest. It is
// also a *contract.Error with the code firmware.signature.invalid.
var ErrManifest = errors.New("firmware: invalid manifest")

// Manifest says what a release is: its version, the SHA-256 of its binary
// and its size in bytes.
type Manifest struct {
	Version Version
	SHA256  [32]byte
	Size    int64
}

// manifestJSON is the signed payload, {"version":"1.4.0","sha256":"<hex>","size":N}.
type manifestJSON struct {
	Version *string `json:"version"`
	SHA256  *string `json:"sha256"`
	Size    *int64  `json:"size"`
}

// Payload returns the manifest's JSON payload.
func (m Manifest) Payload() []byte {
	v, h := m.Version.String(), hex.EncodeToString(m.SHA256[:])
	b, _ := json.Marshal(manifestJSON{Version: &v, SHA256: &h, Size: &m.Size}) // strings and an integer
	return b
}

// SignManifest returns the manifest JWS of m by the release key priv.
func SignManifest(priv ed25519.PrivateKey, m Manifest) string {
	return trust.Sign(priv, ReleaseKid, m.Payload())
}

// manifestError is a refused manifest: ErrManifest for errors.Is and the
// contract's firmware.signature.invalid for a reply.
func manifestError(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrManifest, contract.Errorf(contract.CodeFirmwareSignatureInvalid, format, args...))
}

// ParseManifest verifies token, a compact JWS (EdDSA), against the release
// keys and reads its payload strictly: exactly the members version (a
// Version), sha256 (64 lower-case hex digits) and size (1 to MaxSize), each
// once, nothing else. A command key's signature is no release key's: such a
// manifest is refused like any other bad signature.
func ParseManifest(token []byte, releaseKeys []ed25519.PublicKey) (Manifest, error) {
	if len(token) > MaxManifestSize {
		return Manifest{}, manifestError("the manifest is %d bytes, at most %d", len(token), MaxManifestSize)
	}
	jws, err := trust.Parse(token)
	if err != nil {
		return Manifest{}, manifestError("the manifest is not a valid JWS: %v", err)
	}
	verified := false
	for _, k := range releaseKeys {
		if jws.Verify(k) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Manifest{}, manifestError("the manifest is not signed by a release key")
	}
	return decodeManifest(jws.Payload)
}

// decodeManifest reads a verified manifest payload strictly.
func decodeManifest(payload []byte) (Manifest, error) {
	if err := checkMembers(payload); err != nil {
		return Manifest{}, manifestError("payload: %v", err)
	}
	var mj manifestJSON
	if err := contract.DecodeStrict(payload, &mj); err != nil {
		return Manifest{}, manifestError("payload: %v", err)
	}
	if mj.Version == nil || mj.SHA256 == nil || mj.Size == nil {
		return Manifest{}, manifestError("payload: version, sha256 and size are required")
	}
	v, err := ParseVersion(*mj.Version)
	if err != nil {
		return Manifest{}, manifestError("payload.version: %v", err)
	}
	var m Manifest
	m.Version = v
	if len(*mj.SHA256) != 64 || hex.EncodeToString(mustHex(*mj.SHA256)) != *mj.SHA256 {
		return Manifest{}, manifestError("payload.sha256: want 64 lower-case hex digits")
	}
	copy(m.SHA256[:], mustHex(*mj.SHA256))
	if *mj.Size < 1 || *mj.Size > MaxSize {
		return Manifest{}, manifestError("payload.size: %d, want 1 to %d", *mj.Size, MaxSize)
	}
	m.Size = *mj.Size
	return m, nil
}

// checkMembers refuses what encoding/json would let through: invalid
// UTF-8, and a member named twice or in another case ("Size" beside
// "size"), which json matches without telling.
func checkMembers(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a json object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errors.New("not json")
		}
		name, _ := t.(string)
		if seen[strings.ToLower(name)] {
			return fmt.Errorf("member %q named twice", name)
		}
		seen[strings.ToLower(name)] = true
		if name != "version" && name != "sha256" && name != "size" {
			return fmt.Errorf("unknown member %q", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return errors.New("not json")
		}
	}
	return nil
}

// mustHex decodes s, nil when it is not hex.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}
