package wiegand

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrLength is returned when a frame is neither 26 nor 34 bits long.
var ErrLength = errors.New("wiegand: not a 26 or 34 bit card frame")

// ErrParity is returned when a card frame's leading even or trailing odd
// parity bit is wrong.
var ErrParity = errors.New("wiegand: parity error")

// ErrFormat is returned when a serial format name is unknown.
var ErrFormat = errors.New("wiegand: unknown serial format")

// Card is a decoded card frame. A 26-bit frame (H10301) carries an 8-bit
// facility code and a 16-bit card number, a 34-bit frame a 16-bit facility
// code and a 16-bit card number; both have a leading even parity bit over
// the first half of the data bits and a trailing odd parity bit over the
// second half.
type Card struct {
	Bits     int    // frame length: 26 or 34
	Data     uint32 // the data bits between the parity bits: 24 or 32
	Facility uint16 // facility code: the data bits above the card number
	Number   uint16 // card number: the low 16 data bits
}

// DecodeCard checks the length and both parity bits of a card frame and
// returns its card. Bits of f.Bits above f.N are ignored.
func DecodeCard(f Frame) (Card, error) {
	if f.N != 26 && f.N != 34 {
		return Card{}, fmt.Errorf("%w: %d bits", ErrLength, f.N)
	}
	dataBits := f.N - 2
	half := dataBits / 2
	data := uint32(f.Bits >> 1 & (1<<dataBits - 1))
	lead := f.Bits >> (f.N - 1) & 1
	trail := f.Bits & 1
	if (uint64(bits.OnesCount32(data>>half))+lead)%2 != 0 {
		return Card{}, fmt.Errorf("%w: leading even parity", ErrParity)
	}
	if (uint64(bits.OnesCount32(data&(1<<half-1)))+trail)%2 != 1 {
		return Card{}, fmt.Errorf("%w: trailing odd parity", ErrParity)
	}
	return Card{
		Bits:     f.N,
		Data:     data,
		Facility: uint16(data >> 16),
		Number:   uint16(data),
	}, nil
}

// Frame encodes c as a frame with its parity bits; it is the inverse of
// DecodeCard. Data bits beyond the frame length are dropped. A Card whose
// Bits is neither 26 nor 34 encodes as 26 bits.
func (c Card) Frame() Frame {
	n := c.Bits
	if n != 34 {
		n = 26
	}
	dataBits := n - 2
	half := dataBits / 2
	data := uint64(c.Data) & (1<<dataBits - 1)
	lead := uint64(bits.OnesCount64(data>>half) % 2)
	trail := uint64(1 - bits.OnesCount64(data&(1<<half-1))%2)
	return Frame{Bits: lead<<(n-1) | data<<1 | trail, N: n}
}

// NewCard returns the card of an n-bit frame (26 or 34) with the given
// facility code and card number. A 26-bit card keeps the low 8 bits of
// facility.
func NewCard(n int, facility, number uint16) (Card, error) {
	switch n {
	case 26:
		facility &= 0xFF
	case 34:
	default:
		return Card{}, fmt.Errorf("%w: %d bits", ErrLength, n)
	}
	return Card{
		Bits:     n,
		Data:     uint32(facility)<<16 | uint32(number),
		Facility: facility,
		Number:   number,
	}, nil
}

// SerialFormat is how a card becomes a fob serial.
type SerialFormat int

const (
	// FormatRaw is the data bits as upper-case hex: 6 digits for 26 bits,
	// 8 for 34 bits. It is the default.
	FormatRaw SerialFormat = iota
	// FormatFacilityCard is the facility code and the card number as
	// upper-case hex, each zero padded, joined without a separator: 2+4
	// digits for 26 bits, 4+4 for 34 bits.
	FormatFacilityCard
)

// ParseSerialFormat returns the format named by a reader's serial setting:
// "raw" (or "") or "facility_card".
func ParseSerialFormat(name string) (SerialFormat, error) {
	switch name {
	case "", "raw":
		return FormatRaw, nil
	case "facility_card":
		return FormatFacilityCard, nil
	}
	return FormatRaw, fmt.Errorf("%w: %q", ErrFormat, name)
}

// String returns the format's name in the configuration.
func (f SerialFormat) String() string {
	if f == FormatFacilityCard {
		return "facility_card"
	}
	return "raw"
}

// Serial returns the card's fob serial in format f.
func (c Card) Serial(f SerialFormat) string {
	wide := c.Bits == 34
	if f == FormatFacilityCard {
		if wide {
			return fmt.Sprintf("%04X%04X", c.Facility, c.Number)
		}
		return fmt.Sprintf("%02X%04X", c.Facility&0xFF, c.Number)
	}
	if wide {
		return fmt.Sprintf("%08X", c.Data)
	}
	return fmt.Sprintf("%06X", c.Data&0xFFFFFF)
}
