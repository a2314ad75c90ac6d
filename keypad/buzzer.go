package keypad

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// Beep timings of the Buzzer.
const (
	KeyBeep    = 30 * time.Millisecond  // one short beep per key
	RejectBeep = 600 * time.Millisecond // one long beep on reject
	AcceptBeep = 80 * time.Millisecond  // each of the two beeps on accept
	AcceptGap  = 80 * time.Millisecond  // the silence between them
)

// step is one part of a beep pattern: hold the pin at level for d.
type step struct {
	level gpio.Level
	d     time.Duration
}

var (
	keyPattern    = []step{{gpio.High, KeyBeep}}
	rejectPattern = []step{{gpio.High, RejectBeep}}
	acceptPattern = []step{{gpio.High, AcceptBeep}, {gpio.Low, AcceptGap}, {gpio.High, AcceptBeep}}
)

// Buzzer beeps a buzzer wired to an output pin, High sounding it. Its
// methods return at once: the pattern plays on timers of the injected
// clock, and a new pattern cuts the one playing short. It is safe for
// concurrent use.
type Buzzer struct {
	pin   gpio.PinOut
	clock clockwork.Clock
	log   *slog.Logger

	mu     sync.Mutex
	gen    uint64          // bumped by every new pattern and by Halt
	timer  clockwork.Timer // ends the current step; nil when idle
	halted bool
}

var _ Feedback = (*Buzzer)(nil)

// NewBuzzer returns a Buzzer on pin. A nil clock is the real clock; a nil
// logger discards.
func NewBuzzer(pin gpio.PinOut, clock clockwork.Clock, log *slog.Logger) *Buzzer {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Buzzer{pin: pin, clock: clock, log: log}
}

// Key plays a short beep.
func (b *Buzzer) Key() { b.play(keyPattern) }

// Accepted plays two short beeps.
func (b *Buzzer) Accepted() { b.play(acceptPattern) }

// Rejected plays a long beep.
func (b *Buzzer) Rejected() { b.play(rejectPattern) }

// Halt silences the buzzer and leaves the pin low; later beeps are
// ignored.
func (b *Buzzer) Halt() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halted = true
	b.gen++
	b.stopLocked()
	if err := b.out(gpio.Low); err != nil {
		return fmt.Errorf("keypad: buzzer halt: %w", err)
	}
	return nil
}

func (b *Buzzer) play(p []step) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.halted {
		return
	}
	b.gen++
	b.stopLocked()
	b.stepLocked(b.gen, p)
}

// stepLocked sets the level of p's first step and arms a timer for the
// rest; the pin goes low after the last step. b.mu must be held.
func (b *Buzzer) stepLocked(gen uint64, p []step) {
	if len(p) == 0 {
		b.timer = nil
		_ = b.out(gpio.Low)
		return
	}
	_ = b.out(p[0].level)
	rest := p[1:]
	b.timer = b.clock.AfterFunc(p[0].d, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.gen != gen {
			return // a newer pattern or Halt took over
		}
		b.stepLocked(gen, rest)
	})
}

func (b *Buzzer) stopLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

func (b *Buzzer) out(l gpio.Level) error {
	if err := b.pin.Out(l); err != nil {
		b.log.Warn("keypad: buzzer output failed", "pin", b.pin.Name(), "err", err)
		return err
	}
	return nil
}
