package device

import (
	"context"
	"fmt"
	"log/slog"
	"smartboxd/contract"
	"smartboxd/firmware"
	"smartboxd/offline"
	"smartboxd/store"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// Store is what the box needs of its database: transactions over the typed
// records, and the keyed hash codes are indexed by. *store.DB implements it.
type Store interface {
	Update(fn func(tx *store.Tx) error) error
	View(fn func(tx *store.Tx) error) error
	CodeHash(code string) []byte
}

// Locker pulses a bin's lock. *locks.Bank implements it.
type Locker interface {
	Unlock(bin int) error
}

// Feedback tells the person at the keypad how an entry went. Optional.
type Feedback interface {
	Accepted()
	Rejected()
}

var _ Store = (*store.DB)(nil)

// BinSpec is a bin as wired: whether a door sensor watches it, and the
// name of the fob reader in it ("" for none), which its reader.fault and
// reader.ok events carry.
type BinSpec struct {
	ID      int
	HasDoor bool
	Reader  string
}

func (s BinSpec) hasReader() bool { return s.Reader != "" }

// Config is what New needs.
type Config struct {
	BoxID   string
	Version string
	BootID  string
	Bins    []BinSpec

	FobAbsent       time.Duration // how long a reader takes to report a fob gone
	DropoffTimeout  time.Duration // how long an opened bin waits
	InventorySettle time.Duration // how long a reader's view must hold before the state follows it
	LateAfter       time.Duration // a transition later than this carries a delay warning

	LockoutAfter  int
	LockoutBase   time.Duration
	LockoutMax    time.Duration
	LockoutWindow time.Duration // wrong entries within this long count towards a lockout
	LockoutDecay  time.Duration // the escalation falls a step per this without a wrong entry

	RequireSync bool        // time-bound codes fail closed while the clock is unsynchronised
	Synced      func() bool // nil: always synchronised

	MaxAccessCodes int
	MaxKeys        int // keys the box holds at most; a new one beyond is key.limit
	SnapshotChunk  int // records of a snapshot staged per transaction

	// Limits bound the command payloads Receive reads; zero fields take
	// the contract's defaults.
	Limits contract.Limits
	// Trust says whom the box obeys; the zero value trusts the broker.
	Trust Trust
	// Firmware takes firmware updates (§11); nil answers firmware.update
	// with firmware.download_failed.
	Firmware *firmware.Updater
	// Relaunch is called on the loop once an update is installed: the
	// daemon is to stop and start the installed binary again, which runs
	// the new version's trial.
	Relaunch func()

	// RemovedRetention is how long a time-bound code the schedule removed
	// is kept (as a keyed-hash tombstone) for a clock that jumped forward
	// and comes back.
	RemovedRetention time.Duration

	// Mode is the state document's mode: contract.ModeNormal (default) or
	// contract.ModeSafe. StoreRestored is how a corrupt database was
	// recovered at this start ("" when it was sound).
	Mode          string
	StoreRestored string
	// SnapshotApplied, when set, is called on the loop after a
	// sync.snapshot commits (the daemon takes a backup then).
	SnapshotApplied func()

	Store    Store
	Locks    Locker
	Feedback Feedback
	Clock    clockwork.Clock
	Logger   *slog.Logger

	// Guest shows the guest display and the bins' LEDs; optional.
	Guest Guest
}

// Box is the decision loop that owns the box's state machine. Its inputs
// (keypad entries, fob and door reports, commands) are serialised on one
// goroutine, Run; every state change is committed with its events in one
// store transaction before any lock moves.
type Box struct {
	cfg   Config
	st    Store
	clock clockwork.Clock
	log   *slog.Logger

	in      chan func()
	stopped chan struct{}
	timers  timerHeap
	tseq    uint64

	bins     map[int]*bin
	binOrder []int
	settings contract.Settings
	keypad   lockout
	console  lockout
	started  bool

	version     atomic.Uint64
	acksRefused atomic.Uint64
	changed     chan struct{}
	appended    chan struct{}

	schedTimer   *timer
	lockoutTimer *timer       // ends the keypad's lockout
	lastDue      time.Time    // when the timers were last looked at
	offKey       *offline.Key // the offline key, nil when none is set
	power        power        // the supply, as the power monitor last said

	runCtx context.Context // Run's context, for the downloads it starts
	fwBusy bool            // a firmware download or install is under way
	fwDone sync.WaitGroup  // the download goroutine

	mu         sync.Mutex // guards pub, storeFault and the settings copy State reads
	pub        []contract.BinState
	storeFault string // the last write's error, "" when writes work
	pubPower   *contract.PowerState
}

// New makes a box. It reads nothing until Run.
func New(cfg Config) (*Box, error) {
	if cfg.Store == nil || cfg.Locks == nil {
		return nil, fmt.Errorf("device: a store and a locker are required")
	}
	if len(cfg.Bins) == 0 {
		return nil, fmt.Errorf("device: no bins")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Synced == nil {
		cfg.Synced = func() bool { return true }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.FobAbsent, DefaultFobAbsent)
	def(&cfg.DropoffTimeout, DefaultDropoffTimeout)
	def(&cfg.InventorySettle, DefaultInventorySettle)
	def(&cfg.LateAfter, DefaultLateAfter)
	def(&cfg.LockoutBase, DefaultLockoutBase)
	def(&cfg.LockoutMax, DefaultLockoutMax)
	def(&cfg.LockoutWindow, DefaultLockoutWindow)
	def(&cfg.LockoutDecay, DefaultLockoutDecay)
	def(&cfg.RemovedRetention, DefaultRemovedRetention)
	if cfg.LockoutAfter <= 0 {
		cfg.LockoutAfter = DefaultLockoutAfter
	}
	if cfg.Mode == "" {
		cfg.Mode = contract.ModeNormal
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.SnapshotChunk <= 0 {
		cfg.SnapshotChunk = DefaultSnapshotChunk
	}
	if cfg.MaxAccessCodes <= 0 {
		cfg.MaxAccessCodes = DefaultMaxAccessCodes
	}
	if cfg.Limits.MaxPayload <= 0 {
		cfg.Limits.MaxPayload = contract.DefaultMaxPayload
	}
	if cfg.Limits.MaxSnapshotPayload <= 0 {
		cfg.Limits.MaxSnapshotPayload = contract.DefaultMaxSnapshotPayload
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	b := &Box{
		cfg: cfg, st: cfg.Store, clock: cfg.Clock, log: cfg.Logger,
		in:       make(chan func(), inputQueue),
		stopped:  make(chan struct{}),
		bins:     map[int]*bin{},
		changed:  make(chan struct{}, 1),
		appended: make(chan struct{}, 1),
	}
	for _, s := range cfg.Bins {
		if s.ID <= 0 {
			return nil, fmt.Errorf("device: bin id %d", s.ID)
		}
		if _, dup := b.bins[s.ID]; dup {
			return nil, fmt.Errorf("device: bin %d twice", s.ID)
		}
		b.bins[s.ID] = &bin{spec: s, rec: store.Bin{ID: s.ID}, door: "unknown"}
		b.binOrder = append(b.binOrder, s.ID)
	}
	b.keypad = lockout{after: cfg.LockoutAfter, base: cfg.LockoutBase, max: cfg.LockoutMax, window: cfg.LockoutWindow, decay: cfg.LockoutDecay}
	b.console = b.keypad
	b.console.isConsole = true
	return b, nil
}

// Run loads the durable state, records device.started and serves inputs
// until ctx ends. A canceled context is not an error.
func (b *Box) Run(ctx context.Context) error {
	defer close(b.stopped)
	defer b.fwDone.Wait()
	b.runCtx = ctx
	if err := b.start(); err != nil {
		return err
	}
	b.firmwareStart()
	wake := b.clock.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		b.runDue()
		if next := b.timers.peek(); next != nil {
			wake.Reset(max(b.clock.Until(next.at), 0))
		} else {
			wake.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return nil
		case f := <-b.in:
			b.runDue()
			f()
		case <-wake.Chan():
		}
	}
}

// Stopped is closed once Run has returned.
func (b *Box) Stopped() <-chan struct{} { return b.stopped }

// start loads bins, settings and lockouts, and writes device.started.
func (b *Box) start() error {
	now := b.clock.Now()
	err := b.st.Update(func(tx *store.Tx) error {
		for _, id := range b.binOrder {
			rec, err := tx.Bin(id)
			if err != nil {
				return err
			}
			b.bins[id].rec = rec
		}
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		// State reads the settings from other goroutines, and the cloud
		// link may ask for the state before the loop has started.
		b.mu.Lock()
		b.settings = settings
		b.mu.Unlock()
		for _, l := range []*lockout{&b.keypad, &b.console} {
			rec, err := tx.Lockout(l.isConsole)
			if err != nil {
				return err
			}
			l.restore(rec, now, b.cfg.Synced())
		}
		if err := b.loadOfflineKey(tx); err != nil {
			return err
		}
		_, err = tx.Append(contract.EventDeviceStarted, now, map[string]string{"boot_id": b.cfg.BootID, "version": b.cfg.Version})
		return err
	})
	if err != nil {
		return fmt.Errorf("device: start: %w", err)
	}
	if v := b.version.Load(); v == 0 {
		b.version.Store(b.bootVersion())
	}
	b.started = true
	b.guestStart(now)
	b.publishBins()
	b.notifyAppended()
	b.armSchedule(0)
	b.armLockoutEnd()
	return nil
}

// bootVersion starts the state version above anything an earlier boot of
// the same database published: the boot count in the high bits.
func (b *Box) bootVersion() uint64 {
	if db, ok := b.st.(interface{ Boot() uint64 }); ok {
		return db.Boot() << 32
	}
	return 1
}

// post hands f to the loop. It blocks while the loop's queue is full, and
// drops f once the loop has stopped.
func (b *Box) post(f func()) {
	select {
	case b.in <- f:
	case <-b.stopped:
	}
}

// call runs f on the loop and waits for it.
func (b *Box) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case b.in <- func() { defer close(done); f() }:
	case <-b.stopped:
		return contract.ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-b.stopped:
		select {
		case <-done:
			return nil
		default:
			return contract.ErrStopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until the loop has handled every input posted before it and
// every timer due by now.
func (b *Box) Flush(ctx context.Context) error { return b.call(ctx, func() {}) }

// Changed signals (coalesced) that the state document changed.
func (b *Box) Changed() <-chan struct{} { return b.changed }

// Appended signals (coalesced) that events were committed to the outbox.
func (b *Box) Appended() <-chan struct{} { return b.appended }

func (b *Box) notifyChanged() {
	b.version.Add(1)
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *Box) notifyAppended() {
	select {
	case b.appended <- struct{}{}:
	default:
	}
}

// OutboxChanged tells the box that events left the outbox, so the state
// document's outbox figures changed.
func (b *Box) OutboxChanged() { b.notifyChanged() }
