package display

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// lcdBus decodes what an HD44780 would latch: D4-D7 and RS at each falling
// edge of E, paired into bytes after the four init nibbles.
type lcdBus struct {
	rs, e *gpiotest.Pin
	d     [4]*gpiotest.Pin
	nibs  []struct {
		rs bool
		n  byte
	}
}

type ePin struct {
	gpiotest.Pin
	bus *lcdBus
}

func (p *ePin) Out(l gpio.Level) error {
	was := p.Pin.Read()
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	if was == gpio.High && l == gpio.Low {
		var n byte
		for i, d := range p.bus.d {
			if d.Read() == gpio.High {
				n |= 1 << i
			}
		}
		p.bus.nibs = append(p.bus.nibs, struct {
			rs bool
			n  byte
		}{bool(p.bus.rs.Read()), n})
	}
	return nil
}

// bytes returns the instructions and the data written after init's four
// nibbles: an instruction as "i XX", data as its character.
func (b *lcdBus) bytes(t *testing.T) (init []byte, out []string) {
	t.Helper()
	if len(b.nibs) < 4 {
		t.Fatalf("%d nibbles", len(b.nibs))
	}
	for _, n := range b.nibs[:4] {
		init = append(init, n.n)
	}
	rest := b.nibs[4:]
	if len(rest)%2 != 0 {
		t.Fatalf("odd number of nibbles after init: %d", len(rest))
	}
	for i := 0; i < len(rest); i += 2 {
		hi, lo := rest[i], rest[i+1]
		if hi.rs != lo.rs {
			t.Fatalf("RS changed within a byte at nibble %d", i)
		}
		v := hi.n<<4 | lo.n
		if hi.rs {
			out = append(out, string(rune(v)))
		} else {
			out = append(out, fmt.Sprintf("i %02X", v))
		}
	}
	return init, out
}

func TestHD44780(t *testing.T) {
	bus := &lcdBus{rs: &gpiotest.Pin{N: "rs"}}
	e := &ePin{Pin: gpiotest.Pin{N: "e"}, bus: bus}
	bus.e = &e.Pin
	var data [4]gpio.PinOut
	for i := range bus.d {
		bus.d[i] = &gpiotest.Pin{N: "d"}
		data[i] = bus.d[i]
	}
	var slept time.Duration
	d, err := NewHD44780(bus.rs, e, data, 16, func(t time.Duration) { slept += t })
	if err != nil {
		t.Fatal(err)
	}
	if slept < 40*time.Millisecond {
		t.Errorf("init waited %s, want at least the 40 ms after power-on", slept)
	}
	if err := d.Show("b 7"); err != nil {
		t.Fatal(err)
	}
	init, got := bus.bytes(t)
	if string(init) != "\x03\x03\x03\x02" {
		t.Errorf("init nibbles % x, want 03 03 03 02", init)
	}
	want := []string{"i 28", "i 08", "i 01", "i 06", "i 0C", "i 80"}
	for _, c := range "b 7             " {
		want = append(want, string(c))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("wrote\n%q\nwant\n%q", got, want)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, got := bus.bytes(t); strings.Join(got[len(got)-2:], "|") != "i 01|i 08" {
		t.Errorf("Halt wrote %q, want a clear and display off", got[len(got)-2:])
	}
}
