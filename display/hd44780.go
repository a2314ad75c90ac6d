package display

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// HD44780 is a character LCD (16x2 and alike) on an HD44780 in 4-bit
// mode: RS, E and D4-D7 on GPIOs, R/W tied to ground. It shows the text
// on the first line, as Cells lays it out on Width cells. The box's own
// small driver: periph's hd44780 never sets the function (4-bit, two
// lines), which some controllers need after a warm start.
type HD44780 struct {
	rs, e gpio.PinOut
	data  [4]gpio.PinOut
	width int
	// Sleep waits; time.Sleep when nil (the controller's delays are
	// microseconds to milliseconds).
	Sleep func(time.Duration)
}

var _ Driver = (*HD44780)(nil)

// HD44780 instructions.
const (
	hdClear       = 0x01
	hdEntryInc    = 0x06 // cursor moves right, no shift
	hdDisplayOff  = 0x08
	hdDisplayOn   = 0x0C // display on, no cursor, no blink
	hdFunction4x2 = 0x28 // 4-bit bus, two lines, 5x8 dots
	hdDDRAM       = 0x80 // set the DDRAM address: | address
	// HD44780Width is the default width: a 16x2 display.
	HD44780Width = 16
)

// NewHD44780 initialises the controller by instruction (datasheet
// figure 24: three times 8-bit mode, then 4-bit) and blanks it. data is
// D4 to D7; width 0 means HD44780Width.
func NewHD44780(rs, e gpio.PinOut, data [4]gpio.PinOut, width int, sleep func(time.Duration)) (*HD44780, error) {
	if width <= 0 {
		width = HD44780Width
	}
	d := &HD44780{rs: rs, e: e, data: data, width: width, Sleep: sleep}
	if err := d.init(); err != nil {
		return nil, fmt.Errorf("%w: hd44780: %w", ErrDisplay, err)
	}
	return d, nil
}

func (d *HD44780) init() error {
	if err := errors.Join(d.rs.Out(gpio.Low), d.e.Out(gpio.Low)); err != nil {
		return err
	}
	d.sleep(40 * time.Millisecond) // after power-on
	for _, w := range []time.Duration{4100 * time.Microsecond, 100 * time.Microsecond, 100 * time.Microsecond} {
		if err := d.nibble(0x3); err != nil {
			return err
		}
		d.sleep(w)
	}
	if err := d.nibble(0x2); err != nil { // 4-bit from here on
		return err
	}
	for _, c := range []byte{hdFunction4x2, hdDisplayOff, hdClear, hdEntryInc, hdDisplayOn} {
		if err := d.command(c); err != nil {
			return err
		}
	}
	return nil
}

// Show writes text over the first line.
func (d *HD44780) Show(text string) error {
	line := string(Cells(text, 4)) // the model's width
	line += strings.Repeat(" ", max(d.width-len(line), 0))
	if err := d.command(hdDDRAM); err != nil { // line 1, column 1
		return fmt.Errorf("display: hd44780: %w", err)
	}
	for i := 0; i < len(line) && i < d.width; i++ {
		if err := d.write(true, line[i]); err != nil {
			return fmt.Errorf("display: hd44780: %w", err)
		}
	}
	return nil
}

// Halt clears the display and turns it off.
func (d *HD44780) Halt() error {
	return errors.Join(d.command(hdClear), d.command(hdDisplayOff))
}

func (d *HD44780) command(c byte) error {
	if err := d.write(false, c); err != nil {
		return err
	}
	if c == hdClear {
		d.sleep(2 * time.Millisecond)
	}
	return nil
}

// write sends a byte as two nibbles, high first; rs says data (true) or
// an instruction.
func (d *HD44780) write(rs bool, b byte) error {
	if err := d.rs.Out(gpio.Level(rs)); err != nil {
		return err
	}
	if err := errors.Join(d.nibble(b>>4), d.nibble(b&0x0F)); err != nil {
		return err
	}
	d.sleep(50 * time.Microsecond) // the longest ordinary instruction: 37 µs
	return nil
}

// nibble puts n on D4-D7 and strobes E: the controller latches on E's
// falling edge.
func (d *HD44780) nibble(n byte) error {
	for i, p := range d.data {
		if err := p.Out(n&(1<<i) != 0); err != nil {
			return err
		}
	}
	if err := d.e.Out(gpio.High); err != nil {
		return err
	}
	d.sleep(time.Microsecond)
	return d.e.Out(gpio.Low)
}

func (d *HD44780) sleep(t time.Duration) {
	if d.Sleep != nil {
		d.Sleep(t)
		return
	}
	time.Sleep(t)
}
