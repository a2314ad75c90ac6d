// Package power watches the box's supply with an INA219 on I2C and says
// whether it runs on mains or on its battery, and when the battery is low.
//
// The box's 12 V rail is fed by a mains adapter that charges a battery in
// parallel; when mains fails the rail drops to the battery's voltage. The
// monitor reads the rail's bus voltage every Interval (1 s) and decides:
//
//   - on battery when the voltage is below BatteryBelow (battery_below_v)
//     for Debounce readings in a row (3); back on mains when it is at or
//     above BatteryBelow + Hysteresis (0.2 V) for Debounce readings;
//   - low when it is below LowBelow (low_below_v) for Debounce readings;
//     no longer low at or above LowBelow + Hysteresis for Debounce readings.
//
// So a reading that wanders around a threshold by less than 0.2 V, or a
// dip shorter than 3 s (a lock coil's inrush), changes nothing. The first
// good reading decides the state at once and is reported.
//
// A reading is refused, and counted, when the driver reports an error (the
// ADC overflowed, the bus failed) or the voltage is absurd: below 0 V or
// above 26 V, the INA219's limit. The driver sets the 16 V range, enough
// for a 12 V system charging at 14.4 V.
//
// A monitor that does not answer at start is not fatal: New returns the
// Monitor together with an error wrapping ErrNoAnswer, which the caller
// reports, and Run keeps trying with backoff (1 s doubling to 1 min).
// Read failures are reported to the Sink once per outage (PowerFault) and
// the recovery once (PowerOK); while faulted the last state stands.
package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"
)

// Sources, as the state document and the events name them.
const (
	SourceMains   = "mains"
	SourceBattery = "battery"
)

// Defaults of Config.
const (
	DefaultInterval   = time.Second
	DefaultDebounce   = 3
	DefaultHysteresis = 0.2
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute

	// MaxVolts is the highest bus voltage an INA219 measures; more is a
	// bad reading.
	MaxVolts = 26.0
)

// ErrConfig is returned by New for a configuration it cannot work with.
var ErrConfig = errors.New("power: invalid configuration")

// ErrNoAnswer is returned, wrapped, when the monitor does not answer.
var ErrNoAnswer = errors.New("power: monitor does not answer")

// ErrReading is returned, wrapped, for a reading that is refused.
var ErrReading = errors.New("power: bad reading")

// Sink receives what the monitor sees. The device implements it. Calls are
// made one at a time from Run's goroutine.
type Sink interface {
	// PowerChanged reports the first reading, and every change of source or
	// of low, with the voltage of the reading that decided it.
	PowerChanged(source string, volts float64, low bool)
	// PowerFault reports that the monitor failed, once per outage.
	PowerFault(err error)
	// PowerOK reports that a faulted monitor reads again.
	PowerOK()
}

// Sensor is the part of an INA219 the monitor uses; *ina219.Dev is one.
type Sensor interface {
	Sense() (ina219.PowerMonitor, error)
}

// Config configures a Monitor.
type Config struct {
	Bus     i2c.Bus
	Address uint16 // 0x40 to 0x4F; 0x40 when zero
	// Open makes the sensor; by default ina219.New on Bus at Address with
	// the driver's default shunt (0.1 ohm). Tests replace it.
	Open func() (Sensor, error)

	BatteryBelow float64 // battery_below_v, volts
	LowBelow     float64 // low_below_v, volts; below BatteryBelow

	Interval   time.Duration // between readings; DefaultInterval when zero
	Debounce   int           // readings in a row that change state; DefaultDebounce when zero
	Hysteresis float64       // volts; DefaultHysteresis when zero

	MinBackoff, MaxBackoff time.Duration // retries of Open

	Sink   Sink
	Clock  clockwork.Clock
	Logger *slog.Logger
}

// State is what the monitor knows.
type State struct {
	Known   bool    // a reading was taken
	Source  string  // SourceMains or SourceBattery
	Volts   float64 // the last good reading
	Low     bool
	Faulted bool
	Refused uint64 // readings refused, ever
}

// Monitor polls an INA219. Its methods are safe for concurrent use.
type Monitor struct {
	cfg   Config
	clock clockwork.Clock
	log   *slog.Logger

	sensor Sensor // Run's goroutine only, after New

	mu    sync.Mutex
	state State
	// Debounce counters: readings in a row that argue for a change.
	toBattery, toMains, toLow, toOK int
}

// New checks cfg and opens the sensor once. A sensor that does not answer
// gives a usable Monitor and an error wrapping ErrNoAnswer: report it and
// call Run, which keeps trying. A bad cfg gives a nil Monitor and ErrConfig.
func New(cfg Config) (*Monitor, error) {
	if cfg.Address == 0 {
		cfg.Address = 0x40
	}
	switch {
	case cfg.Sink == nil:
		return nil, fmt.Errorf("%w: no sink", ErrConfig)
	case cfg.Open == nil && cfg.Bus == nil:
		return nil, fmt.Errorf("%w: no bus", ErrConfig)
	case cfg.Address < 0x40 || cfg.Address > 0x4F:
		return nil, fmt.Errorf("%w: address %#x: want 0x40 to 0x4f", ErrConfig, cfg.Address)
	case !(cfg.LowBelow > 0 && cfg.LowBelow < cfg.BatteryBelow && cfg.BatteryBelow < MaxVolts):
		return nil, fmt.Errorf("%w: want 0 < low_below_v (%g) < battery_below_v (%g) < %g", ErrConfig, cfg.LowBelow, cfg.BatteryBelow, MaxVolts)
	case cfg.Interval < 0 || cfg.Debounce < 0 || cfg.Hysteresis < 0:
		return nil, fmt.Errorf("%w: negative interval, debounce or hysteresis", ErrConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Hysteresis == 0 {
		cfg.Hysteresis = DefaultHysteresis
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Open == nil {
		bus, addr := cfg.Bus, cfg.Address
		cfg.Open = func() (Sensor, error) {
			return ina219.New(bus, &ina219.Opts{Address: int(addr)})
		}
	}
	m := &Monitor{cfg: cfg, clock: cfg.Clock, log: cfg.Logger}
	if m.clock == nil {
		m.clock = clockwork.NewRealClock()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	s, err := m.open()
	if err != nil {
		return m, err
	}
	m.sensor = s
	return m, nil
}

func (m *Monitor) open() (Sensor, error) {
	s, err := m.cfg.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: ina219 at %#x: %w", ErrNoAnswer, m.cfg.Address, err)
	}
	return s, nil
}

// State returns what the monitor knows now.
func (m *Monitor) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Volts turns a reading of the driver into the bus voltage, or refuses it.
func Volts(pm ina219.PowerMonitor, err error) (float64, error) {
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrReading, err)
	}
	v := float64(pm.Voltage) / float64(physic.Volt)
	if v < 0 || v > MaxVolts {
		return 0, fmt.Errorf("%w: %.3f V", ErrReading, v)
	}
	return v, nil
}

// Run polls until ctx is done and returns nil. It opens the sensor first
// if New could not, retrying with backoff.
func (m *Monitor) Run(ctx context.Context) error {
	backoff := m.cfg.MinBackoff
	for m.sensor == nil {
		s, err := m.open()
		if err == nil {
			m.sensor = s
			break
		}
		m.fault(err)
		if !m.sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, m.cfg.MaxBackoff)
	}
	for {
		m.Poll()
		if !m.sleep(ctx, m.cfg.Interval) {
			return nil
		}
	}
}

// Poll takes one reading and reports what it changes. Run calls it every
// Interval; it is exported for tests and for a console command.
func (m *Monitor) Poll() {
	v, err := Volts(m.sensor.Sense())
	if err != nil {
		m.mu.Lock()
		m.state.Refused++
		m.mu.Unlock()
		m.fault(err)
		return
	}
	m.mu.Lock()
	wasFaulted := m.state.Faulted
	m.state.Faulted = false
	changed := m.decideLocked(v)
	st := m.state
	m.mu.Unlock()
	if wasFaulted {
		m.log.Info("power monitor ok")
		m.cfg.Sink.PowerOK()
	}
	if changed {
		m.log.Info("power changed", slog.String("source", st.Source), slog.Float64("volts", v), slog.Bool("low", st.Low))
		m.cfg.Sink.PowerChanged(st.Source, v, st.Low)
	}
}

// decideLocked applies reading v and reports whether source or low
// changed. m.mu is held.
func (m *Monitor) decideLocked(v float64) bool {
	s := &m.state
	s.Volts = v
	c := m.cfg
	if !s.Known {
		s.Known = true
		s.Source = SourceMains
		if v < c.BatteryBelow {
			s.Source = SourceBattery
		}
		s.Low = v < c.LowBelow
		return true
	}
	// count advances a debounce counter while its condition holds, and
	// says when it reached Debounce.
	count := func(n *int, cond bool) bool {
		if !cond {
			*n = 0
			return false
		}
		*n++
		if *n >= c.Debounce {
			*n = 0
			return true
		}
		return false
	}
	changed := false
	if s.Source == SourceMains {
		if count(&m.toBattery, v < c.BatteryBelow) {
			s.Source, changed = SourceBattery, true
		}
	} else if count(&m.toMains, v >= c.BatteryBelow+c.Hysteresis) {
		s.Source, changed = SourceMains, true
	}
	if !s.Low {
		if count(&m.toLow, v < c.LowBelow) {
			s.Low, changed = true, true
		}
	} else if count(&m.toOK, v >= c.LowBelow+c.Hysteresis) {
		s.Low, changed = false, true
	}
	return changed
}

// fault reports err once per outage.
func (m *Monitor) fault(err error) {
	m.mu.Lock()
	already := m.state.Faulted
	m.state.Faulted = true
	m.mu.Unlock()
	if already {
		m.log.Debug("power monitor still failing", slog.Any("err", err))
		return
	}
	m.log.Warn("power monitor fault", slog.Any("err", err))
	m.cfg.Sink.PowerFault(err)
}

func (m *Monitor) sleep(ctx context.Context, d time.Duration) bool {
	t := m.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
