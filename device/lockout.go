package device

import (
	"smartboxd/store"
	"time"
)

// lockout is the brute-force guard of the keypad (and, alike, of the
// console's PIN): after `after` wrong entries in a row every entry is refused
// for base, doubling with each lockout up to max. A right entry ends the
// escalation. It lives on the loop; its record goes to the store with the
// event of every change, so a reboot does not reset it.
type lockout struct {
	after     int
	base, max time.Duration
	isConsole bool

	failures int
	level    int
	until    time.Time // by the clock's monotonic reading where it has one
}

// restore loads the stored record. A lockout still running when the box went
// down is held again for what it had left, or until its wall-clock end when
// the clock is trusted and that is sooner.
func (l *lockout) restore(rec store.Lockout, now time.Time, synced bool) {
	l.failures, l.level = rec.Failures, rec.Level
	if rec.Remaining <= 0 {
		return
	}
	left := rec.Remaining
	if synced && !rec.Until.IsZero() {
		if wall := rec.Until.Sub(now); wall < left {
			left = wall
		}
	}
	if left > 0 {
		l.until = now.Add(left)
	}
}

// lockedOut reports whether entries are refused now.
func (l *lockout) lockedOut(now time.Time) bool { return now.Before(l.until) }

// record is the durable form of l at now.
func (l *lockout) record(now time.Time) store.Lockout {
	r := store.Lockout{Failures: l.failures, Level: l.level}
	if left := l.until.Sub(now); left > 0 {
		r.Remaining = left
		r.Until = now.Add(left).Round(0).UTC()
	}
	return r
}

// fail counts a wrong entry and reports whether it started a lockout, and
// until when.
func (l *lockout) fail(now time.Time) (bool, time.Time) {
	l.failures++
	if l.failures < l.after {
		return false, time.Time{}
	}
	l.failures = 0
	l.level++
	d := l.base
	for i := 1; i < l.level && d < l.max; i++ {
		d *= 2
	}
	d = min(d, l.max)
	l.until = now.Add(d)
	return true, l.until
}

// succeed ends the escalation.
func (l *lockout) succeed() {
	l.failures, l.level = 0, 0
	l.until = time.Time{}
}
