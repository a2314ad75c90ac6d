package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"smartboxd/fob"
	"smartboxd/internal/config"
	"smartboxd/internal/wiegand"
	"smartboxd/keypad"
	"smartboxd/locks"
)

// hardware is the box's pins: simulated in memory, or the board's GPIO.
type hardware struct {
	bins   []locks.Bin
	sim    *locks.Sim  // the sim backend's pins, for the console's sim door
	buzzer gpio.PinOut // optional keypad feedback
}

// openHardware resolves every pin the config names. On the sim backend they
// are periph gpiotest pins; on gpio, the board's pins by name.
func openHardware(cfg *config.Config) (*hardware, error) {
	if cfg.Hardware.Backend != "gpio" {
		withDoor := map[int]bool{}
		for _, b := range cfg.Hardware.Bins {
			withDoor[b.ID] = b.Door != ""
		}
		sim := locks.NewSimPins(cfg.BinIDs(), func(id int) bool { return withDoor[id] })
		return &hardware{bins: sim.Bins(), sim: sim}, nil
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("hardware: periph host init: %w", err)
	}
	hw := &hardware{}
	for _, b := range cfg.Hardware.Bins {
		lb := locks.Bin{ID: b.ID, Lock: gpioreg.ByName(b.Lock)}
		if lb.Lock == nil {
			return nil, fmt.Errorf("hardware: bin %d: no pin %q", b.ID, b.Lock)
		}
		if b.Door != "" {
			door := gpioreg.ByName(b.Door)
			if door == nil {
				return nil, fmt.Errorf("hardware: bin %d: no pin %q", b.ID, b.Door)
			}
			lb.Door = door
		}
		hw.bins = append(hw.bins, lb)
	}
	if name := cfg.Hardware.Buzzer; name != "" {
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("hardware: buzzer: no pin %q", name)
		}
		hw.buzzer = p
	}
	return hw, nil
}

// checkHardware is -check's look at the board: on the gpio backend every pin
// the config names must exist. It returns *config.Problems.
func checkHardware(cfg *config.Config) error {
	if cfg.Hardware.Backend != "gpio" {
		return nil
	}
	var probs config.Problems
	if _, err := host.Init(); err != nil {
		probs = append(probs, config.Problem{Field: "hardware.backend", Message: "gpio: " + err.Error()})
		return &probs
	}
	pin := func(field, name string) {
		if name != "" && gpioreg.ByName(name) == nil {
			probs = append(probs, config.Problem{Field: field, Message: fmt.Sprintf("no pin %q on this board", name)})
		}
	}
	for i, b := range cfg.Hardware.Bins {
		pin(fmt.Sprintf("hardware.bins[%d].lock", i), b.Lock)
		pin(fmt.Sprintf("hardware.bins[%d].door", i), b.Door)
	}
	pin("hardware.buzzer", cfg.Hardware.Buzzer)
	for i, r := range cfg.Readers {
		pin(fmt.Sprintf("readers[%d].d0", i), r.D0)
		pin(fmt.Sprintf("readers[%d].d1", i), r.D1)
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
			p := gpioreg.ByName(r)
			if p == nil {
				return nil, fmt.Errorf("keypad: no pin %q", r)
			}
			mc.Rows = append(mc.Rows, p)
		}
		for _, c := range kc.Cols {
			p := gpioreg.ByName(c)
			if p == nil {
				return nil, fmt.Errorf("keypad: no pin %q", c)
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
