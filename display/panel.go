package display

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// PanelConfig configures a Panel.
type PanelConfig struct {
	Driver Driver              // the display; nil: no display, LEDs only
	LEDs   map[int]gpio.PinOut // bin -> its LED; bins without one are left out
	// LEDOn is the level that lights an LED; the zero value is gpio.Low,
	// so set it (gpio.High for an LED from the pin to ground).
	LEDOn  gpio.Level
	Model  *Model          // nil: NewModel()
	Clock  clockwork.Clock // nil: the real clock
	Logger *slog.Logger    // nil: discard
}

// Panel runs a Model on a clock and keeps a display and the bins' LEDs in
// step with it. Its methods are safe for concurrent use; the input methods
// never wait for the hardware: Run applies them.
type Panel struct {
	drv   Driver
	leds  map[int]gpio.PinOut
	bins  []int
	ledOn gpio.Level
	clock clockwork.Clock
	log   *slog.Logger
	wake  chan struct{}

	mu     sync.Mutex
	m      *Model
	shown  string
	showOK bool         // shown is on the display
	lit    map[int]bool // what each LED was last driven to
	halted bool
}

// NewPanel drives every LED off and blanks the display.
func NewPanel(cfg PanelConfig) (*Panel, error) {
	p := &Panel{
		drv: cfg.Driver, leds: cfg.LEDs, ledOn: cfg.LEDOn, m: cfg.Model,
		clock: cfg.Clock, log: cfg.Logger, wake: make(chan struct{}, 1), lit: map[int]bool{},
	}
	if p.m == nil {
		p.m = NewModel()
	}
	if p.m.failed == nil {
		p.m.failed = map[int]time.Time{}
	}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for bin := range p.leds {
		p.bins = append(p.bins, bin)
	}
	slices.Sort(p.bins)
	var errs []error
	for _, bin := range p.bins {
		if err := p.leds[bin].Out(!p.ledOn); err != nil {
			errs = append(errs, fmt.Errorf("display: bin %d led: %w", bin, err))
		}
		p.lit[bin] = false
	}
	if p.drv != nil {
		if err := p.drv.Show(""); err != nil {
			errs = append(errs, fmt.Errorf("display: blank: %w", err))
		}
		p.showOK = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// input changes the model under the lock and wakes Run.
func (p *Panel) input(f func(m *Model, now time.Time)) {
	p.mu.Lock()
	f(p.m, p.clock.Now())
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Typed says how many digits the keypad's buffer holds.
func (p *Panel) Typed(n int) { p.input(func(m *Model, _ time.Time) { m.Typed(n) }) }

// Rejected reports a rejected entry.
func (p *Panel) Rejected() { p.input(func(m *Model, now time.Time) { m.Rejected(now) }) }

// Opened reports that bin opened for a session.
func (p *Panel) Opened(bin int) { p.input(func(m *Model, _ time.Time) { m.Opened(bin) }) }

// SessionEnded reports that bin's session ended.
func (p *Panel) SessionEnded(bin int) { p.input(func(m *Model, _ time.Time) { m.SessionEnded(bin) }) }

// OpenFailed reports that bin's door never opened.
func (p *Panel) OpenFailed(bin int) {
	p.input(func(m *Model, now time.Time) { m.OpenFailed(bin, now) })
}

// LockedOut reports a keypad lockout until until.
func (p *Panel) LockedOut(until time.Time) {
	p.input(func(m *Model, _ time.Time) { m.LockedOut(until) })
}

// LockoutEnded reports the end of a lockout.
func (p *Panel) LockoutEnded() { p.input(func(m *Model, _ time.Time) { m.LockoutEnded() }) }

// Text returns what the display shows now, by the model: the console's
// display command prints it.
func (p *Panel) Text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.Text(p.clock.Now())
}

// LEDs returns what each bin's LED does now.
func (p *Panel) LEDs() map[int]LED {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	out := make(map[int]LED, len(p.bins))
	for _, bin := range p.bins {
		out[bin] = p.m.LED(bin, now)
	}
	return out
}

// Refresh brings the display and the LEDs in step with the model now,
// writing only what changed, and returns when the next change is due (the
// zero time for none). Run calls it; a display error is returned and the
// text is written again on the next Refresh.
func (p *Panel) Refresh() (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.halted {
		return time.Time{}, nil
	}
	now := p.clock.Now()
	var errs []error
	if text := p.m.Text(now); p.drv != nil && (text != p.shown || !p.showOK) {
		if err := p.drv.Show(text); err != nil {
			p.showOK = false
			errs = append(errs, fmt.Errorf("display: show: %w", err))
		} else {
			p.shown, p.showOK = text, true
		}
	}
	for _, bin := range p.bins {
		lit := p.m.Lit(bin, now)
		if lit == p.lit[bin] {
			continue
		}
		level := p.ledOn
		if !lit {
			level = !p.ledOn
		}
		if err := p.leds[bin].Out(level); err != nil {
			errs = append(errs, fmt.Errorf("display: bin %d led: %w", bin, err))
			continue
		}
		p.lit[bin] = lit
	}
	return p.m.Next(now), errors.Join(errs...)
}

// retryAfter is how soon Run tries again after a display error.
const retryAfter = time.Second

// Run keeps the panel in step until ctx is done, then halts it and returns
// nil. Display errors are logged once per outage and retried.
func (p *Panel) Run(ctx context.Context) error {
	defer p.Halt()
	failing := false
	for {
		next, err := p.Refresh()
		switch {
		case err != nil && !failing:
			p.log.Warn("display error", slog.Any("err", err))
			failing = true
		case err == nil && failing:
			p.log.Info("display ok")
			failing = false
		}
		if err != nil && (next.IsZero() || next.Sub(p.clock.Now()) > retryAfter) {
			next = p.clock.Now().Add(retryAfter)
		}
		var timer clockwork.Timer
		var due <-chan time.Time
		if !next.IsZero() {
			timer = p.clock.NewTimer(next.Sub(p.clock.Now()))
			due = timer.Chan()
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Halt turns every LED off and blanks the display; the panel shows nothing
// more. It is idempotent and safe on a nil *Panel.
func (p *Panel) Halt() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.halted {
		return nil
	}
	p.halted = true
	var errs []error
	for _, bin := range p.bins {
		errs = append(errs, p.leds[bin].Out(!p.ledOn))
	}
	if p.drv != nil {
		errs = append(errs, p.drv.Halt())
	}
	return errors.Join(errs...)
}
