package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/crypto/bcrypt"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/fob"
	"smartboxd/store"
)

// Box is what the console needs of the device. *device.Box implements it.
type Box interface {
	State() (contract.State, error)
	OpenBin(ctx context.Context, bin int, reason string) error
	ConsoleLogin(ctx context.Context, pinOK bool) (device.LoginResult, error)
	Audit(ctx context.Context, command string) error
	Keys() ([]contract.KeyView, error)
	AccessCodes(max int) ([]contract.AccessCodeView, int, error)
	FobPresent(bin int, serial string)
	FobAbsent(bin int)
	ClearLockout(ctx context.Context) (contract.LockoutCleared, error)
}

// flusher is a Box that can wait until it has handled every input posted
// before (*device.Box can). The sim commands use it, so that their effect
// shows in the very next command.
type flusher interface {
	Flush(ctx context.Context) error
}

var (
	_ Box     = (*device.Box)(nil)
	_ flusher = (*device.Box)(nil)
)

// SyncStatus is the cloud link as the sync command shows it.
type SyncStatus struct {
	Connected  bool
	Broker     string
	LastAck    uint64 // the highest event seq the cloud acknowledged
	InFlight   int    // events published and not yet acknowledged
	Published  uint64 // events published since start
	Reconnects int
	LastError  string
}

// DisplayStatus is what the guest display and the bins' LEDs show, as
// the display command prints it.
type DisplayStatus struct {
	Type  string // the display's type (tm1637, ssd1306, hd44780, sim); "" for none
	Text  string // what it shows; "" blank
	Fault string // why the display is not working, "" when it is
	LEDs  []LEDStatus
}

// LEDStatus is one bin's LED: off, on or blink.
type LEDStatus struct {
	Bin   int
	State string
}

// Sim is the simulated hardware the sim commands drive.
type Sim struct {
	Press func(r rune)                   // one keypad key: '0'-'9', '*', '#'
	Door  func(bin int, open bool) error // a door sensor
}

// Config is what New needs.
type Config struct {
	Box     Box
	PINHash string // the technician PIN's bcrypt hash

	Events  func(n int) ([]contract.Event, error) // the last n events, oldest first; nil: none
	Outbox  func() (store.OutboxStats, error)     // nil: the state document's figures
	Readers func() []fob.Stats                    // nil: no readers
	Sync    func() SyncStatus                     // nil: the box runs offline
	Sim     *Sim                                  // nil unless the sim backend
	Display func() DisplayStatus                  // nil: no guest display and no bin LEDs

	Version, BootID, BoxID string
	Started                time.Time // when the daemon started, for the uptime; zero: when New ran

	IdleLogout time.Duration // default 5 minutes

	Clock  clockwork.Clock
	Logger *slog.Logger
}

// DefaultIdleLogout is how long a logged-in session may stay silent.
const DefaultIdleLogout = 5 * time.Minute

// MaxLine is the longest line the console takes, in bytes.
const MaxLine = 256

// ErrConfig is returned by New when its Config lacks the box or holds no
// usable PIN hash.
var ErrConfig = errors.New("console: invalid configuration")

// Console serves technician sessions. It holds no session state itself:
// each Serve call is a session of its own.
type Console struct {
	cfg     Config
	box     Box
	pinHash []byte
	clock   clockwork.Clock
	log     *slog.Logger
	idle    time.Duration
	started time.Time
}

// New checks cfg and makes a console.
func New(cfg Config) (*Console, error) {
	if cfg.Box == nil {
		return nil, fmt.Errorf("%w: no box", ErrConfig)
	}
	if cfg.PINHash == "" {
		return nil, fmt.Errorf("%w: no technician PIN hash", ErrConfig)
	}
	if _, err := bcrypt.Cost([]byte(cfg.PINHash)); err != nil {
		return nil, fmt.Errorf("%w: technician PIN hash: %w", ErrConfig, err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleLogout <= 0 {
		cfg.IdleLogout = DefaultIdleLogout
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Clock.Now()
	}
	return &Console{
		cfg: cfg, box: cfg.Box, pinHash: []byte(cfg.PINHash),
		clock: cfg.Clock, log: cfg.Logger, idle: cfg.IdleLogout, started: cfg.Started,
	}, nil
}

// pinOK checks a PIN against the hash. bcrypt takes at most 72 bytes; a
// longer PIN is wrong, not cut short.
func (c *Console) pinOK(pin string) bool {
	if len(pin) > 72 {
		return false
	}
	return bcrypt.CompareHashAndPassword(c.pinHash, []byte(pin)) == nil
}

// flush waits, where the box can, until it handled what the sim commands
// posted.
func (c *Console) flush(ctx context.Context) error {
	if f, ok := c.box.(flusher); ok {
		return f.Flush(ctx)
	}
	return nil
}
