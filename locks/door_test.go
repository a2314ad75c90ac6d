package locks

import (
	"errors"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Door tests run with these timings; the clock moves one Poll at a time.
const (
	tPulse    = 500 * time.Millisecond
	tGrace    = 500 * time.Millisecond
	tRest     = time.Second
	tDebounce = 50 * time.Millisecond
	tPoll     = 10 * time.Millisecond
	tHeld     = 3 * time.Second
)

// doorBank runs a bank of sim pins: bin 1 with a door sensor, bin 2
// without. It returns once bin 1's door has settled closed.
func doorBank(t *testing.T, polarity Polarity) (*harness, *Sim) {
	t.Helper()
	sim := NewSimPins([]int{1, 2}, func(id int) bool { return id == 1 })
	sim.SetDoorPolarity(polarity)
	h := start(t, Config{
		Bins:         sim.Bins(),
		DoorOpen:     polarity,
		Pulse:        tPulse,
		OpenGrace:    tGrace,
		Rest:         tRest,
		DoorDebounce: tDebounce,
		Poll:         tPoll,
		HeldOpen:     tHeld,
	})
	h.walk(100*time.Millisecond, tPoll)
	if got := h.bank.Door(1); got != DoorClosed {
		t.Fatalf("door %s after start, want closed", got)
	}
	if got := h.sink.list(); len(got) != 1 || got[0].kind != "door" || got[0].bin != 1 || got[0].on {
		t.Fatalf("reports after start %v, want the first reading: closed", got)
	}
	return h, sim
}

func setDoor(t *testing.T, sim *Sim, open bool) {
	t.Helper()
	if err := sim.SetDoor(1, open); err != nil {
		t.Fatal(err)
	}
}

func count(h *harness, kind string, bin int) int { return len(h.sink.of(kind, bin)) }

func TestDoorOpensDuringPulse(t *testing.T) {
	for _, polarity := range []Polarity{ActiveHigh, ActiveLow} {
		t.Run(polarity.String(), func(t *testing.T) {
			h, sim := doorBank(t, polarity)
			h.unlock(1)
			h.walk(200*time.Millisecond, tPoll)
			setDoor(t, sim, true)
			opened := h.clock.Now()
			h.walk(200*time.Millisecond, tPoll)
			if got := h.bank.Door(1); got != DoorOpen {
				t.Fatalf("door %s, want open", got)
			}
			doors := h.sink.of("door", 1)
			last := doors[len(doors)-1]
			if !last.on || last.at.Sub(opened) < tDebounce {
				t.Fatalf("door report %v: want open, debounced after %s", last, opened)
			}
			setDoor(t, sim, false)
			h.walk(3*time.Second, tPoll)
			if n := count(h, "lock", 1); n != 2 {
				t.Errorf("%d lock changes, want one pulse", n)
			}
			for _, kind := range []string{"failed", "forced", "held"} {
				if n := count(h, kind, 1); n != 0 {
					t.Errorf("%d %q reports, want none", n, kind)
				}
			}
			if got := h.bank.Door(1); got != DoorClosed {
				t.Errorf("door %s after closing, want closed", got)
			}
		})
	}
}

func TestDoorNeverOpens(t *testing.T) {
	h, _ := doorBank(t, ActiveHigh)
	h.unlock(1)
	h.walk(4*time.Second, tPoll)
	locks := h.sink.of("lock", 1)
	if len(locks) != 4 {
		t.Fatalf("lock reports %v, want a pulse and one retry", locks)
	}
	first, retry := locks[0].at, locks[2].at
	if rest := retry.Sub(locks[1].at); rest < tRest {
		t.Errorf("retry after a rest of %s, want >= %s", rest, tRest)
	}
	if retry.Sub(first) < tPulse+tGrace {
		t.Errorf("retry %s after the pulse, before the door had its time", retry.Sub(first))
	}
	failed := h.sink.of("failed", 1)
	if len(failed) != 1 {
		t.Fatalf("OpenFailed reports %v, want one", failed)
	}
	if at := failed[0].at.Sub(retry); at < tPulse+tGrace || at > tPulse+tGrace+tPoll {
		t.Errorf("OpenFailed %s after the retry, want after %s", at, tPulse+tGrace)
	}
	if n := count(h, "forced", 1); n != 0 {
		t.Errorf("%d forced reports, want none", n)
	}
}

// TestDoorOpensOnRetry: the door that opens after the retry pulse is no
// failure, and a door opened in the grace after a pulse is no break-in.
func TestDoorOpensOnRetry(t *testing.T) {
	h, sim := doorBank(t, ActiveHigh)
	h.unlock(1)
	h.walk(tPulse+tGrace+tRest/2+100*time.Millisecond, tPoll) // the retry pulses
	if !h.bank.Energised(1) {
		t.Fatal("no retry pulse")
	}
	h.walk(tPulse, tPoll)
	setDoor(t, sim, true) // in the grace after the retry
	h.walk(3*time.Second, tPoll)
	if n := count(h, "lock", 1); n != 4 {
		t.Errorf("%d lock changes, want two pulses", n)
	}
	for _, kind := range []string{"failed", "forced"} {
		if n := count(h, kind, 1); n != 0 {
			t.Errorf("%d %q reports, want none", n, kind)
		}
	}
}

// TestDoorOpensBeforeRetry: a door that opens while its retry waits for
// the coil's rest needs no retry; the opening is neither a failure nor a
// break-in.
func TestDoorOpensBeforeRetry(t *testing.T) {
	h, sim := doorBank(t, ActiveHigh)
	h.unlock(1)
	h.walk(tPulse+tGrace+100*time.Millisecond, tPoll) // the retry is queued
	setDoor(t, sim, true)
	h.walk(4*time.Second, tPoll)
	if n := count(h, "lock", 1); n != 2 {
		t.Errorf("%d lock changes, want one pulse and no retry", n)
	}
	for _, kind := range []string{"failed", "forced"} {
		if n := count(h, kind, 1); n != 0 {
			t.Errorf("%d %q reports, want none", n, kind)
		}
	}
}

// TestDoorAlreadyOpen: a pulse given to an open door needs no retry, even
// when the door is shut right after.
func TestDoorAlreadyOpen(t *testing.T) {
	h, sim := doorBank(t, ActiveHigh)
	h.unlock(1)
	setDoor(t, sim, true)
	h.walk(tPulse, tPoll)
	h.unlock(1) // pulses after its rest, the door open
	h.walk(tRest+100*time.Millisecond, tPoll)
	if !h.bank.Energised(1) || h.bank.Door(1) != DoorOpen {
		t.Fatal("second pulse not given to an open door")
	}
	setDoor(t, sim, false)
	h.walk(4*time.Second, tPoll)
	if n := count(h, "lock", 1); n != 4 {
		t.Errorf("%d lock changes, want two pulses", n)
	}
	if n := count(h, "failed", 1); n != 0 {
		t.Errorf("%d OpenFailed reports, want none", n)
	}
}

func TestDoorForced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pulse  bool          // give a pulse first
		after  time.Duration // then open the door this long after it
		forced bool
	}{
		{"no pulse ever", false, 0, true},
		{"long after a pulse", true, 5 * time.Second, true},
		{"in the grace after a pulse", true, tPulse + tGrace/2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, sim := doorBank(t, ActiveHigh)
			if tc.pulse {
				setDoor(t, sim, true) // no retry: the door was open
				h.unlock(1)
				h.walk(100*time.Millisecond, tPoll)
				setDoor(t, sim, false)
				h.walk(tc.after-100*time.Millisecond, tPoll)
			}
			setDoor(t, sim, true)
			h.walk(time.Second, tPoll)
			want := 0
			if tc.forced {
				want = 1
			}
			if n := count(h, "forced", 1); n != want {
				t.Fatalf("%d DoorForced reports, want %d; reports %v", n, want, h.sink.list())
			}
		})
	}
}

func TestDoorHeldOpen(t *testing.T) {
	h, sim := doorBank(t, ActiveHigh)
	h.unlock(1)
	setDoor(t, sim, true)
	h.walk(tHeld-100*time.Millisecond, tPoll)
	if n := count(h, "held", 1); n != 0 {
		t.Fatalf("held open reported after %s, want after %s", tHeld-100*time.Millisecond, tHeld)
	}
	h.walk(2*tHeld, tPoll)
	if n := count(h, "held", 1); n != 1 {
		t.Fatalf("%d DoorHeldOpen reports for one opening, want 1", n)
	}
	// A new opening counts anew.
	setDoor(t, sim, false)
	h.walk(time.Second, tPoll)
	h.unlock(1)
	setDoor(t, sim, true)
	h.walk(tHeld+time.Second, tPoll)
	if n := count(h, "held", 1); n != 2 {
		t.Fatalf("%d DoorHeldOpen reports for two openings, want 2", n)
	}
}

func TestDoorDebounce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bounce  time.Duration
		reports []bool // door reports after the first reading
	}{
		{"bounce shorter than debounce", 30 * time.Millisecond, nil},
		{"just under debounce", tDebounce - tPoll, nil},
		{"steady past debounce", tDebounce + 2*tPoll, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, sim := doorBank(t, ActiveHigh)
			h.unlock(1)                  // so the opening is not forced
			h.walk(tPulse/2, tPoll)      // in the pulse
			setDoor(t, sim, true)        //
			h.walk(tc.bounce, tPoll)     //
			setDoor(t, sim, false)       //
			h.walk(5*time.Second, tPoll) // the door closed: a retry, and a failure
			var got []bool
			for _, r := range h.sink.of("door", 1)[1:] {
				got = append(got, r.on)
			}
			if !slices.Equal(got, tc.reports) {
				t.Fatalf("door reports %v, want %v", got, tc.reports)
			}
			wantFailed := 1
			if tc.reports != nil {
				wantFailed = 0
			}
			if n := count(h, "failed", 1); n != wantFailed {
				t.Errorf("%d OpenFailed reports, want %d", n, wantFailed)
			}
		})
	}
}

// TestFirstReadingOpen: a door found open at start is reported open, not
// forced, and still counts towards held open.
func TestFirstReadingOpen(t *testing.T) {
	sim := NewSimPins([]int{1}, func(int) bool { return true })
	if err := sim.SetDoor(1, true); err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Bins: sim.Bins(), Poll: tPoll, HeldOpen: tHeld})
	if got := h.bank.Door(1); got != DoorUnknown {
		t.Fatalf("door %s before any steady reading, want unknown", got)
	}
	h.walk(tHeld+time.Second, tPoll)
	if got := h.bank.Door(1); got != DoorOpen {
		t.Fatalf("door %s, want open", got)
	}
	want := []string{"door", "held"}
	var got []string
	for _, r := range h.sink.list() {
		got = append(got, r.kind)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reports %v, want %v", h.sink.list(), want)
	}
}

// TestBinWithoutDoor: a bin without a sensor pulses once per request and
// never reports a door event, next to a bin with one.
func TestBinWithoutDoor(t *testing.T) {
	h, sim := doorBank(t, ActiveHigh)
	if h.bank.HasDoor(2) || !h.bank.HasDoor(1) || h.bank.HasDoor(3) {
		t.Fatal("HasDoor is wrong")
	}
	if err := sim.SetDoor(2, true); !errors.Is(err, ErrNoDoor) {
		t.Fatalf("SetDoor on a bin without a door: %v, want ErrNoDoor", err)
	}
	h.unlock(2)
	if !h.bank.Energised(2) || sim.LockPin(2).Read() != gpio.High {
		t.Fatal("bin without a door did not pulse")
	}
	h.walk(tHeld+5*time.Second, tPoll)
	if sim.LockPin(2).Read() != gpio.Low {
		t.Fatal("bin without a door left energised")
	}
	for _, r := range h.sink.list() {
		if r.bin == 2 && r.kind != "lock" {
			t.Errorf("bin without a door reported %v", r)
		}
	}
	if n := count(h, "lock", 2); n != 2 {
		t.Errorf("%d lock changes, want one pulse and no retry", n)
	}
	if got := h.bank.Door(2); got != DoorUnknown {
		t.Errorf("door of a bin without a sensor %s, want unknown", got)
	}
}
