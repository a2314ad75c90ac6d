package device

import (
	"time"

	"smartboxd/store"
)

// lockout is the brute-force guard of the keypad (and, alike, of the
// console's PIN). Wrong entries are counted over a sliding window: `after`
// of them within `window` start a lockout, during which every entry is
// refused, of base, doubling with each lockout of the escalation up to max.
// On the keypad a right code clears neither the count nor the escalation (an
// attacker holding a code of their own could otherwise reset it between
// guesses); the escalation falls one step per `decay` without a wrong entry,
// and security.clear_lockout ends it. The console's right PIN does end it.
// It lives on the loop; its record goes to the store with the event of every
// change, so a reboot does not reset it.
type lockout struct {
	after     int
	base, max time.Duration
	window    time.Duration // a wrong entry counts for this long; <= 0: until the next lockout
	decay     time.Duration // the escalation falls a step per this without a wrong entry; <= 0: never
	isConsole bool

	fails []time.Time // the wrong entries counted, oldest first
	level int
	since time.Time // the last wrong entry, or the last step of decay since
	until time.Time // by the clock's monotonic reading where it has one

	// Of the entries refused during the current lockout the first is
	// reported; the rest are counted here, for the event at its end.
	reported bool
	rejected int
}

// restore loads the stored record. A lockout still running when the box went
// down is held again for what it had left, or until its wall-clock end when
// the clock is trusted and that is sooner. A record written before wrong
// entries carried their times counts its failures as made now.
func (l *lockout) restore(rec store.Lockout, now time.Time, synced bool) {
	l.level = rec.Level
	l.fails = nil
	for _, t := range rec.Fails {
		l.fails = append(l.fails, earlier(t, now)) // a clock set back does not stretch the window
	}
	if len(rec.Fails) == 0 {
		for range rec.Failures {
			l.fails = append(l.fails, now)
		}
	}
	l.since = time.Time{}
	if l.level > 0 {
		l.since = now
		if !rec.Since.IsZero() {
			l.since = earlier(rec.Since, now)
		}
	}
	if rec.Remaining <= 0 {
		return
	}
	left := rec.Remaining
	if synced && !rec.Until.IsZero() {
		if wall := rec.Until.Sub(now); wall < left {
			left = wall
		}
	}
	// A lockout that ended while the box was down still ends (and is
	// reported ended) now.
	l.until = now.Add(max(left, 0))
}

func earlier(t, now time.Time) time.Time {
	if t.After(now) {
		return now
	}
	return t
}

// lockedOut reports whether entries are refused now.
func (l *lockout) lockedOut(now time.Time) bool { return now.Before(l.until) }

// clean reports whether nothing is counted: no wrong entry, no escalation,
// no lockout.
func (l *lockout) clean() bool { return len(l.fails) == 0 && l.level == 0 && l.until.IsZero() }

// record is the durable form of l at now.
func (l *lockout) record(now time.Time) store.Lockout {
	r := store.Lockout{Failures: len(l.fails), Level: l.level}
	for _, t := range l.fails {
		r.Fails = append(r.Fails, t.Round(0).UTC())
	}
	if !l.since.IsZero() {
		r.Since = l.since.Round(0).UTC()
	}
	if left := l.until.Sub(now); left > 0 {
		r.Remaining = left
		r.Until = now.Add(left).Round(0).UTC()
	}
	return r
}

// decayTo lowers the escalation by a step per decay since the last wrong
// entry.
func (l *lockout) decayTo(now time.Time) {
	if l.level == 0 || l.decay <= 0 || l.since.IsZero() {
		return
	}
	steps := now.Sub(l.since) / l.decay
	if steps <= 0 {
		return
	}
	if steps >= time.Duration(l.level) {
		l.level, l.since = 0, time.Time{}
		return
	}
	l.level -= int(steps)
	l.since = l.since.Add(steps * l.decay)
}

// prune forgets the wrong entries that left the window.
func (l *lockout) prune(now time.Time) {
	if l.window <= 0 {
		return
	}
	i := 0
	for i < len(l.fails) && now.Sub(l.fails[i]) >= l.window {
		i++
	}
	l.fails = append(l.fails[:0:0], l.fails[i:]...)
}

// fail counts a wrong entry and reports whether it started a lockout, and
// until when.
func (l *lockout) fail(now time.Time) (bool, time.Time) {
	l.decayTo(now)
	l.prune(now)
	l.fails = append(l.fails[:len(l.fails):len(l.fails)], now)
	l.since = now
	if len(l.fails) < l.after {
		return false, time.Time{}
	}
	l.fails = nil
	l.level++
	d := l.base
	for i := 1; i < l.level && d < l.max; i++ {
		d *= 2
	}
	d = min(d, l.max)
	l.until = now.Add(d)
	l.reported, l.rejected = false, 0
	return true, l.until
}

// succeed ends the escalation: the console's right PIN, and
// security.clear_lockout for the keypad.
func (l *lockout) succeed() {
	l.fails, l.level = nil, 0
	l.since, l.until = time.Time{}, time.Time{}
	l.reported, l.rejected = false, 0
}
