package fob

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func level(b0, b1, b2, b3 byte) []byte { return []byte{b0, b1, b2, b3, b0 ^ b1 ^ b2 ^ b3} }

func TestDecodeUID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		levels [][]byte
		saks   []byte
		want   string // "" = refused
	}{
		{"4 bytes", [][]byte{level(0xDE, 0xAD, 0xBE, 0xEF)}, []byte{0x08}, "DEADBEEF"},
		{"7 bytes", [][]byte{level(0x88, 0x04, 0x1A, 0x2B), level(0x3C, 0x4D, 0x5E, 0x6F)}, []byte{0x04, 0x00}, "041A2B3C4D5E6F"},
		{"10 bytes", [][]byte{level(0x88, 1, 2, 3), level(0x88, 4, 5, 6), level(7, 8, 9, 10)}, []byte{0x24, 0x04, 0x20}, "0102030405060708090A"},
		{"bad BCC", [][]byte{{0xDE, 0xAD, 0xBE, 0xEF, 0x00}}, []byte{0x08}, ""},
		{"bad BCC on level 2", [][]byte{level(0x88, 1, 2, 3), {4, 5, 6, 7, 1}}, []byte{0x04, 0}, ""},
		{"short level", [][]byte{{1, 2, 3, 0}}, []byte{0}, ""},
		{"no levels", nil, nil, ""},
		{"four levels", [][]byte{level(0x88, 1, 2, 3), level(0x88, 1, 2, 3), level(0x88, 1, 2, 3), level(1, 2, 3, 4)}, []byte{4, 4, 4, 0}, ""},
		{"cascade tag last", [][]byte{level(0x88, 1, 2, 3)}, []byte{0x08}, ""},
		{"SAK says more on the last", [][]byte{level(1, 2, 3, 4)}, []byte{0x04}, ""},
		{"no cascade tag before the last", [][]byte{level(0x01, 1, 2, 3), level(1, 2, 3, 4)}, []byte{0x04, 0}, ""},
		{"SAK says done too early", [][]byte{level(0x88, 1, 2, 3), level(1, 2, 3, 4)}, []byte{0x00, 0}, ""},
		{"all zero", [][]byte{level(0, 0, 0, 0)}, []byte{0x08}, ""},
		{"saks missing", [][]byte{level(1, 2, 3, 4)}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeUID(tc.levels, tc.saks)
			if tc.want == "" {
				if !errors.Is(err, ErrBadUID) {
					t.Fatalf("DecodeUID = %q, %v; want ErrBadUID", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("DecodeUID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodeUID: the bytes from the chip, cut into levels of five bytes
// and a SAK each, give a serial of 8, 14 or 20 upper-case hex digits that
// are the levels' UID bytes, or a refusal.
func FuzzDecodeUID(f *testing.F) {
	f.Add([]byte{0xDE, 0xAD, 0xBE, 0xEF, 0x22, 0x08})
	f.Add([]byte{0x88, 4, 0x1A, 0x2B, 0x88 ^ 4 ^ 0x1A ^ 0x2B, 0x04, 0x3C, 0x4D, 0x5E, 0x6F, 0x3C ^ 0x4D ^ 0x5E ^ 0x6F, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var levels [][]byte
		var saks []byte
		for len(b) >= 6 {
			levels, saks, b = append(levels, b[:5]), append(saks, b[5]), b[6:]
		}
		if len(b) > 0 { // a ragged tail is a short level
			levels, saks = append(levels, b), append(saks, 0)
		}
		s, err := DecodeUID(levels, saks)
		if err != nil {
			if !errors.Is(err, ErrBadUID) {
				t.Fatalf("error %v is not ErrBadUID", err)
			}
			return
		}
		if n := len(s); n != 8 && n != 14 && n != 20 || s != strings.ToUpper(s) {
			t.Fatalf("serial %q", s)
		}
		raw, _ := hex.DecodeString(s)
		var want []byte
		for i, l := range levels {
			if l[4] != l[0]^l[1]^l[2]^l[3] {
				t.Fatalf("level %d with a bad BCC accepted", i)
			}
			if i < len(levels)-1 {
				want = append(want, l[1:4]...)
			} else {
				want = append(want, l[:4]...)
			}
		}
		if string(raw) != string(want) {
			t.Fatalf("serial %s, want %X", s, want)
		}
	})
}
