// Package trust decides whom a SmartBox obeys (contract §7): it reads and
// writes the signed commands, knows what each role may send, keeps the
// per-key replay window, and opens the sealed codes a cloud sends.
//
// It imports nothing of the daemon's, so a cloud written in Go signs and
// seals with the same code the box verifies and opens with.
//
// # Signed commands
//
// A command is a JWS in compact serialization (RFC 7515) with the header
// {"alg":"EdDSA","kid":"<key name>"} (RFC 8037, Ed25519). Sign makes one;
// Parse and Verify read one strictly, on crypto/ed25519 alone rather than a
// JOSE library, so that what they accept is small and exact: three parts of
// unpadded, canonical base64url; a header that is one JSON object in valid
// UTF-8, at most MaxHeaderSize bytes, with no member named twice (in any
// case), alg "EdDSA", a non-empty string kid, and neither crit nor b64; a
// payload of at most MaxPayloadSize bytes; a 64-byte signature. The payload
// is opaque here: the command decoder checks it. Anything Parse accepts
// re-encodes (JWS.Compact) to the same bytes.
//
// # Replay window
//
// Each key's counters start at 1. A Window refuses a counter it has seen
// and one WindowSize (1,024) or more below the highest it has seen, and
// accepts any other, also out of order. Its binary encoding,
// WindowEncodedSize bytes, is meant to be stored in the transaction that
// applies the command.
//
// # Base64
//
// Keys and sealed codes are standard base64 (the alphabet with + and /).
// Encoders here write it padded; decoders take it with or without padding,
// but refuse line breaks, the URL-safe alphabet and non-zero trailing bits,
// so one value has one spelling.
//
// # Sealed codes
//
// A code travels as an anonymous NaCl sealed box (nacl/box.SealAnonymous)
// to the box's X25519 Identity, kept in one file of one line, "x25519 " and
// the standard base64 of the 32-byte private key (mode 0600). Seal makes
// one, OpenSealed and Identity.Open open one; any failure is ErrSealed and
// tells nothing about the content.
//
// # Key files
//
// A public key is the standard base64 of its 32 bytes, as in the config's
// ed25519 and release_keys. A fleet operator's signing key file
// (EncodePrivateKey) holds the standard base64 of the 32-byte Ed25519 seed
// on one line.
package trust
