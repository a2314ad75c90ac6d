package locks

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
)

// ErrUnknownBin is returned when a bin id names no bin of the bank.
var ErrUnknownBin = errors.New("locks: unknown bin")

// ErrStopped is returned when the bank was halted or its Run has returned:
// it takes no more pulses.
var ErrStopped = errors.New("locks: stopped")

// ErrNoDoor is returned when a door sensor is set on a bin that has none.
var ErrNoDoor = errors.New("locks: bin has no door sensor")

// ErrInvalidConfig is returned by New for a configuration it cannot work
// with; the wrapping error says which field.
var ErrInvalidConfig = errors.New("locks: invalid configuration")

// Defaults of Config.
const (
	DefaultPulse        = 500 * time.Millisecond
	DefaultRest         = time.Second
	DefaultMaxEnergised = 2
	DefaultDoorDebounce = 50 * time.Millisecond
	DefaultHeldOpen     = 120 * time.Second
	DefaultOpenGrace    = 500 * time.Millisecond
	DefaultPoll         = 20 * time.Millisecond

	// MaxPulse is the longest pulse New accepts: a lock coil is made for
	// short pulses and burns when held.
	MaxPulse = 10 * time.Second
)

// Sink receives what the bank sees. Its methods are called one at a time,
// in order, from a goroutine of the bank; they should return quickly and
// may call the bank's methods.
type Sink interface {
	// LockChanged reports a lock output driven active (energised) or
	// inactive.
	LockChanged(bin int, energised bool)
	// DoorChanged reports a debounced door change, including the first
	// steady reading after start.
	DoorChanged(bin int, open bool)
	// OpenFailed reports a door that did not open after a pulse and one
	// retry.
	OpenFailed(bin int)
	// DoorHeldOpen reports a door open longer than HeldOpen, once per
	// opening.
	DoorHeldOpen(bin int)
	// DoorForced reports a door that opened while no pulse was given.
	DoorForced(bin int)
}

// Polarity says which level of a pin means "on": for a lock output the
// level that energises the coil, for a door sensor the level it reads
// while the door is open. The zero value is ActiveHigh.
type Polarity uint8

// Polarities.
const (
	ActiveHigh Polarity = iota // High means on (the default)
	ActiveLow                  // Low means on
)

// ParsePolarity reads a polarity as the config writes it: "high" or "low";
// "" is ActiveHigh.
func ParsePolarity(s string) (Polarity, error) {
	switch strings.ToLower(s) {
	case "", "high":
		return ActiveHigh, nil
	case "low":
		return ActiveLow, nil
	}
	return 0, fmt.Errorf("locks: polarity %q: want high or low: %w", s, ErrInvalidConfig)
}

// On is the level that means "on".
func (p Polarity) On() gpio.Level { return gpio.Level(p != ActiveLow) }

// Off is the level that means "off".
func (p Polarity) Off() gpio.Level { return !p.On() }

// String returns "high" or "low".
func (p Polarity) String() string {
	switch p {
	case ActiveHigh:
		return "high"
	case ActiveLow:
		return "low"
	}
	return fmt.Sprintf("Polarity(%d)", uint8(p))
}

// DoorState is what the bank knows of a door.
type DoorState uint8

// Door states.
const (
	DoorUnknown DoorState = iota // no sensor, or no steady reading yet
	DoorOpen
	DoorClosed
)

// String returns "unknown", "open" or "closed".
func (d DoorState) String() string {
	switch d {
	case DoorOpen:
		return "open"
	case DoorClosed:
		return "closed"
	}
	return "unknown"
}

// Bin is one bin's wiring: its lock output, and its door sensor or nil.
type Bin struct {
	ID   int
	Lock gpio.PinOut
	Door gpio.PinIn // nil: the bin has no door sensor
}

// Config configures a Bank. Zero durations and counts take the defaults.
type Config struct {
	Bins []Bin
	// LockActive is the level that energises a lock; default ActiveHigh.
	LockActive Polarity
	// DoorOpen is the level a door sensor reads while its door is open;
	// default ActiveHigh.
	DoorOpen Polarity

	Pulse        time.Duration // how long a coil is energised; at most MaxPulse
	Rest         time.Duration // least time between two pulses of one coil
	MaxEnergised int           // coils energised at once
	DoorDebounce time.Duration // a door level counts once steady this long
	HeldOpen     time.Duration // a door open this long is reported once
	OpenGrace    time.Duration // added to Pulse for a door to be seen open
	Poll         time.Duration // door sensor sampling interval

	Clock  clockwork.Clock // nil: the real clock
	Logger *slog.Logger    // nil: discard
	Sink   Sink            // nil: reports are dropped
}

// Bank drives the locks and watches the doors of a set of bins. Its
// methods are safe for concurrent use.
type Bank struct {
	clock     clockwork.Clock
	log       *slog.Logger
	sink      Sink
	lockOn    gpio.Level
	doorOpen  gpio.Level
	pulse     time.Duration
	rest      time.Duration
	maxOn     int
	debounce  time.Duration
	heldOpen  time.Duration
	grace     time.Duration
	poll      time.Duration
	bins      []*slot       // in config order
	byID      map[int]*slot //
	haveDoors bool

	wake     chan struct{}      // Unlock to the loop; capacity 1
	syncC    chan chan struct{} // tests: wait until the loop handled all sent before
	haltC    chan struct{}      // closed by Halt
	haltOnce sync.Once

	mu       sync.Mutex
	queue    []*slot // bins waiting for a pulse, first come first served
	halted   bool    // Halt was called: nothing is ever energised again
	stopped  bool    // no more pulses: halted, or Run has returned
	running  bool    // Run was called
	wakeAt   time.Time
	events   []event    // reports not yet handed to the Sink
	queued   uint64     // events appended, ever
	done     uint64     // events delivered, ever
	eventsCV *sync.Cond // on mu; signalled when done grows
	notify   chan struct{}
}

// slot is one bin and its state. The fields below the wiring are guarded by
// Bank.mu.
type slot struct {
	id   int
	lock gpio.PinOut
	door gpio.PinIn

	energised bool
	pulseEnd  time.Time // while energised: when the pulse ends
	restUntil time.Time // no pulse starts before this
	inQueue   bool      // waiting in Bank.queue
	retry     bool      // the queued pulse is the door logic's retry

	// Door watcher.
	sampled    bool
	raw        gpio.Level // last sampled level
	rawSince   time.Time  // since when raw has been steady
	state      DoorState  // debounced
	openedAt   time.Time
	heldSent   bool
	pulsed     bool      // a pulse was ever started
	lastPulse  time.Time // start of the last pulse
	attempt    attempt
	awaitUntil time.Time // attemptWaiting: the door must be open by then
	isRetry    bool      // the attempt's current pulse is the retry
}

// attempt is where a bin is in getting its door open after a pulse.
type attempt uint8

const (
	attemptNone    attempt = iota
	attemptWaiting         // pulse given; waiting for the door to open
	attemptRetry           // the retry pulse is queued
)

var _ conn.Resource = (*Bank)(nil)

// New returns a Bank for cfg. The first thing it does is drive every lock
// output inactive; only then does it check the configuration. Bin ids must
// be unique and > 0, and every bin needs a lock output.
func New(cfg Config) (*Bank, error) {
	lockOff := cfg.LockActive.Off()
	var errs []error
	for _, bn := range cfg.Bins {
		if bn.Lock == nil {
			continue
		}
		if err := bn.Lock.Out(lockOff); err != nil {
			errs = append(errs, fmt.Errorf("locks: bin %d: lock %s inactive: %w", bn.ID, bn.Lock, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if err := validate(&cfg); err != nil {
		return nil, err
	}
	b := &Bank{
		clock:    cfg.Clock,
		log:      cfg.Logger,
		sink:     cfg.Sink,
		lockOn:   cfg.LockActive.On(),
		doorOpen: cfg.DoorOpen.On(),
		pulse:    cfg.Pulse,
		rest:     cfg.Rest,
		maxOn:    cfg.MaxEnergised,
		debounce: cfg.DoorDebounce,
		heldOpen: cfg.HeldOpen,
		grace:    cfg.OpenGrace,
		poll:     cfg.Poll,
		byID:     make(map[int]*slot, len(cfg.Bins)),
		wake:     make(chan struct{}, 1),
		syncC:    make(chan chan struct{}),
		haltC:    make(chan struct{}),
		notify:   make(chan struct{}, 1),
	}
	b.eventsCV = sync.NewCond(&b.mu)
	if b.clock == nil {
		b.clock = clockwork.NewRealClock()
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.sink == nil {
		b.sink = nopSink{}
	}
	for _, bn := range cfg.Bins {
		s := &slot{id: bn.ID, lock: bn.Lock, door: bn.Door}
		if s.door != nil {
			if err := s.door.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
				return nil, fmt.Errorf("locks: bin %d: door %s as input: %w", bn.ID, bn.Door, err)
			}
			b.haveDoors = true
		}
		b.bins = append(b.bins, s)
		b.byID[s.id] = s
	}
	return b, nil
}

// validate checks cfg and fills in the defaults.
func validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("locks: "+format+": %w", append(args, ErrInvalidConfig)...))
	}
	seen := make(map[int]bool, len(cfg.Bins))
	for i, bn := range cfg.Bins {
		switch {
		case bn.ID <= 0:
			bad("bins[%d]: id %d: must be > 0", i, bn.ID)
		case seen[bn.ID]:
			bad("bins[%d]: id %d: used twice", i, bn.ID)
		}
		seen[bn.ID] = true
		if bn.Lock == nil {
			bad("bins[%d]: id %d: no lock output", i, bn.ID)
		}
	}
	if cfg.LockActive > ActiveLow {
		bad("lock active level %s: want high or low", cfg.LockActive)
	}
	if cfg.DoorOpen > ActiveLow {
		bad("door open level %s: want high or low", cfg.DoorOpen)
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"pulse", &cfg.Pulse, DefaultPulse},
		{"rest", &cfg.Rest, DefaultRest},
		{"door debounce", &cfg.DoorDebounce, DefaultDoorDebounce},
		{"held open", &cfg.HeldOpen, DefaultHeldOpen},
		{"open grace", &cfg.OpenGrace, DefaultOpenGrace},
		{"poll", &cfg.Poll, DefaultPoll},
	}
	for _, d := range durations {
		switch {
		case *d.d < 0:
			bad("%s %s: must not be negative", d.name, *d.d)
		case *d.d == 0:
			*d.d = d.def
		}
	}
	if cfg.Pulse > MaxPulse {
		bad("pulse %s: longer than %s", cfg.Pulse, MaxPulse)
	}
	switch {
	case cfg.MaxEnergised < 0:
		bad("max energised %d: must not be negative", cfg.MaxEnergised)
	case cfg.MaxEnergised == 0:
		cfg.MaxEnergised = DefaultMaxEnergised
	}
	return errors.Join(errs...)
}

// String implements conn.Resource.
func (b *Bank) String() string {
	return fmt.Sprintf("locks.Bank(%d bins)", len(b.bins))
}

// Unlock queues a pulse for bin and returns at once. A pulse of the same
// bin that is still waiting in the queue serves this request too.
func (b *Bank) Unlock(bin int) error {
	s, ok := b.byID[bin]
	if !ok {
		return fmt.Errorf("locks: unlock bin %d: %w", bin, ErrUnknownBin)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return fmt.Errorf("locks: unlock bin %d: %w", bin, ErrStopped)
	}
	if s.inQueue {
		// A user's request turns a queued retry into a fresh attempt.
		s.retry = false
		return nil
	}
	b.enqueueLocked(s, false)
	return nil
}

func (b *Bank) enqueueLocked(s *slot, retry bool) {
	if b.stopped {
		return
	}
	s.inQueue = true
	s.retry = retry
	b.queue = append(b.queue, s)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Energised reports whether bin's lock output is driven active.
func (b *Bank) Energised(bin int) bool {
	s, ok := b.byID[bin]
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return s.energised
}

// Door returns what the bank knows of bin's door: DoorUnknown for a bin
// without a sensor, an unknown bin, or before the first steady reading.
func (b *Bank) Door(bin int) DoorState {
	s, ok := b.byID[bin]
	if !ok {
		return DoorUnknown
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return s.state
}

// HasDoor reports whether bin has a door sensor.
func (b *Bank) HasDoor(bin int) bool {
	s, ok := b.byID[bin]
	return ok && s.door != nil
}

// Bins returns the bank's bin ids in configuration order.
func (b *Bank) Bins() []int {
	ids := make([]int, len(b.bins))
	for i, s := range b.bins {
		ids[i] = s.id
	}
	return ids
}

// Halt implements conn.Resource: it drives every lock output inactive at
// once and stops the bank for good. Queued pulses are dropped, Run returns
// and Unlock returns ErrStopped. It is idempotent, safe to call
// concurrently with everything else, and safe on a nil *Bank, so it can be
// deferred before New has succeeded.
func (b *Bank) Halt() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halted = true
	b.stopped = true
	err := b.allOffLocked()
	b.haltOnce.Do(func() { close(b.haltC) })
	return err
}

// allOffLocked drives every lock output inactive, drops the queue and
// reports the coils that were energised. b.mu is held.
func (b *Bank) allOffLocked() error {
	var errs []error
	off := !b.lockOn
	for _, s := range b.bins {
		if err := s.lock.Out(off); err != nil {
			errs = append(errs, fmt.Errorf("locks: bin %d: lock inactive: %w", s.id, err))
			continue
		}
		if s.energised {
			s.energised = false
			b.emitLocked(event{kind: evLock, bin: s.id, on: false})
		}
	}
	for _, s := range b.queue {
		s.inQueue = false
	}
	b.queue = nil
	err := errors.Join(errs...)
	if err != nil {
		b.log.Error("locks: lock outputs inactive", "err", err)
	}
	return err
}

type nopSink struct{}

func (nopSink) LockChanged(int, bool) {}
func (nopSink) DoorChanged(int, bool) {}
func (nopSink) OpenFailed(int)        {}
func (nopSink) DoorHeldOpen(int)      {}
func (nopSink) DoorForced(int)        {}
