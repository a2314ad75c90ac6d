package keypad

import (
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

const (
	// MaxDigits is the longest entry the box accepts.
	MaxDigits = 16
	// DefaultKeyTimeout is how long an unfinished entry waits for the next
	// key before it clears, unless CollectorConfig says otherwise.
	DefaultKeyTimeout = 10 * time.Second
)

// keptDigits is how many digits the Collector keeps: one more than
// MaxDigits, so the receiver sees an over-long entry for what it is and
// rejects it instead of acting on a truncated one.
const keptDigits = MaxDigits + 1

// Sink receives submitted entries. The device implements it.
type Sink interface {
	// KeypadEntry is called with the collected digits when '#' is pressed
	// on a non-empty entry. The entry holds 1 to MaxDigits+1 digits; a
	// length of MaxDigits+1 means the user typed too many.
	KeypadEntry(entry string)
}

// Feedback signals the user. Every method must return at once.
type Feedback interface {
	// Key acknowledges one key press.
	Key()
	// Accepted tells the user an entry was accepted.
	Accepted()
	// Rejected tells the user an entry was refused.
	Rejected()
}

// CollectorConfig configures a Collector. The zero value of every field
// picks its default.
type CollectorConfig struct {
	// Timeout clears an unfinished entry after this long without a key
	// (config timing.key_timeout_s); default DefaultKeyTimeout.
	Timeout time.Duration
	// Clock times the idle timeout; default the real clock.
	Clock clockwork.Clock
	// Feedback, if set, gets Key for every key press.
	Feedback Feedback
	// Logger gets debug records with entry lengths, never digits.
	Logger *slog.Logger
	// Typed, if set, is told how many digits the unfinished entry holds
	// each time that number changes (0 once it is cleared, submitted or
	// timed out): the guest display shows a dash per digit. It never sees
	// a digit. It is called with the Collector's lock held and must return
	// at once.
	Typed func(n int)
}

// Collector gathers key presses from every keypad into entries and submits
// them to a Sink. It is safe for concurrent use.
type Collector struct {
	sink    Sink
	fb      Feedback
	typed   func(n int)
	clock   clockwork.Clock
	timeout time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	buf  [keptDigits]byte
	n    int
	last time.Time       // when the last key arrived
	idle clockwork.Timer // wipes the entry after timeout; nil until first used
}

var _ Presser = (*Collector)(nil)

// NewCollector returns a Collector that submits entries to sink.
func NewCollector(sink Sink, cfg CollectorConfig) *Collector {
	c := &Collector{
		sink:    sink,
		fb:      cfg.Feedback,
		typed:   cfg.Typed,
		clock:   cfg.Clock,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
	}
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	if c.timeout <= 0 {
		c.timeout = DefaultKeyTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Press handles one key: '0'-'9' append a digit (digits past MaxDigits+1
// are dropped), '*' clears the entry, '#' submits a non-empty entry. Any
// other rune is ignored. Press is safe for concurrent use.
func (c *Collector) Press(k rune) {
	switch {
	case k >= '0' && k <= '9', k == '*', k == '#':
	default:
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	// The idle timer wipes the entry in the background, but it may not
	// have run yet; the clock decides, so a late timer changes nothing.
	now := c.clock.Now()
	if c.n > 0 && now.Sub(c.last) >= c.timeout {
		c.log.Debug("keypad: entry timed out", "len", c.n)
		c.clearLocked()
	}
	c.last = now

	if c.fb != nil {
		c.fb.Key()
	}

	switch k {
	case '*':
		if c.n > 0 {
			c.log.Debug("keypad: entry cleared", "len", c.n)
		}
		c.clearLocked()
	case '#':
		if c.n == 0 {
			return
		}
		entry := string(c.buf[:c.n])
		c.log.Debug("keypad: entry submitted", "len", c.n)
		c.clearLocked()
		c.sink.KeypadEntry(entry)
	default:
		if c.n < len(c.buf) {
			c.buf[c.n] = byte(k)
			c.n++
			c.tellLocked()
		}
		c.armLocked()
	}
}

// Pending reports how many digits the unfinished entry holds. It never
// reveals the digits.
func (c *Collector) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// armLocked (re)starts the idle timer. c.mu must be held.
func (c *Collector) armLocked() {
	if c.idle == nil {
		c.idle = c.clock.AfterFunc(c.timeout, c.expire)
		return
	}
	c.idle.Reset(c.timeout)
}

// expire runs on the idle timer and wipes an entry that has been idle for
// the timeout. A timer that fires just as a key arrives finds the entry
// fresh and leaves it.
func (c *Collector) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 || c.clock.Since(c.last) < c.timeout {
		return
	}
	c.log.Debug("keypad: entry timed out", "len", c.n)
	c.clearLocked()
}

// clearLocked empties the entry and wipes its bytes. c.mu must be held.
func (c *Collector) clearLocked() {
	clear(c.buf[:])
	had := c.n
	c.n = 0
	if c.idle != nil {
		c.idle.Stop()
	}
	if had > 0 {
		c.tellLocked()
	}
}

// tellLocked tells the Typed observer the entry's length. c.mu must be
// held.
func (c *Collector) tellLocked() {
	if c.typed != nil {
		c.typed(c.n)
	}
}
