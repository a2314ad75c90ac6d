package device

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// keypadLockout reads the keypad's lockout on the loop.
func (h *harness) keypadLockout() *lockout {
	h.t.Helper()
	var l lockout
	if err := h.box.call(context.Background(), func() { l = h.box.keypad; l.fails = slices.Clone(l.fails) }); err != nil {
		h.t.Fatal(err)
	}
	return &l
}

// guessesPerDay plays a guesser at the keypad for a day of fake time: a
// guess a second whenever the keypad takes entries, waiting out each
// lockout. With interleave > 0 it enters its own valid code after every
// interleave guesses. It stops early once it has made more than limit
// guesses (limit 0: no limit) and returns how many guesses the keypad
// judged.
func guessesPerDay(t *testing.T, interleave, limit int) int {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "own", "name": "own"})
	h.mustOK("key.upsert", map[string]any{"key_id": "victim", "name": "victim", "serial_number": "ABCDEF"})
	h.checkIn("victim", "ABCDEF")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "own", "code": "55555555", "name": "own", "type": "ongoing", "key_id": "own", "action": "dropoff"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "victim", "code": "9317", "name": "victim", "type": "ongoing", "key_id": "victim", "action": "pickup"})
	end := h.clock.Now().Add(24 * time.Hour)
	guesses, n := 0, 0
	for h.clock.Now().Before(end) && (limit == 0 || guesses <= limit) {
		if l := h.keypadLockout(); l.lockedOut(h.clock.Now()) {
			h.advance(l.until.Sub(h.clock.Now()))
			continue
		}
		if interleave > 0 && guesses > 0 && guesses%interleave == 0 && n != guesses {
			n = guesses
			h.enter("55555555") // the guesser's own code: right, and opens a bin
		} else {
			// The keypad takes entries now: this guess is judged.
			h.enter(fmt.Sprintf("%04d", guesses%9000+1000)) // never 9317 before the 8,317th
			guesses++
		}
		h.advance(time.Second)
	}
	judged := 0
	for _, m := range h.eventsOf(contract.EventCodeRejected) {
		if m["reason"] == contract.CodeCodeUnknown {
			judged++
		}
	}
	eq(t, "guesses judged", judged, guesses)
	return guesses
}

// TestInterleavedValidCodeGetsNoMoreGuesses: an attacker who enters a valid
// code of their own after every four guesses gets no more guesses at a
// victim's code in a day than one who only guesses.
func TestInterleavedValidCodeGetsNoMoreGuesses(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates two days at the keypad")
	}
	plain := guessesPerDay(t, 0, 0)
	interleaved := guessesPerDay(t, 4, plain)
	t.Logf("guesses in a day: %d guessing only, %d with a valid code after every 4", plain, interleaved)
	if plain == 0 || plain > 1000 {
		t.Fatalf("a guesser alone got %d guesses in a day", plain)
	}
	if interleaved > plain {
		t.Fatalf("interleaving a valid code gave %d guesses a day, more than %d without", interleaved, plain)
	}
}

// TestLockoutWindowAndDecay: wrong entries count over a sliding window
// whatever right codes come between them; a right code leaves the
// escalation; the escalation falls one step per decay period without a
// wrong entry. Table of steps on the lockout alone.
func TestLockoutWindowAndDecay(t *testing.T) {
	mk := func() *lockout {
		return &lockout{after: 3, base: 30 * time.Second, max: 900 * time.Second, window: 10 * time.Minute, decay: time.Hour}
	}
	lockFor := func(l *lockout, now time.Time) time.Duration {
		var until time.Time
		for i := range l.after {
			if locked, u := l.fail(now.Add(time.Duration(i) * time.Second)); locked {
				until = u
			}
		}
		return until.Sub(now.Add(time.Duration(l.after-1) * time.Second))
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l *lockout)
	}{
		{"three within the window lock", func(t *testing.T, l *lockout) {
			l.fail(t0)
			l.fail(t0.Add(9 * time.Minute))
			if locked, _ := l.fail(t0.Add(9*time.Minute + 59*time.Second)); !locked {
				t.Fatal("three wrong entries within 10 minutes did not lock")
			}
		}},
		{"an entry leaves the window", func(t *testing.T, l *lockout) {
			l.fail(t0)
			l.fail(t0.Add(5 * time.Minute))
			if locked, _ := l.fail(t0.Add(10 * time.Minute)); locked {
				t.Fatal("the first entry, 10 minutes old, still counted")
			}
			if locked, _ := l.fail(t0.Add(11 * time.Minute)); !locked {
				t.Fatal("three within the window did not lock")
			}
		}},
		{"the escalation decays a step an hour", func(t *testing.T, l *lockout) {
			eq(t, "first", lockFor(l, t0), 30*time.Second)
			eq(t, "second", lockFor(l, t0.Add(time.Minute)), 60*time.Second)
			eq(t, "third", lockFor(l, t0.Add(3*time.Minute)), 120*time.Second)
			// An hour and a bit without a wrong entry: one step down.
			eq(t, "after an hour", lockFor(l, t0.Add(3*time.Minute+time.Hour+10*time.Minute)), 120*time.Second)
			// Three hours more: from level 3 to 0, then the first again.
			eq(t, "after four hours", lockFor(l, t0.Add(5*time.Hour)), 30*time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, mk()) })
	}
}

// TestRightCodeKeepsCountAndEscalation: on the keypad, a right code between
// wrong entries resets nothing, and the count survives a restart.
func TestRightCodeKeepsCountAndEscalation(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "own", "name": "own"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "own", "code": "55555555", "name": "own", "type": "ongoing", "key_id": "own", "action": "dropoff"})
	wrong := func(n int) {
		for range n {
			h.enter("0000")
			h.advance(time.Second)
		}
	}
	wrong(4)
	h.enter("55555555")
	eq(t, "own code opened", h.last(contract.EventBinUnlocked)["reason"].(string), contract.ReasonDropoff)
	h.advance(61 * time.Second) // the drop-off times out
	h.restart()
	wrong(1)
	lo := h.eventsOf(contract.EventKeypadLockedOut)
	eq(t, "locked out after 4 + right + restart + 1", len(lo), 1)
	h.advance(30 * time.Second)
	h.enter("55555555")
	h.advance(61 * time.Second)
	wrong(5)
	lo = h.eventsOf(contract.EventKeypadLockedOut)
	eq(t, "second lockout", len(lo), 2)
	// Doubled: the right code in between did not end the escalation.
	until, _ := time.Parse(time.RFC3339, lo[1]["until"].(string))
	eq(t, "second lockout length", until.Sub(h.clock.Now().Add(-time.Second).Truncate(time.Second)), 60*time.Second)
}

// TestLockoutReportsFirstRejectionAndCounts: 10,000 entries typed while
// offline, as fast as a keypad sends them, leave at most 200 events: each
// lockout reports its first refusal and counts the rest in
// keypad.lockout_ended.
func TestLockoutReportsFirstRejectionAndCounts(t *testing.T) {
	h := newHarness(t)
	start := h.count()
	for i := range 10_000 {
		h.box.KeypadEntry(fmt.Sprint(i % 10)) // one-digit entries
		if i%100 == 99 {
			h.flush()
		}
		h.clock.Advance(100 * time.Millisecond)
	}
	h.advance(time.Hour) // the last lockout ends
	evs := h.events()[start:]
	counts := map[string]int{}
	for _, ev := range evs {
		counts[ev.Type]++
	}
	t.Logf("10,000 entries: %d events %v", len(evs), counts)
	if len(evs) > 200 {
		t.Fatalf("10,000 entries left %d events, want at most 200", len(evs))
	}
	// Every entry is accounted for: judged (code.rejected) or counted.
	total := counts[contract.EventCodeRejected]
	for _, m := range h.eventsOf(contract.EventKeypadLockoutEnded) {
		total += int(m["rejected"].(float64))
	}
	eq(t, "entries accounted for", total, 10_000)
	eq(t, "every lockout ended", counts[contract.EventKeypadLockoutEnded], counts[contract.EventKeypadLockedOut])
	eq(t, "feedback for every entry", h.fb.bad.Load(), int32(10_000))
}

// TestClearLockout: security.clear_lockout ends a running lockout and its
// escalation, audited by keypad.lockout_cleared; the console's
// ClearLockout does the same. Both survive a restart.
func TestClearLockout(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "p", "code": "246813", "name": "p", "type": "ongoing", "key_id": "k", "action": "pickup"})
	lockOut := func() {
		for range 5 {
			h.enter("0000")
		}
		if !h.keypadLockout().lockedOut(h.clock.Now()) {
			t.Fatal("not locked out")
		}
	}
	lockOut()
	h.enter("246813")
	h.enter("246813") // counted, not reported
	h.mustFail(contract.CodeCmdInvalid, "security.clear_lockout", map[string]any{"extra": 1})
	res := h.mustOK("security.clear_lockout", map[string]any{})
	ev := h.last(contract.EventKeypadLockoutCleared)
	for _, m := range []map[string]any{res, ev} {
		if m["by"] != contract.ClearedByCloud || m["was_locked_out"] != true || m["level"].(float64) != 1 || m["rejected"].(float64) != 1 {
			t.Fatalf("clear_lockout: %v", m)
		}
	}
	h.restart()
	h.enter("246813")
	if got := h.locks.pulses(); !slices.Equal(got[len(got)-1:], []int{bin}) {
		t.Fatalf("after clear_lockout the right code did not open: %v; events %v", got, h.types())
	}
	var rec store.Lockout
	if err := h.db.View(func(tx *store.Tx) (err error) { rec, err = tx.Lockout(false); return }); err != nil {
		t.Fatal(err)
	}
	if rec.Level != 0 || len(rec.Fails) != 0 || rec.Remaining != 0 {
		t.Fatalf("stored lockout after clearing: %+v", rec)
	}

	// From the console: a new lockout starts again at the bottom.
	h.advance(time.Minute)
	lockOut()
	eq(t, "level after clearing", h.keypadLockout().level, 1)
	cl, err := h.box.ClearLockout(context.Background())
	if err != nil || cl.By != contract.ClearedByConsole || !cl.WasLockedOut {
		t.Fatalf("console clear: %+v, %v", cl, err)
	}
	eq(t, "cleared events", len(h.eventsOf(contract.EventKeypadLockoutCleared)), 2)
	if h.keypadLockout().lockedOut(h.clock.Now()) {
		t.Fatal("still locked out after the console cleared it")
	}
}
