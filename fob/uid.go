package fob

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadUID is returned by DecodeUID for anticollision answers that do not
// make a UID.
var ErrBadUID = errors.New("fob: bad card UID")

// cascadeTag is the first byte of a cascade level that is not the last.
const cascadeTag = 0x88

// sakMore is the SAK bit that says the UID is not complete.
const sakMore = 0x04

// DecodeUID turns the answers of an ISO 14443-3 cascade into the fob
// serial: levels holds each level's anticollision answer (four bytes and
// their BCC), saks each level's SAK. A level before the last starts with
// the cascade tag 0x88 and its SAK says "more"; the last does neither. The
// UID is the last three bytes of every level before the last and the four
// bytes of the last: 4, 7 or 10 bytes, as upper-case hex. A wrong BCC, a
// wrong length, a cascade that does not add up or an all-zero UID is
// refused with ErrBadUID.
func DecodeUID(levels [][]byte, saks []byte) (string, error) {
	if len(levels) < 1 || len(levels) > 3 || len(saks) != len(levels) {
		return "", fmt.Errorf("%w: %d cascade levels", ErrBadUID, len(levels))
	}
	uid := make([]byte, 0, 10)
	for i, l := range levels {
		if len(l) != 5 {
			return "", fmt.Errorf("%w: level %d has %d bytes, want 5", ErrBadUID, i+1, len(l))
		}
		if bcc := l[0] ^ l[1] ^ l[2] ^ l[3]; bcc != l[4] {
			return "", fmt.Errorf("%w: level %d BCC %02X, want %02X", ErrBadUID, i+1, l[4], bcc)
		}
		last := i == len(levels)-1
		more := saks[i]&sakMore != 0
		switch {
		case !last && (l[0] != cascadeTag || !more):
			return "", fmt.Errorf("%w: level %d is not a cascade level", ErrBadUID, i+1)
		case last && (l[0] == cascadeTag || more):
			return "", fmt.Errorf("%w: level %d says the UID goes on", ErrBadUID, i+1)
		case last:
			uid = append(uid, l[:4]...)
		default:
			uid = append(uid, l[1:4]...)
		}
	}
	zero := true
	for _, b := range uid {
		zero = zero && b == 0
	}
	if zero {
		return "", fmt.Errorf("%w: all zero", ErrBadUID)
	}
	return strings.ToUpper(hex.EncodeToString(uid)), nil
}
