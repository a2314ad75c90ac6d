// Package offline computes and checks SmartBox offline codes, the codes a
// cloud can give a guest while the box is cut off, with nothing sent to the
// box (contract §8). It imports nothing else of smartboxd, so a cloud
// written in Go can use it to make codes.
//
// An offline code has 14 digits, M C HHHH TTTTTTTT:
//
//   - M, the mode: 1 pickup, 2 drop-off, 3 pickup once, 4 drop-off once.
//   - C, the duration class: 0-9 stand for 1, 2, 4, 8, 24, 48, 72, 168, 336
//     and 672 hours.
//   - HHHH, the start hour S modulo 10,000, where S counts whole hours since
//     2024-01-01T00:00:00Z (Epoch). A box takes the largest S with that
//     remainder that is at most its current hour plus one (Parsed.Start), so
//     a code made by a cloud whose clock runs up to an hour ahead still
//     resolves to the hour it was made for.
//   - TTTTTTTT, the tag: the first 8 bytes of
//     HMAC-SHA256(key, "smartbox-offline-1|" + box_id + "|" + key_id + "|" + M + C + "|" + S),
//     with M and C as their digits and S in decimal, read as a big-endian
//     unsigned integer, modulo 10^8, as eight digits with leading zeros.
//
// A code is valid from hour S for its class's hours (Window), for the key
// whose key id makes the tag match (Key.Match). The key is the box's
// 32-byte offline key.
//
// # Test vectors
//
// testdata/vectors.py is the algorithm written a second time, in Python
// with its standard library only; it writes testdata/vectors.json, which
// the tests here regenerate code by code, and testdata/vectors.md, the
// table the README shows. A cloud in another language can test itself
// against the same file.
//
// # Caveats
//
// The message is not length-prefixed: it is unambiguous only because a box's
// id is fixed, so the key id is everything between the box id and the last
// two "|". Eight digits of tag are 27 bits: with n key ids to try, a guessed
// code matches one with a chance of n in 10^8, which is why a box counts
// wrong entries and locks its keypad out.
package offline
