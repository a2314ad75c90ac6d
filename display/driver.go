package display

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/tm1637"
)

// Driver shows text on a display.
type Driver interface {
	// Show replaces what the display shows by text ("" blanks it).
	Show(text string) error
	// Halt blanks the display.
	Halt() error
}

// ErrDisplay is returned when a display cannot be set up.
var ErrDisplay = errors.New("display: cannot set up the display")

// Sim is a Driver that keeps the last text, for the sim backend and the
// console's display command. It is safe for concurrent use.
type Sim struct {
	mu   sync.Mutex
	text string
	n    int
}

var _ Driver = (*Sim)(nil)

// Show keeps text.
func (s *Sim) Show(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.text = text
	s.n++
	return nil
}

// Halt blanks the text.
func (s *Sim) Halt() error { return s.Show("") }

// Text returns the text last shown.
func (s *Sim) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text
}

// Shows returns how many times Show was called.
func (s *Sim) Shows() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Segments of a 7-segment digit, PGFEDCBA as tm1637 takes them.
var segments = map[rune]byte{
	'0': 0x3f, '1': 0x06, '2': 0x5b, '3': 0x4f, '4': 0x66, '5': 0x6d, '6': 0x7d, '7': 0x07, '8': 0x7f, '9': 0x6f,
	'-': 0x40, ' ': 0x00, 'b': 0x7c, 'E': 0x79, 'r': 0x50,
}

// Segments maps text to the segments of a width-digit display: numbers
// right-aligned (lockout seconds), anything else left-aligned; a longer
// text keeps its last width characters; a character with no 7-segment
// form is blank.
func Segments(text string, width int) []byte {
	r := []rune(text)
	if len(r) > width {
		r = r[len(r)-width:]
	}
	out := make([]byte, width)
	at := 0
	if isNumber(string(r)) {
		at = width - len(r)
	}
	for i, c := range r {
		out[at+i] = segments[c]
	}
	return out
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// TM1637 is a 4-digit 7-segment display on a TM1637, bit-banged on two
// GPIOs.
type TM1637 struct {
	dev   *tm1637.Dev
	width int
}

var _ Driver = (*TM1637)(nil)

// NewTM1637 sets up a TM1637 on clk and dio, blank and lit at a middle
// brightness.
func NewTM1637(clk gpio.PinOut, dio gpio.PinIO) (*TM1637, error) {
	dev, err := tm1637.New(clk, dio)
	if err != nil {
		return nil, fmt.Errorf("%w: tm1637: %w", ErrDisplay, err)
	}
	d := &TM1637{dev: dev, width: 4}
	if err := d.Show(""); err != nil {
		return nil, err
	}
	if err := dev.SetBrightness(tm1637.Brightness10); err != nil {
		return nil, fmt.Errorf("%w: tm1637: %w", ErrDisplay, err)
	}
	return d, nil
}

// Show writes text's segments.
func (d *TM1637) Show(text string) error {
	if _, err := d.dev.Write(Segments(text, d.width)); err != nil {
		return fmt.Errorf("display: tm1637: %w", err)
	}
	return nil
}

// Halt blanks the display and turns it off.
func (d *TM1637) Halt() error {
	return errors.Join(d.dev.Halt(), d.dev.SetBrightness(tm1637.Off))
}
