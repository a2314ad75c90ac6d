package wiegand

import (
	"errors"
	"strings"
	"testing"
)

// frameOf parses a bit string such as "1 0101 0" (spaces ignored), first
// bit first.
func frameOf(t testing.TB, s string) Frame {
	t.Helper()
	var f Frame
	for _, r := range strings.ReplaceAll(s, " ", "") {
		if r != '0' && r != '1' {
			t.Fatalf("bad bit %q in %q", r, s)
		}
		f.Bits = f.Bits<<1 | uint64(r-'0')
		f.N++
	}
	return f
}

func TestDecodeCard(t *testing.T) {
	tests := []struct {
		name     string
		bits     string
		err      error
		card     Card
		raw, fac string
	}{
		{
			name: "26 facility 1 card 1",
			bits: "1 00000001 0000000000000001 0",
			card: Card{Bits: 26, Data: 0x010001, Facility: 1, Number: 1},
			raw:  "010001", fac: "010001",
		},
		{
			name: "26 facility AB card CDEF",
			bits: "1 10101011 1100110111101111 1",
			card: Card{Bits: 26, Data: 0xABCDEF, Facility: 0xAB, Number: 0xCDEF},
			raw:  "ABCDEF", fac: "ABCDEF",
		},
		{
			name: "26 all zero data",
			bits: "0 00000000 0000000000000000 1",
			card: Card{Bits: 26},
			raw:  "000000", fac: "000000",
		},
		{
			name: "34 facility 1234 card 5678",
			bits: "1 0001001000110100 0101011001111000 1",
			card: Card{Bits: 34, Data: 0x12345678, Facility: 0x1234, Number: 0x5678},
			raw:  "12345678", fac: "12345678",
		},
		{
			name: "34 facility 1 card 2",
			bits: "1 0000000000000001 0000000000000010 0",
			card: Card{Bits: 34, Data: 0x00010002, Facility: 1, Number: 2},
			raw:  "00010002", fac: "00010002",
		},
		{name: "26 bad leading parity", bits: "0 00000001 0000000000000001 0", err: ErrParity},
		{name: "26 bad trailing parity", bits: "1 00000001 0000000000000001 1", err: ErrParity},
		{name: "26 flipped data bit first half", bits: "1 00000011 0000000000000001 0", err: ErrParity},
		{name: "26 flipped data bit second half", bits: "1 00000001 0000000000000011 0", err: ErrParity},
		{name: "34 bad leading parity", bits: "0 0001001000110100 0101011001111000 1", err: ErrParity},
		{name: "34 bad trailing parity", bits: "1 0001001000110100 0101011001111000 0", err: ErrParity},
		{name: "all ones 26", bits: strings.Repeat("1", 26), err: ErrParity},
		{name: "25 bits", bits: "1 00000001 0000000000000001", err: ErrLength},
		{name: "27 bits", bits: "1 00000001 0000000000000001 00", err: ErrLength},
		{name: "empty", bits: "", err: ErrLength},
		{name: "4-bit key", bits: "0101", err: ErrLength},
		{name: "64 bits", bits: strings.Repeat("10", 32), err: ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frameOf(t, tt.bits)
			c, err := DecodeCard(f)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("DecodeCard(%s) err = %v, want %v", tt.bits, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeCard(%s): %v", tt.bits, err)
			}
			if c != tt.card {
				t.Errorf("card = %+v, want %+v", c, tt.card)
			}
			if got := c.Serial(FormatRaw); got != tt.raw {
				t.Errorf("raw serial = %q, want %q", got, tt.raw)
			}
			if got := c.Serial(FormatFacilityCard); got != tt.fac {
				t.Errorf("facility_card serial = %q, want %q", got, tt.fac)
			}
			if got := c.Frame(); got != f {
				t.Errorf("Frame() = %+v, want %+v", got, f)
			}
		})
	}
}

func TestDecodeCardIgnoresBitsAboveN(t *testing.T) {
	f := frameOf(t, "1 10101011 1100110111101111 1")
	f.Bits |= 0xFFFF << 40
	c, err := DecodeCard(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != 0xABCDEF {
		t.Errorf("data = %X, want ABCDEF", c.Data)
	}
}

func TestNewCard(t *testing.T) {
	tests := []struct {
		n              int
		facility, card uint16
		want           string // the frame, first bit first
		err            error
	}{
		{n: 26, facility: 1, card: 1, want: "1 00000001 0000000000000001 0"},
		{n: 26, facility: 0x1AB, card: 0xCDEF, want: "1 10101011 1100110111101111 1"}, // facility cut to 8 bits
		{n: 34, facility: 0x1234, card: 0x5678, want: "1 0001001000110100 0101011001111000 1"},
		{n: 35, err: ErrLength},
		{n: 0, err: ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c, err := NewCard(tt.n, tt.facility, tt.card)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.Frame(), frameOf(t, tt.want); got != want {
				t.Errorf("frame = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSerialFacilityCardPadding(t *testing.T) {
	tests := []struct {
		n              int
		facility, card uint16
		raw, fac       string
	}{
		{26, 0, 0x1, "000001", "000001"},
		{26, 0x5, 0xA, "05000A", "05000A"},
		{34, 0x1, 0x0, "00010000", "00010000"},
		{34, 0xFFFF, 0xFFFF, "FFFFFFFF", "FFFFFFFF"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := NewCard(tt.n, tt.facility, tt.card)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Serial(FormatRaw); got != tt.raw {
				t.Errorf("raw = %q, want %q", got, tt.raw)
			}
			if got := c.Serial(FormatFacilityCard); got != tt.fac {
				t.Errorf("facility_card = %q, want %q", got, tt.fac)
			}
		})
	}
}

func TestParseSerialFormat(t *testing.T) {
	tests := []struct {
		in   string
		want SerialFormat
		err  error
	}{
		{"", FormatRaw, nil},
		{"raw", FormatRaw, nil},
		{"facility_card", FormatFacilityCard, nil},
		{"RAW", 0, ErrFormat},
		{"decimal", 0, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSerialFormat(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSerialFormat(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if tt.in != "" && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func isUpperHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

func FuzzDecodeCard(f *testing.F) {
	f.Add(uint64(0b1_00000001_0000000000000001_0), 26)
	f.Add(uint64(0b1_0001001000110100_0101011001111000_1), 34)
	f.Add(uint64(0), 0)
	f.Add(^uint64(0), 64)
	f.Add(uint64(1), -5)
	f.Fuzz(func(t *testing.T, b uint64, n int) {
		fr := Frame{Bits: b, N: n}
		c, err := DecodeCard(fr)
		if err != nil {
			if !errors.Is(err, ErrLength) && !errors.Is(err, ErrParity) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrParity) && n != 26 && n != 34 {
				t.Fatalf("parity error for a %d-bit frame", n)
			}
			return
		}
		if n != 26 && n != 34 {
			t.Fatalf("decoded a %d-bit frame", n)
		}
		// Both parities, recomputed bit by bit.
		bit := func(i int) int { return int(b >> (n - 1 - i) & 1) } // i = 0 is the first bit
		half := (n - 2) / 2
		lead, trail := bit(0), bit(n-1)
		for i := 1; i <= half; i++ {
			lead += bit(i)
		}
		for i := half + 1; i <= 2*half; i++ {
			trail += bit(i)
		}
		if lead%2 != 0 || trail%2 != 1 {
			t.Fatalf("accepted bad parity: %0*b", n, b&(1<<n-1))
		}
		mask := uint64(1)<<n - 1
		if got := c.Frame(); got.N != n || got.Bits != b&mask {
			t.Fatalf("Frame() = %+v, want bits %b", got, b&mask)
		}
		if uint32(c.Facility)<<16|uint32(c.Number) != c.Data {
			t.Fatalf("facility %X and number %X do not make data %X", c.Facility, c.Number, c.Data)
		}
		digits := 6
		if n == 34 {
			digits = 8
		}
		for _, format := range []SerialFormat{FormatRaw, FormatFacilityCard} {
			s := c.Serial(format)
			if len(s) != digits || !isUpperHex(s) {
				t.Fatalf("%v serial %q: want %d upper-case hex digits", format, s, digits)
			}
		}
	})
}
