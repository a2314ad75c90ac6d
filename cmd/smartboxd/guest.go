package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/mfrc522/commands"

	"smartboxd/console"
	"smartboxd/device"
	"smartboxd/display"
	"smartboxd/fob"
	"smartboxd/internal/config"
	"smartboxd/locks"
	"smartboxd/power"
)

// guest is the guest display and the bins' LEDs.
type guest struct {
	panel *display.Panel
	typ   string // the display's type; "" for none
	fault string // why the display does not work, "" when it does
}

var _ device.Guest = (*display.Panel)(nil)

// openGuest sets up the display and the LEDs. A display that does not
// answer is a reported fault, not a start-up error: the box works without
// it, the LEDs still show the bins, and the console's display command
// names the fault. A pin that does not exist is a start-up error.
func openGuest(cfg *config.Config, hw *hardware, clock clockwork.Clock, log *slog.Logger) (*guest, error) {
	g := &guest{}
	d := cfg.Hardware.Display
	var drv display.Driver
	var err error
	switch d.Type {
	case "sim":
		drv = &display.Sim{}
	case "tm1637":
		var clk, dio gpio.PinIO
		if clk, err = hw.pin(d.CLK); err == nil {
			dio, err = hw.pin(d.DIO)
		}
		if err != nil {
			return nil, fmt.Errorf("display: %w", err)
		}
		drv, err = display.NewTM1637(clk, dio)
	case "ssd1306":
		bus, berr := hw.bus(d.Bus)
		if berr != nil {
			return nil, fmt.Errorf("display: %w", berr)
		}
		drv, err = display.NewSSD1306(bus, uint16(d.Address))
	case "hd44780":
		var pins [6]gpio.PinOut
		for i, name := range append([]string{d.RS, d.E}, d.Data...) {
			p, perr := hw.pin(name)
			if perr != nil {
				return nil, fmt.Errorf("display: %w", perr)
			}
			pins[i] = p
		}
		drv, err = display.NewHD44780(pins[0], pins[1], [4]gpio.PinOut(pins[2:]), 0, nil)
	}
	if d.Type != "none" && d.Type != "" {
		g.typ = d.Type
	}
	if err != nil {
		g.fault = err.Error()
		log.Error("guest display does not answer; the box works on without it", "type", d.Type, "err", err)
		drv = nil
	}
	ledOn, _ := locks.ParsePolarity(cfg.Hardware.LEDActive)
	var pc display.PanelConfig
	pc.LEDs, pc.LEDOn, pc.Clock, pc.Logger = hw.leds, ledOn.On(), clock, log.With("part", "display")
	if drv != nil {
		pc.Driver = drv // a nil Driver in the interface, never a typed nil
	}
	if g.panel, err = display.NewPanel(pc); err != nil {
		return nil, err
	}
	hw.halts = append(hw.halts, g.panel.Halt)
	return g, nil
}

// status is the console's display command.
func (g *guest) status() console.DisplayStatus {
	st := console.DisplayStatus{Type: g.typ, Fault: g.fault, Text: g.panel.Text()}
	for bin, l := range g.panel.LEDs() {
		st.LEDs = append(st.LEDs, console.LEDStatus{Bin: bin, State: l.String()})
	}
	slices.SortFunc(st.LEDs, func(a, b console.LEDStatus) int { return a.Bin - b.Bin })
	return st
}

// openPower sets up the power monitor. One that does not answer is a
// reported fault (a power.fault event): the box works on, on whatever
// supply it has, and the monitor keeps trying.
func openPower(cfg *config.Config, hw *hardware, sink power.Sink, clock clockwork.Clock, log *slog.Logger) (*power.Monitor, error) {
	p := cfg.Hardware.Power
	if p.Type != "ina219" {
		return nil, nil
	}
	bus, err := hw.bus(p.Bus)
	if err != nil {
		return nil, fmt.Errorf("power: %w", err)
	}
	m, err := power.New(power.Config{
		Bus: bus, Address: uint16(p.Address), BatteryBelow: p.BatteryBelowV, LowBelow: p.LowBelowV,
		Interval: time.Duration(p.IntervalMS) * time.Millisecond,
		Sink:     sink, Clock: clock, Logger: log.With("part", "power"),
	})
	switch {
	case errors.Is(err, power.ErrNoAnswer):
		log.Error("power monitor does not answer; the box works on without it", "err", err)
		sink.PowerFault(err)
	case err != nil:
		return nil, err
	}
	return m, nil
}

// mfrc522Reader opens an MFRC522 on its SPI device. A device that cannot
// be opened, or a reader that does not answer, stops start-up, named.
func (hw *hardware) mfrc522Reader(rc config.Reader, sink fob.Sink, absent time.Duration, clock clockwork.Clock, log *slog.Logger) (*fob.MFRC522Reader, error) {
	port, err := hw.env.openSPI(rc.SPI)
	if err != nil {
		return nil, fmt.Errorf("reader on %s: %w", rc.SPI, err)
	}
	hw.closers = append(hw.closers, port)
	reset, err := hw.pin(rc.Reset)
	if err != nil {
		return nil, fmt.Errorf("reader on %s: reset: %w", rc.SPI, err)
	}
	var irq gpio.PinIn // nil without one: the reader polls
	if rc.IRQ != "" {
		p, err := hw.pin(rc.IRQ)
		if err != nil {
			return nil, fmt.Errorf("reader on %s: irq: %w", rc.SPI, err)
		}
		irq = p
	}
	ll, err := commands.NewLowLevelSPI(port, reset, irq)
	if err != nil {
		return nil, fmt.Errorf("reader on %s: %w", rc.SPI, err)
	}
	return fob.NewMFRC522Reader(fob.MFRC522Config{
		Name: rc.SPI, Bin: rc.Bin, Chip: ll, Sink: sink, AbsentAfter: absent, Clock: clock,
		Logger: log.With("part", "reader", "reader", rc.SPI),
	})
}
