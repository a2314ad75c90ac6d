package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Size limits of a compact JWS, in decoded bytes.
const (
	// MaxHeaderSize bounds the protected header.
	MaxHeaderSize = 1 << 10
	// MaxPayloadSize bounds the payload: the largest command, a
	// sync.snapshot, travels in one MQTT message of at most 64 MiB.
	MaxPayloadSize = 64 << 20
)

// Alg is the only JWS algorithm this package signs and accepts (RFC 8037).
const Alg = "EdDSA"

var (
	// ErrMalformed is returned when a token is not a compact JWS of the
	// strict form this package accepts: three canonical base64url parts, a
	// header naming EdDSA and a kid, a 64-byte signature, within the limits.
	ErrMalformed = errors.New("trust: malformed jws")
	// ErrUnknownKey is returned by Verify when the token's kid names no key
	// the caller knows, or the key it gives is not an Ed25519 public key.
	ErrUnknownKey = errors.New("trust: unknown key")
	// ErrSignature is returned when a signature does not verify.
	ErrSignature = errors.New("trust: bad signature")
)

var b64url = base64.RawURLEncoding.Strict()

// sigLen is the length of an encoded Ed25519 signature.
var sigLen = b64url.EncodedLen(ed25519.SignatureSize)

// JWS is a parsed compact JWS. Its payload is not verified until Verify
// returns nil; reading it before is only good for reporting (a reply's id).
type JWS struct {
	// Kid is the header's key id.
	Kid string
	// Payload is the decoded payload.
	Payload []byte

	header []byte // decoded, exactly as received
	signed []byte // the signing input: the first two parts, as received
	sig    []byte
}

// Sign returns the compact JWS of payload signed with priv, with the header
// {"alg":"EdDSA","kid":<kid>}. Like ed25519.Sign it panics when priv is not
// a private key; it panics too when kid is empty or not valid UTF-8, since
// no verifier would accept the token. A payload larger than MaxPayloadSize
// makes a token Parse refuses.
func Sign(priv ed25519.PrivateKey, kid string, payload []byte) string {
	if kid == "" || !utf8.ValidString(kid) {
		panic("trust: Sign with an empty or invalid kid")
	}
	k, _ := json.Marshal(kid) // a valid string always marshals
	header := `{"alg":"EdDSA","kid":` + string(k) + `}`
	hn, pn := b64url.EncodedLen(len(header)), b64url.EncodedLen(len(payload))
	out := make([]byte, hn+1+pn+1+sigLen)
	b64url.Encode(out, []byte(header))
	out[hn] = '.'
	b64url.Encode(out[hn+1:], payload)
	sig := ed25519.Sign(priv, out[:hn+1+pn])
	out[hn+1+pn] = '.'
	b64url.Encode(out[hn+1+pn+1:], sig)
	return string(out)
}

// LooksLikeJWS reports whether b has the shape of a compact JWS: base64url
// characters in three parts joined by two dots, the first and the last not
// empty. It tells a token from a JSON object (which starts with '{'); it
// checks nothing else.
func LooksLikeJWS(b []byte) bool {
	if len(b) < 2 || b[0] == '.' || b[len(b)-1] == '.' {
		return false
	}
	dots := 0
	for _, c := range b {
		if c == '.' {
			dots++
		} else if !isB64URL(c) {
			return false
		}
	}
	return dots == 2
}

// Kid returns the key id of token after checking its shape and its header,
// without decoding the payload or verifying anything.
func Kid(token []byte) (string, error) {
	h, _, _, err := split(token)
	if err != nil {
		return "", err
	}
	_, kid, err := decodeHeader(h)
	return kid, err
}

// Parse checks token strictly and decodes it. The result keeps a reference
// to token: do not change it before Verify.
func Parse(token []byte) (*JWS, error) {
	return parse(token, MaxPayloadSize)
}

// parse is Parse with the payload limit as a parameter, for tests.
func parse(token []byte, maxPayload int) (*JWS, error) {
	h, p, s, err := split(token)
	if err != nil {
		return nil, err
	}
	header, kid, err := decodeHeader(h)
	if err != nil {
		return nil, err
	}
	if err := checkB64(p, maxPayload, "payload"); err != nil {
		return nil, err
	}
	payload := make([]byte, b64url.DecodedLen(len(p)))
	n, err := b64url.Decode(payload, p)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: bad base64url", ErrMalformed)
	}
	if len(s) != sigLen {
		return nil, fmt.Errorf("%w: signature is not %d bytes", ErrMalformed, ed25519.SignatureSize)
	}
	if err := checkB64(s, ed25519.SignatureSize, "signature"); err != nil {
		return nil, err
	}
	sig, err := b64url.DecodeString(string(s))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature: bad base64url", ErrMalformed)
	}
	return &JWS{
		Kid:     kid,
		Payload: payload[:n],
		header:  header,
		signed:  token[:len(h)+1+len(p)],
		sig:     sig,
	}, nil
}

// Verify checks the signature with pub.
func (j *JWS) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		// ed25519.Verify panics on a key of the wrong size.
		return fmt.Errorf("%w: %q is not an ed25519 public key", ErrUnknownKey, j.Kid)
	}
	if !ed25519.Verify(pub, j.signed, j.sig) {
		return fmt.Errorf("%w: key %q", ErrSignature, j.Kid)
	}
	return nil
}

// Compact returns the token's compact serialization. Since Parse accepts
// only canonical encodings, it is the token that was parsed, byte for byte.
func (j *JWS) Compact() string {
	return b64url.EncodeToString(j.header) + "." + b64url.EncodeToString(j.Payload) + "." + b64url.EncodeToString(j.sig)
}

// Verify parses token and verifies it with the key lookup gives for its kid,
// returning the kid and the verified payload. The kid is returned also with
// ErrUnknownKey and ErrSignature, so a caller can say whose token failed.
func Verify(token []byte, lookup func(kid string) (ed25519.PublicKey, bool)) (kid string, payload []byte, err error) {
	j, err := Parse(token)
	if err != nil {
		return "", nil, err
	}
	pub, ok := lookup(j.Kid)
	if !ok {
		return j.Kid, nil, fmt.Errorf("%w: %q", ErrUnknownKey, j.Kid)
	}
	if err := j.Verify(pub); err != nil {
		return j.Kid, nil, err
	}
	return j.Kid, j.Payload, nil
}

// split cuts token into its three parts.
func split(token []byte) (h, p, s []byte, err error) {
	i := bytes.IndexByte(token, '.')
	if i < 0 {
		return nil, nil, nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	j := bytes.IndexByte(token[i+1:], '.')
	if j < 0 {
		return nil, nil, nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	j += i + 1
	if bytes.IndexByte(token[j+1:], '.') >= 0 {
		return nil, nil, nil, fmt.Errorf("%w: more than three parts", ErrMalformed)
	}
	return token[:i], token[i+1 : j], token[j+1:], nil
}

// checkB64 refuses what base64's decoder would let through or spend time
// on: characters outside the alphabet (it skips CR and LF) and parts longer
// than max decoded bytes. Padding is outside the alphabet too.
func checkB64(part []byte, max int, what string) error {
	if len(part) > b64url.EncodedLen(max) {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, what, max)
	}
	for _, c := range part {
		if !isB64URL(c) {
			return fmt.Errorf("%w: %s: bad base64url", ErrMalformed, what)
		}
	}
	return nil
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// decodeHeader decodes and checks the protected header.
func decodeHeader(h []byte) (header []byte, kid string, err error) {
	if len(h) == 0 {
		return nil, "", fmt.Errorf("%w: empty header", ErrMalformed)
	}
	if err := checkB64(h, MaxHeaderSize, "header"); err != nil {
		return nil, "", err
	}
	header = make([]byte, b64url.DecodedLen(len(h)))
	n, err := b64url.Decode(header, h)
	if err != nil {
		return nil, "", fmt.Errorf("%w: header: bad base64url", ErrMalformed)
	}
	header = header[:n]
	kid, err = checkHeader(header)
	return header, kid, err
}

// checkHeader checks a decoded header: valid UTF-8, one JSON object with no
// member named twice (in any case), alg "EdDSA", a non-empty string kid, and
// neither crit nor b64, whose meaning this package does not implement.
// Other members (typ, cty, ...) are ignored, as RFC 7515 asks.
func checkHeader(b []byte) (kid string, err error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: header: %s", ErrMalformed, why)
	}
	if !utf8.Valid(b) {
		return bad("invalid utf-8")
	}
	if !json.Valid(b) {
		return bad("not json")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, _ := dec.Token(); t != json.Delim('{') {
		return bad("not a json object")
	}
	seen := make(map[string]bool)
	var alg string
	var haveAlg, haveKid bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad("not json")
		}
		name := t.(string) // json.Valid held: an object's keys are strings
		folded := strings.ToLower(name)
		if seen[folded] {
			return bad(fmt.Sprintf("member %q named twice", name))
		}
		seen[folded] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return bad("not json")
		}
		switch name {
		case "alg":
			if err := json.Unmarshal(v, &alg); err != nil {
				return bad("alg is not a string")
			}
			haveAlg = true
		case "kid":
			if err := json.Unmarshal(v, &kid); err != nil {
				return bad("kid is not a string")
			}
			haveKid = true
		case "crit", "b64":
			return bad(fmt.Sprintf("%q is not supported", name))
		}
	}
	switch {
	case !haveAlg:
		return bad("no alg")
	case alg != Alg:
		return bad(fmt.Sprintf("alg %q, want %q", alg, Alg))
	case !haveKid || kid == "":
		return bad("no kid")
	}
	return kid, nil
}
