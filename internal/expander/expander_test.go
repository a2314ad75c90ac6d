package expander

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"smartboxd/internal/expander/expandertest"
)

const addr = 0x20

// Opening an MCP23017 and making a pin an output at its inactive level must
// set the latches to that level before any pin becomes an output, and the
// pin's direction must change with the latch already right. This is the
// whole I2C conversation.
func TestMCP23017OpenWritesLatchesFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		idle  gpio.Level
		latch byte
	}{
		{"active-high locks", gpio.Low, 0x00},
		{"active-low locks", gpio.High, 0xFF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: []i2ctest.IO{
				// Open: latches to the idle level, then every pin an input.
				{Addr: addr, W: []byte{0x14, tc.latch}},
				{Addr: addr, W: []byte{0x15, tc.latch}},
				{Addr: addr, W: []byte{0x00, 0xFF}},
				{Addr: addr, W: []byte{0x01, 0xFF}},
				// The driver reads the direction registers.
				{Addr: addr, W: []byte{0x00}, R: []byte{0xFF}},
				{Addr: addr, W: []byte{0x01}, R: []byte{0xFF}},
				// Out(idle) on GPB3: direction to output; the latch, read
				// back, already holds idle, so it is not written.
				{Addr: addr, W: []byte{0x01, 0xF7}},
				{Addr: addr, W: []byte{0x15}, R: []byte{tc.latch}},
			}}
			c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: bus, Address: addr, Idle: tc.idle})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Pin("GPB3")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Out(tc.idle); err != nil {
				t.Fatal(err)
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A pulse after that writes only the latch, and Halt writes the latches
// back to idle before the directions.
func TestMCP23017PulseAndHalt(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: addr, W: []byte{0x14, 0x00}},
		{Addr: addr, W: []byte{0x15, 0x00}},
		{Addr: addr, W: []byte{0x00, 0xFF}},
		{Addr: addr, W: []byte{0x01, 0xFF}},
		{Addr: addr, W: []byte{0x00}, R: []byte{0xFF}},
		{Addr: addr, W: []byte{0x01}, R: []byte{0xFF}},
		{Addr: addr, W: []byte{0x00, 0xFE}},
		{Addr: addr, W: []byte{0x14}, R: []byte{0x00}},
		{Addr: addr, W: []byte{0x14, 0x01}}, // energised
		{Addr: addr, W: []byte{0x14, 0x00}}, // de-energised
		{Addr: addr, W: []byte{0x14, 0x00}}, // Halt
		{Addr: addr, W: []byte{0x15, 0x00}},
		{Addr: addr, W: []byte{0x00, 0xFF}},
		{Addr: addr, W: []byte{0x01, 0xFF}},
	}}
	c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: bus, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Pin("gpa0")
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low} {
		if err := p.Out(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := p.Out(gpio.High); !errors.Is(err, ErrHalted) {
		t.Errorf("Out after Halt = %v, want ErrHalted", err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestPCF8574Open(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x38, W: []byte{0xFF}}, // Open: all high
		{Addr: 0x38, W: []byte{0xFF}}, // the driver's belief set to all high
		{Addr: 0x38, W: []byte{0xFB}}, // P2 low: only P2 changes
		{Addr: 0x38, R: []byte{0xFB}}, // Read P0
		{Addr: 0x38, R: []byte{0xFA}}, // Read P0 again: low
	}}
	c, err := Open(Config{Name: "x2", Type: TypePCF8574, Bus: bus, Address: 0x38})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := c.Pin("P2")
	if err := p2.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	p0, _ := c.Pin("P0")
	if got := p0.Read(); got != gpio.High {
		t.Errorf("P0 = %s, want High", got)
	}
	if got := p0.Read(); got != gpio.Low {
		t.Errorf("P0 = %s, want Low", got)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenNoAnswer(t *testing.T) {
	for _, typ := range Types() {
		t.Run(typ, func(t *testing.T) {
			bus := &i2ctest.Playback{DontPanic: true} // every Tx fails
			_, err := Open(Config{Name: "x9", Type: typ, Bus: bus, Address: 0x21})
			if !errors.Is(err, ErrNoAnswer) {
				t.Fatalf("Open = %v, want ErrNoAnswer", err)
			}
			if want := "expander x9 (" + typ + " at 0x21"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the expander (%q)", err, want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Name: "x", Type: "mcp23018", Bus: bus, Address: 0x20}, ErrUnknownType},
		{Config{Name: "x", Type: TypeMCP23017, Bus: bus, Address: 0x40}, ErrBadAddress},
		{Config{Name: "x", Type: TypePCF8575, Bus: bus, Address: 0x38}, ErrBadAddress},
	} {
		if _, err := Open(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("Open(%+v) = %v, want %v", tc.cfg, err, tc.want)
		}
	}
	if bus.Count != 0 {
		t.Errorf("%d I2C transactions for a refused config", bus.Count)
	}
}

func TestCheckPin(t *testing.T) {
	for _, tc := range []struct {
		typ, pin string
		want     error
	}{
		{TypeMCP23017, "GPA0", nil},
		{TypeMCP23017, "GPB7", nil},
		{TypeMCP23017, "gpb7", nil},
		{TypeMCP23017, "GPB8", ErrBadPin},
		{TypeMCP23017, "GPC0", ErrBadPin},
		{TypeMCP23017, "P0", ErrBadPin},
		{TypeMCP23017, "", ErrBadPin},
		{TypeMCP23008, "GP7", nil},
		{TypeMCP23008, "GPA0", ErrBadPin},
		{TypePCF8574, "P7", nil},
		{TypePCF8574, "P8", ErrBadPin},
		{TypePCF8575, "P17", nil},
		{TypePCF8575, "P7", ErrBadPin},
		{"mcp23s17", "GPA0", ErrUnknownType},
	} {
		t.Run(tc.typ+":"+tc.pin, func(t *testing.T) {
			if err := CheckPin(tc.typ, tc.pin); !errors.Is(err, tc.want) {
				t.Errorf("CheckPin = %v, want %v", err, tc.want)
			}
		})
	}
	n, _ := PinNames(TypeMCP23017)
	if len(n) != 16 || n[0] != "GPA0" || n[8] != "GPB0" {
		t.Errorf("mcp23017 pins = %v", n)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		addr int
		ok   bool
	}{
		{TypeMCP23017, 0x20, true}, {TypeMCP23017, 0x27, true}, {TypeMCP23017, 0x28, false}, {TypeMCP23017, 0x1F, false},
		{TypePCF8574, 0x38, true}, {TypePCF8574, 0x3F, true}, {TypePCF8574, 0x30, false},
		{TypePCF8575, 0x21, true}, {TypePCF8575, 0x38, false}, {TypeMCP23008, -1, false},
	} {
		err := CheckAddress(tc.typ, tc.addr)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadAddress)) {
			t.Errorf("CheckAddress(%s, %#x) = %v, want ok=%v", tc.typ, tc.addr, err, tc.ok)
		}
	}
}

// Two goroutines writing pins of one port must not undo each other.
func TestConcurrentPinsOfOnePort(t *testing.T) {
	f := expandertest.NewMCP23017(addr)
	c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: f, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	lock, _ := c.Pin("GPA0")
	led, _ := c.Pin("GPA1")
	lock.Out(gpio.Low)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 500 {
			lock.Out(i%2 == 0)
		}
		lock.Out(gpio.Low)
	}()
	go func() {
		defer wg.Done()
		for i := range 500 {
			led.Out(i%2 == 1)
		}
		led.Out(gpio.High)
	}()
	wg.Wait()
	if got := f.Level(0); got != 0 {
		t.Errorf("lock GPA0 = %d after its last Out(Low)", got)
	}
	if got := f.Level(1); got != 1 {
		t.Errorf("led GPA1 = %d after its last Out(High)", got)
	}
}

// A failing read keeps the pin's last good level and is counted.
func TestReadErrorKeepsLastLevel(t *testing.T) {
	f := expandertest.NewMCP23017(addr)
	c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: f, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	door, _ := c.Pin("GPB0")
	if err := door.In(gpio.PullUp, gpio.NoEdge); err != nil {
		t.Fatal(err)
	}
	if err := door.In(gpio.PullUp, gpio.BothEdges); err == nil {
		t.Error("In with edge detection accepted")
	}
	f.SetInputs(1 << 8)
	if got := door.Read(); got != gpio.High {
		t.Fatalf("door = %s, want High", got)
	}
	f.SetFailing(true)
	f.SetInputs(0)
	if got := door.Read(); got != gpio.High {
		t.Errorf("door = %s after a failed read, want the last level High", got)
	}
	if s := c.Stats(); s.ReadErrors != 1 || s.LastError == "" {
		t.Errorf("stats = %+v", s)
	}
	if door.WaitForEdge(0) {
		t.Error("WaitForEdge = true")
	}
}

func TestResolve(t *testing.T) {
	f := expandertest.NewMCP23017(addr)
	c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: f, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	pi := gpiotest.Pin{N: "GPIO17"}
	s, err := NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	s.ByName = func(n string) gpio.PinIO {
		if n == "GPIO17" {
			return &pi
		}
		return nil
	}
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"x1:GPA0", "x1:GPA0", nil},
		{"x1:gpb7", "x1:GPB7", nil},
		{"GPIO17", "GPIO17", nil},
		{"x1:GPB8", "", ErrBadPin},
		{"x2:GPA0", "", ErrUnknownExpander},
		{"GPIO99", "", ErrNoPin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.Resolve(tc.name)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Resolve = %v, want %v", err, tc.err)
			}
			if err == nil && p.Name() != tc.want {
				t.Errorf("name = %s, want %s", p.Name(), tc.want)
			}
		})
	}
	if _, err := NewSet(c, c); err == nil {
		t.Error("NewSet took two expanders of one name")
	}
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	for bit := range 16 {
		if got := f.Level(bit); got != -1 {
			t.Errorf("bit %d = %d after Halt, want an input", bit, got)
		}
	}
}

func ExampleCheckPin() {
	fmt.Println(CheckPin(TypeMCP23017, "GPB0"))
	fmt.Println(CheckPin(TypePCF8574, "GPB0"))
	// Output:
	// <nil>
	// expander: no such pin "GPB0" on a pcf8574 (P0 to P7)
}
