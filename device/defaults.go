package device

import "time"

// Defaults of Config, taken for a zero field.
const (
	DefaultFobAbsent       = 600 * time.Millisecond
	DefaultDropoffTimeout  = 60 * time.Second
	DefaultInventorySettle = 3 * time.Second
	DefaultLateAfter       = time.Minute
	DefaultLockoutAfter    = 5
	DefaultLockoutBase     = 30 * time.Second
	DefaultLockoutMax      = 900 * time.Second
	DefaultLockoutWindow   = 600 * time.Second // wrong entries count for this long
	DefaultLockoutDecay    = time.Hour         // the escalation falls a step per this without one
	DefaultMaxAccessCodes  = 200_000
	DefaultMaxKeys         = 100_000
	// DefaultRemovedRetention is how long a time-bound code the schedule
	// removed is kept as a tombstone, to be restored if the clock comes back.
	DefaultRemovedRetention = 7 * 24 * time.Hour
	// DefaultSnapshotChunk is how many records of a sync.snapshot are
	// staged per transaction; the loop serves other inputs between two.
	DefaultSnapshotChunk = 500
)

// Internal bounds of the decision loop.
const (
	// inputQueue is how many inputs wait for the loop before a sender
	// blocks.
	inputQueue = 1024
	// scheduleBatch bounds the transitions committed in one transaction.
	scheduleBatch = 500
	// scheduleIdle is the longest the scheduler sleeps, so that a clock
	// that jumps (NTP after a boot in 1970) is noticed.
	scheduleIdle = time.Minute
	// retryAfter is how soon a decision the store refused is tried again
	// (a session's end, an inventory change).
	retryAfter = time.Second
	// scheduleRetry is how soon the scheduler runs again after the store
	// refused its transitions.
	scheduleRetry = 5 * time.Second
)

// doorSettle is how much longer than FobAbsent a session waits after its
// door closed, so a reader can notice a fob that left just before.
const doorSettle = 500 * time.Millisecond
