package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"smartboxd/fob"
	"smartboxd/internal/config"
	"smartboxd/internal/expander"
	"smartboxd/internal/wiegand"
	"smartboxd/keypad"
	"smartboxd/locks"
)

// hardware is the box's pins: simulated in memory, or the board's GPIO and
// the I/O expanders on its I2C buses.
type hardware struct {
	bins   []locks.Bin
	sim    *locks.Sim  // the sim backend's pins, for the console's sim door
	buzzer gpio.PinOut // optional keypad feedback
	leds   map[int]gpio.PinOut

	env       hostEnv
	lockOff   gpio.Level    // the level that leaves a lock de-energised
	expanders *expander.Set // nil on the sim backend
	buses     map[string]i2c.BusCloser
	closers   []io.Closer    // SPI ports
	halts     []func() error // what sits on the pins (the LEDs), halted first
}

// hostEnv is how the daemon reaches the board. boardEnv is the real one;
// tests give fake buses and pins.
type hostEnv struct {
	init    func() error
	openI2C func(name string) (i2c.BusCloser, error)
	openSPI func(name string) (spi.PortCloser, error)
	pin     func(name string) gpio.PinIO
}

var boardEnv = hostEnv{
	init:    func() error { _, err := host.Init(); return err },
	openI2C: i2creg.Open,
	openSPI: spireg.Open,
	pin:     gpioreg.ByName,
}

// openHardware resolves every pin the config names. On the sim backend they
// are periph gpiotest pins; on gpio, the board's pins by name and the
// expanders' pins as NAME:PIN. Every expander is opened first, its outputs
// latched at the level that leaves a lock off (see internal/expander); an
// expander that does not answer stops start-up, named. close halts the
// expanders and closes the buses.
func openHardware(cfg *config.Config, env hostEnv) (hw *hardware, err error) {
	lockActive, _ := locks.ParsePolarity(cfg.Hardware.LockActive)
	if cfg.Hardware.Backend != "gpio" {
		withDoor := map[int]bool{}
		hw := &hardware{leds: map[int]gpio.PinOut{}, lockOff: !lockActive.On()}
		for _, b := range cfg.Hardware.Bins {
			withDoor[b.ID] = b.Door != ""
			if b.LED != "" {
				hw.leds[b.ID] = &gpiotest.Pin{N: fmt.Sprintf("sim-led-%d", b.ID)}
			}
		}
		hw.sim = locks.NewSimPins(cfg.BinIDs(), func(id int) bool { return withDoor[id] })
		hw.bins = hw.sim.Bins()
		return hw, nil
	}
	if err := env.init(); err != nil {
		return nil, fmt.Errorf("hardware: periph host init: %w", err)
	}
	hw = &hardware{env: env, lockOff: !lockActive.On(), buses: map[string]i2c.BusCloser{}, leds: map[int]gpio.PinOut{}}
	defer func() {
		if err != nil {
			hw.close()
		}
	}()
	var chips []*expander.Chip
	for _, e := range cfg.Hardware.Expanders {
		bus, err := hw.bus(e.Bus)
		if err != nil {
			return hw, fmt.Errorf("hardware: expander %s: %w", e.Name, err)
		}
		c, err := expander.Open(expander.Config{Name: e.Name, Type: e.Type, Bus: bus, Address: uint16(e.Address), Idle: hw.lockOff})
		if err != nil {
			hw.expanders, _ = expander.NewSet(chips...) // halted by close
			return hw, fmt.Errorf("hardware: %w", err)
		}
		chips = append(chips, c)
	}
	if hw.expanders, err = expander.NewSet(chips...); err != nil {
		return hw, fmt.Errorf("hardware: %w", err)
	}
	hw.expanders.ByName = env.pin
	for _, b := range cfg.Hardware.Bins {
		lb := locks.Bin{ID: b.ID}
		if lb.Lock, err = hw.pin(b.Lock); err != nil {
			return hw, fmt.Errorf("hardware: bin %d lock: %w", b.ID, err)
		}
		if b.Door != "" {
			if lb.Door, err = hw.pin(b.Door); err != nil {
				return hw, fmt.Errorf("hardware: bin %d door: %w", b.ID, err)
			}
		}
		if b.LED != "" {
			if hw.leds[b.ID], err = hw.pin(b.LED); err != nil {
				return hw, fmt.Errorf("hardware: bin %d led: %w", b.ID, err)
			}
		}
		hw.bins = append(hw.bins, lb)
	}
	if name := cfg.Hardware.Buzzer; name != "" {
		if hw.buzzer, err = hw.pin(name); err != nil {
			return hw, fmt.Errorf("hardware: buzzer: %w", err)
		}
	}
	return hw, nil
}

// pin resolves a pin name: NAME:PIN on an expander, or a GPIO of the host.
func (hw *hardware) pin(name string) (gpio.PinIO, error) {
	if hw.expanders == nil {
		return nil, fmt.Errorf("no pin %q", name)
	}
	return hw.expanders.Resolve(name)
}

// bus returns the I2C bus named name, opening it once: every device on a
// bus shares one handle.
func (hw *hardware) bus(name string) (i2c.Bus, error) {
	if b, ok := hw.buses[name]; ok {
		return b, nil
	}
	b, err := hw.env.openI2C(name)
	if err != nil {
		return nil, fmt.Errorf("i2c bus %s: %w", name, err)
	}
	hw.buses[name] = b
	return b, nil
}

// close halts the expanders (every output at the lock-off level, then an
// input) and closes the buses and ports. The lock bank must have halted
// first.
func (hw *hardware) close() error {
	if hw == nil {
		return nil
	}
	var errs []error
	for _, h := range hw.halts {
		errs = append(errs, h())
	}
	errs = append(errs, hw.expanders.Halt())
	for _, c := range hw.closers {
		errs = append(errs, c.Close())
	}
	for _, b := range hw.buses {
		errs = append(errs, b.Close())
	}
	hw.closers, hw.buses = nil, nil
	return errors.Join(errs...)
}

// checkHardware is -check's look at the board: on the gpio backend every
// GPIO the config names must exist, and every bus and SPI device. An
// expander pin (NAME:PIN) can only be checked by name here: -check opens
// no chip, so an expander that does not answer shows at start. It returns
// *config.Problems.
func checkHardware(cfg *config.Config) error { return checkHardwareOn(cfg, boardEnv, os.Stat) }

func checkHardwareOn(cfg *config.Config, env hostEnv, stat func(string) (os.FileInfo, error)) error {
	if cfg.Hardware.Backend != "gpio" {
		return nil
	}
	var probs config.Problems
	if err := env.init(); err != nil {
		probs = append(probs, config.Problem{Field: "hardware.backend", Message: "gpio: " + err.Error()})
		return &probs
	}
	types := map[string]string{}
	for _, e := range cfg.Hardware.Expanders {
		types[e.Name] = e.Type
	}
	pin := func(field, name string) {
		if name == "" {
			return
		}
		if exp, p, ok := expander.Split(name); ok {
			typ, known := types[exp]
			switch {
			case !known:
				probs = append(probs, config.Problem{Field: field, Message: fmt.Sprintf("pin %s: no expander %q", name, exp)})
			case expander.CheckPin(typ, p) != nil:
				probs = append(probs, config.Problem{Field: field, Message: fmt.Sprintf("pin %s: %v", name, expander.CheckPin(typ, p))})
			}
			return
		}
		if env.pin(name) == nil {
			probs = append(probs, config.Problem{Field: field, Message: fmt.Sprintf("no pin %q on this board", name)})
		}
	}
	device := func(field, path, what string) {
		if path == "" {
			return
		}
		if _, err := stat(path); err != nil {
			probs = append(probs, config.Problem{Field: field, Message: fmt.Sprintf("no %s %s on this board (is it enabled in config.txt?)", what, path)})
		}
	}
	for i, e := range cfg.Hardware.Expanders {
		device(fmt.Sprintf("hardware.expanders[%d].bus", i), e.Bus, "I2C bus")
	}
	for i, b := range cfg.Hardware.Bins {
		pin(fmt.Sprintf("hardware.bins[%d].lock", i), b.Lock)
		pin(fmt.Sprintf("hardware.bins[%d].door", i), b.Door)
		pin(fmt.Sprintf("hardware.bins[%d].led", i), b.LED)
	}
	pin("hardware.buzzer", cfg.Hardware.Buzzer)
	d := cfg.Hardware.Display
	switch d.Type {
	case "tm1637":
		pin("hardware.display.clk", d.CLK)
		pin("hardware.display.dio", d.DIO)
	case "ssd1306":
		device("hardware.display.bus", d.Bus, "I2C bus")
	case "hd44780":
		pin("hardware.display.rs", d.RS)
		pin("hardware.display.e", d.E)
		for i, p := range d.Data {
			pin(fmt.Sprintf("hardware.display.data[%d]", i), p)
		}
	}
	if p := cfg.Hardware.Power; p.Type == "ina219" {
		device("hardware.power.bus", p.Bus, "I2C bus")
	}
	for i, r := range cfg.Readers {
		pin(fmt.Sprintf("readers[%d].d0", i), r.D0)
		pin(fmt.Sprintf("readers[%d].d1", i), r.D1)
		if r.Type == "mfrc522" {
			pin(fmt.Sprintf("readers[%d].reset", i), r.Reset)
			pin(fmt.Sprintf("readers[%d].irq", i), r.IRQ)
			if strings.HasPrefix(r.SPI, "/dev/") {
				device(fmt.Sprintf("readers[%d].spi", i), r.SPI, "SPI device")
			}
		}
	}
	pin("keypad.d0", cfg.Keypad.D0)
	pin("keypad.d1", cfg.Keypad.D1)
	for i, r := range cfg.Keypad.Rows {
		pin(fmt.Sprintf("keypad.rows[%d]", i), r)
	}
	for i, c := range cfg.Keypad.Cols {
		pin(fmt.Sprintf("keypad.cols[%d]", i), c)
	}
	if len(probs) > 0 {
		return &probs
	}
	return nil
}

// lineEdges adapts a gpioioctl LineSet of D0 and D1 to wiegand.EdgeSource:
// the kernel reports both lines' edges on one file descriptor, in order.
type lineEdges struct {
	set    *gpioioctl.LineSet
	d0, d1 int // chip line offsets
}

func (l *lineEdges) WaitForEdge(timeout time.Duration) (int, error) {
	if timeout <= 0 {
		timeout = time.Millisecond // 0 would wait forever
	}
	n, _, err := l.set.WaitForEdge(timeout)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return wiegand.NoEdge, nil
	case err != nil:
		return 0, err
	case n == l.d0:
		return 0, nil
	case n == l.d1:
		return 1, nil
	}
	return wiegand.NoEdge, nil
}

// openLines requests D0 and D1 as one line set with falling-edge events.
func openLines(d0, d1 string) (*lineEdges, error) {
	for _, chip := range gpioioctl.Chips {
		l0, l1 := chip.ByName(d0), chip.ByName(d1)
		if l0 == nil || l1 == nil {
			continue
		}
		set, err := chip.LineSet(gpioioctl.LineInput, gpio.FallingEdge, gpio.PullUp, d0, d1)
		if err != nil {
			return nil, fmt.Errorf("wiegand %s/%s: %w", d0, d1, err)
		}
		return &lineEdges{set: set, d0: l0.Number(), d1: l1.Number()}, nil
	}
	return nil, fmt.Errorf("wiegand: no GPIO chip has both %q and %q", d0, d1)
}

func (hw *hardware) wiegandReader(rc config.Reader, name string, sink fob.Sink, absent time.Duration, clock clockwork.Clock, log *slog.Logger) (*fob.WiegandReader, error) {
	lines, err := openLines(rc.D0, rc.D1)
	if err != nil {
		return nil, err
	}
	format, err := wiegand.ParseSerialFormat(rc.Serial)
	if err != nil {
		return nil, err
	}
	return fob.NewWiegandReader(fob.WiegandConfig{
		Name: name, Bin: rc.Bin, Source: wiegand.NewFramer(lines), Bits: rc.Bits, Format: format,
		Sink: sink, AbsentAfter: absent, Clock: clock, Logger: log.With("part", "reader", "reader", name),
	})
}

func (hw *hardware) gpioKeypad(kc config.Keypad, keys *keypad.Collector, log *slog.Logger) (*component, error) {
	switch kc.Type {
	case "wiegand":
		lines, err := openLines(kc.D0, kc.D1)
		if err != nil {
			return nil, err
		}
		w, err := keypad.NewWiegand(wiegand.NewFramer(lines), keys, keypad.WiegandConfig{Star: kc.Star, Hash: kc.Hash, Logger: log.With("part", "keypad")})
		if err != nil {
			return nil, err
		}
		return &component{"keypad", w.Run}, nil
	case "matrix":
		mc := keypad.MatrixConfig{Layout: kc.Layout, Debounce: time.Duration(kc.DebounceMS) * time.Millisecond,
			ActiveHigh: kc.Active == "high", Logger: log.With("part", "keypad")}
		for _, r := range kc.Rows {
			p, err := hw.pin(r)
			if err != nil {
				return nil, fmt.Errorf("keypad: %w", err)
			}
			mc.Rows = append(mc.Rows, p)
		}
		for _, c := range kc.Cols {
			p, err := hw.pin(c)
			if err != nil {
				return nil, fmt.Errorf("keypad: %w", err)
			}
			mc.Cols = append(mc.Cols, p)
		}
		m, err := keypad.NewMatrix(keys, mc)
		if err != nil {
			return nil, err
		}
		return &component{"keypad", m.Run}, nil
	}
	return nil, fmt.Errorf("keypad: unknown type %q", kc.Type)
}
