package expander

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
	"periph.io/x/devices/v3/mcp23xxx"
	"periph.io/x/devices/v3/pcf857x"
)

// MCP23xxx registers with IOCON.BANK = 0; port B is port A + 1.
const (
	regIODIR17 = 0x00
	regGPIO17  = 0x12
	regOLAT17  = 0x14
	regIODIR08 = 0x00
	regGPIO08  = 0x09
	regOLAT08  = 0x0A
)

// Config describes one expander to open.
type Config struct {
	Name    string  // the name its pins are known by, "x1" in "x1:GPA0"
	Type    string  // TypeMCP23017, TypeMCP23008, TypePCF8574 or TypePCF8575
	Bus     i2c.Bus // the bus it is on
	Address uint16
	// Idle is the level every MCP23xxx output latch is set to at Open and
	// Halt: the level that leaves a lock de-energised (Low for active-high
	// locks). A PCF857x ignores it: its pins go high.
	Idle gpio.Level
}

// Stats counts a chip's I2C trouble.
type Stats struct {
	ReadErrors uint64 // input reads that failed; the pin kept its last level
	LastError  string // the last failure, kept
}

// Chip is one open expander. Its pins are safe for concurrent use: every
// operation on any of them holds the chip's lock.
type Chip struct {
	name, typ string
	bus       i2c.Bus
	dev       i2c.Dev
	idle      gpio.Level
	info      typeInfo

	mu     sync.Mutex
	pins   []gpio.PinIO // the driver's pins, in bit order
	last   uint16       // last good input levels, a bit per pin
	halted bool
	stats  Stats
}

var _ conn.Resource = (*Chip)(nil)

// Open writes the chip's safe state (see the package doc) and returns it.
// A chip that does not answer is an error wrapping ErrNoAnswer that names
// it.
func Open(cfg Config) (*Chip, error) {
	ti, ok := types[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("expander %s: %w %q", cfg.Name, ErrUnknownType, cfg.Type)
	}
	if cfg.Name == "" || cfg.Bus == nil {
		return nil, errors.New("expander: a name and a bus are required")
	}
	if err := CheckAddress(cfg.Type, int(cfg.Address)); err != nil {
		return nil, fmt.Errorf("expander %s: %w", cfg.Name, err)
	}
	c := &Chip{
		name: cfg.Name, typ: cfg.Type, bus: cfg.Bus, idle: cfg.Idle, info: ti,
		dev: i2c.Dev{Bus: cfg.Bus, Addr: cfg.Address},
	}
	noAnswer := func(err error) error {
		return fmt.Errorf("expander %s (%s at %#x on %s): %w: %w", c.name, c.typ, cfg.Address, cfg.Bus, ErrNoAnswer, err)
	}
	if err := c.inert(); err != nil {
		return nil, noAnswer(err)
	}
	switch cfg.Type {
	case TypeMCP23017, TypeMCP23008:
		v := mcp23xxx.MCP23017
		if cfg.Type == TypeMCP23008 {
			v = mcp23xxx.MCP23008
		}
		d, err := mcp23xxx.NewI2C(cfg.Bus, v, cfg.Address)
		if err != nil {
			return nil, noAnswer(err)
		}
		for _, port := range d.Pins {
			for _, p := range port {
				c.pins = append(c.pins, p)
			}
		}
	case TypePCF8574, TypePCF8575:
		v := pcf857x.PCF8574
		if cfg.Type == TypePCF8575 {
			v = pcf857x.PCF8575
		}
		d, err := pcf857x.New(cfg.Bus, cfg.Address, v)
		if err != nil {
			return nil, noAnswer(err)
		}
		// The driver starts believing every pin is low, and writes its
		// whole belief with the first pin written: that would drive every
		// other pin low. One group write of all ones makes its belief the
		// chip's state (written by inert above) first.
		all := make([]int, len(ti.pins))
		for i := range all {
			all[i] = i
		}
		g, err := d.Group(all...)
		if err != nil {
			return nil, noAnswer(err)
		}
		if err := g.Out(gpio.GPIOValue(1)<<len(all)-1, 0); err != nil {
			return nil, noAnswer(err)
		}
		c.pins = d.Pins
		c.last = 1<<len(all) - 1
	}
	if len(c.pins) != len(ti.pins) {
		return nil, fmt.Errorf("expander %s: driver has %d pins, want %d", c.name, len(c.pins), len(ti.pins))
	}
	return c, nil
}

// inert writes the chip's safe state: MCP23xxx latches to idle, then all
// pins inputs; PCF857x all pins high. c.mu is held or c is not shared yet.
func (c *Chip) inert() error {
	switch c.typ {
	case TypeMCP23017:
		latch := byte(0)
		if c.idle {
			latch = 0xFF
		}
		return c.writeRegs([2]byte{regOLAT17, latch}, [2]byte{regOLAT17 + 1, latch},
			[2]byte{regIODIR17, 0xFF}, [2]byte{regIODIR17 + 1, 0xFF})
	case TypeMCP23008:
		latch := byte(0)
		if c.idle {
			latch = 0xFF
		}
		return c.writeRegs([2]byte{regOLAT08, latch}, [2]byte{regIODIR08, 0xFF})
	case TypePCF8574:
		return c.dev.Tx([]byte{0xFF}, nil)
	default: // TypePCF8575
		return c.dev.Tx([]byte{0xFF, 0xFF}, nil)
	}
}

func (c *Chip) writeRegs(regs ...[2]byte) error {
	for _, r := range regs {
		if err := c.dev.Tx(r[:], nil); err != nil {
			return err
		}
	}
	return nil
}

// readInputs reads every pin's level. c.mu is held.
func (c *Chip) readInputs() (uint16, error) {
	switch c.typ {
	case TypeMCP23017:
		var r [2]byte
		err := c.dev.Tx([]byte{regGPIO17}, r[:]) // GPIOA then GPIOB
		return uint16(r[0]) | uint16(r[1])<<8, err
	case TypeMCP23008:
		var r [1]byte
		err := c.dev.Tx([]byte{regGPIO08}, r[:])
		return uint16(r[0]), err
	case TypePCF8574:
		var r [1]byte
		err := c.dev.Tx(nil, r[:])
		return uint16(r[0]), err
	default:
		var r [2]byte
		err := c.dev.Tx(nil, r[:])
		return uint16(r[0]) | uint16(r[1])<<8, err
	}
}

// Name returns the expander's configured name.
func (c *Chip) Name() string { return c.name }

// Type returns the expander's type.
func (c *Chip) Type() string { return c.typ }

// String implements conn.Resource.
func (c *Chip) String() string { return fmt.Sprintf("%s(%s@%#x)", c.name, c.typ, c.dev.Addr) }

// Stats returns the chip's counters.
func (c *Chip) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Halt implements conn.Resource: it writes the safe state of Open again
// (outputs at Idle, then inputs) and refuses every later Out and In. It is
// idempotent and safe on a nil *Chip.
func (c *Chip) Halt() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.halted = true
	if err := c.inert(); err != nil {
		return fmt.Errorf("expander %s: halt: %w", c.name, err)
	}
	return nil
}

// Pin returns the pin named pin (a datasheet name, see the package doc).
func (c *Chip) Pin(name string) (gpio.PinIO, error) {
	i, err := pinIndex(c.typ, name)
	if err != nil {
		return nil, fmt.Errorf("expander %s: %w", c.name, err)
	}
	return &chipPin{c: c, bit: i, name: c.name + ":" + c.info.pins[i]}, nil
}

// chipPin is one pin of a Chip, locked and with error-aware reads.
type chipPin struct {
	c    *Chip
	bit  int
	name string
}

var _ gpio.PinIO = (*chipPin)(nil)

func (p *chipPin) drv() gpio.PinIO { return p.c.pins[p.bit] }

func (p *chipPin) String() string   { return p.name }
func (p *chipPin) Name() string     { return p.name }
func (p *chipPin) Number() int      { return p.bit }
func (p *chipPin) Function() string { return string(p.Func()) }

// Func returns gpio.IN or gpio.OUT as the driver knows it.
func (p *chipPin) Func() pin.Func {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if f, ok := p.drv().(pin.PinFunc); ok {
		return f.Func()
	}
	return pin.FuncNone
}

// Halt drives the pin to the chip's idle level and makes it an input.
func (p *chipPin) Halt() error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.halted {
		return nil
	}
	if p.c.info.latched {
		if err := p.drv().Out(p.c.idle); err != nil {
			return fmt.Errorf("expander %s: halt: %w", p.name, err)
		}
	}
	if err := p.drv().In(gpio.Float, gpio.NoEdge); err != nil {
		return fmt.Errorf("expander %s: halt: %w", p.name, err)
	}
	return nil
}

// Out drives the pin. On an MCP23xxx the latch already holds Idle from
// Open, so a first Out(Idle) switches the direction with no glitch.
func (p *chipPin) Out(l gpio.Level) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.halted {
		return fmt.Errorf("expander %s: out: %w", p.name, ErrHalted)
	}
	if err := p.drv().Out(l); err != nil {
		return fmt.Errorf("expander %s: out %s: %w", p.name, l, err)
	}
	return nil
}

// In makes the pin an input. Edge detection is not available: edge must
// be gpio.NoEdge. An MCP23xxx has pull-ups, no pull-downs; a PCF857x has a
// weak pull-up whatever pull says.
func (p *chipPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return fmt.Errorf("expander %s: in: edge detection is not supported", p.name)
	}
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.halted {
		return fmt.Errorf("expander %s: in: %w", p.name, ErrHalted)
	}
	if err := p.drv().In(pull, edge); err != nil {
		return fmt.Errorf("expander %s: in: %w", p.name, err)
	}
	return nil
}

// Read reads the pin's level from the chip. On an I2C error it returns the
// last good level and counts the error.
func (p *chipPin) Read() gpio.Level {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	v, err := p.c.readInputs()
	if err != nil {
		p.c.stats.ReadErrors++
		p.c.stats.LastError = fmt.Sprintf("expander %s: read: %v", p.c.name, err)
	} else {
		p.c.last = v
	}
	return gpio.Level(p.c.last&(1<<p.bit) != 0)
}

// WaitForEdge returns false at once: expander pins have no edge detection.
func (p *chipPin) WaitForEdge(time.Duration) bool { return false }

func (p *chipPin) Pull() gpio.Pull {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return p.drv().Pull()
}

func (p *chipPin) DefaultPull() gpio.Pull { return gpio.Float }

// PWM is not supported.
func (p *chipPin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("expander %s: PWM is not supported", p.name)
}

// Set is the open expanders of a box, by name.
type Set struct {
	chips map[string]*Chip
	order []*Chip
	// ByName finds a pin that is not an expander's; gpioreg.ByName when
	// nil. Tests put gpiotest pins here.
	ByName func(name string) gpio.PinIO
}

// NewSet returns a Set of chips; their names must differ.
func NewSet(chips ...*Chip) (*Set, error) {
	s := &Set{chips: make(map[string]*Chip, len(chips))}
	for _, c := range chips {
		if _, dup := s.chips[c.name]; dup {
			return nil, fmt.Errorf("expander: two expanders named %s", c.name)
		}
		s.chips[c.name] = c
		s.order = append(s.order, c)
	}
	return s, nil
}

// Chips returns the chips in the order given to NewSet.
func (s *Set) Chips() []*Chip { return s.order }

// Resolve returns the pin called name: NAME:PIN on an expander of the set,
// or, without a colon, the host's GPIO of that name.
func (s *Set) Resolve(name string) (gpio.PinIO, error) {
	exp, pinName, ok := Split(name)
	if !ok {
		byName := s.ByName
		if byName == nil {
			byName = gpioreg.ByName
		}
		if p := byName(name); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("%w %q", ErrNoPin, name)
	}
	c, ok := s.chips[exp]
	if !ok {
		return nil, fmt.Errorf("%w %q in pin %s", ErrUnknownExpander, exp, name)
	}
	return c.Pin(pinName)
}

// Halt halts every chip, all of them even when one fails. It is safe on a
// nil *Set.
func (s *Set) Halt() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, c := range s.order {
		errs = append(errs, c.Halt())
	}
	return errors.Join(errs...)
}
