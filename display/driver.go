package display

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"time"

	"periph.io/x/conn/v3/gpio"
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
	out := make([]byte, width)
	for i, c := range Cells(text, width) {
		out[i] = segments[c]
	}
	return out
}

// Cells lays text out on a width-character display, as Segments does:
// numbers right-aligned, anything else left-aligned, a longer text keeping
// its last width characters, ' ' for an empty cell.
func Cells(text string, width int) []rune {
	r := []rune(text)
	if len(r) > width {
		r = r[len(r)-width:]
	}
	out := make([]rune, width)
	for i := range out {
		out[i] = ' '
	}
	at := 0
	if isNumber(string(r)) {
		at = width - len(r)
	}
	copy(out[at:], r)
	return out
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// TM1637 is a 4-digit 7-segment display on a TM1637, bit-banged on two
// GPIOs. The protocol is the chip's two-wire bus (datasheet section 6):
// a start is DIO falling while CLK is high, each byte goes LSB first with
// a ninth clock for the chip's ACK, a stop is DIO rising while CLK is
// high.
//
// The driver is the box's own rather than periph's tm1637, which times its
// half clock cycles with periph's host package: only cmd/ imports host.
// Delay, when set, waits half a clock cycle; by default a busy-wait of
// HalfCycle (the chip takes at most 250 kHz), which holds the CPU for
// the about 300 µs one update takes.
type TM1637 struct {
	clk   gpio.PinOut
	dio   gpio.PinOut
	width int
	// Delay waits half a clock cycle; nil: a busy-wait of HalfCycle.
	Delay func()
}

var _ Driver = (*TM1637)(nil)

// HalfCycle is half a TM1637 clock cycle at 250 kHz.
const HalfCycle = 2 * time.Microsecond

// TM1637 commands.
const (
	tmDataAutoInc = 0x40 // write display data, address auto-increment
	tmAddress0    = 0xC0 // the first digit
	tmOnMid       = 0x8B // display on, pulse width 10/16
	tmOff         = 0x80 // display off
	tmDigits      = 6    // the chip's digit registers
)

// NewTM1637 sets up a TM1637 on clk and dio, blank and lit at a middle
// brightness.
func NewTM1637(clk gpio.PinOut, dio gpio.PinOut) (*TM1637, error) {
	d := &TM1637{clk: clk, dio: dio, width: 4}
	if err := errors.Join(clk.Out(gpio.High), dio.Out(gpio.High)); err != nil {
		return nil, fmt.Errorf("%w: tm1637: %w", ErrDisplay, err)
	}
	if err := d.Show(""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDisplay, err)
	}
	if err := d.command(tmOnMid); err != nil {
		return nil, fmt.Errorf("%w: tm1637: %w", ErrDisplay, err)
	}
	return d, nil
}

// Show writes text's segments.
func (d *TM1637) Show(text string) error {
	if err := d.write(Segments(text, d.width)); err != nil {
		return fmt.Errorf("display: tm1637: %w", err)
	}
	return nil
}

// Halt blanks the display and turns it off.
func (d *TM1637) Halt() error {
	return errors.Join(d.write(nil), d.command(tmOff))
}

func (d *TM1637) write(seg []byte) error {
	if err := d.command(tmDataAutoInc); err != nil {
		return err
	}
	var data [1 + tmDigits]byte
	data[0] = tmAddress0
	copy(data[1:], seg)
	return d.frame(data[:]...)
}

func (d *TM1637) command(c byte) error { return d.frame(c) }

// frame sends one start, the bytes and a stop; it ends with both lines
// high, the bus idle.
func (d *TM1637) frame(bytes ...byte) error {
	var errs []error
	out := func(p gpio.PinOut, l gpio.Level) {
		if err := p.Out(l); err != nil {
			errs = append(errs, err)
		}
	}
	out(d.dio, gpio.Low) // start
	d.wait()
	out(d.clk, gpio.Low)
	for _, b := range bytes {
		for i := range 8 {
			out(d.dio, b&(1<<i) != 0)
			d.wait()
			out(d.clk, gpio.High)
			d.wait()
			out(d.clk, gpio.Low)
		}
		// The ninth clock: the chip pulls DIO low to acknowledge.
		out(d.dio, gpio.Low)
		d.wait()
		out(d.clk, gpio.High)
		d.wait()
		out(d.clk, gpio.Low)
	}
	d.wait() // stop
	out(d.clk, gpio.High)
	d.wait()
	out(d.dio, gpio.High)
	d.wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func (d *TM1637) wait() {
	if d.Delay != nil {
		d.Delay()
		return
	}
	// A busy-wait: the delay is far below the scheduler's granularity.
	for start := time.Now(); time.Since(start) < HalfCycle; {
	}
}
