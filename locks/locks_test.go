package locks

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestNewDrivesLocksInactiveFirst(t *testing.T) {
	for _, tc := range []struct {
		name   string
		active Polarity
		ids    []int // a bad set makes New fail after driving the pins
	}{
		{"active high", ActiveHigh, []int{1, 2, 3}},
		{"active low", ActiveLow, []int{1, 2, 3}},
		{"active high, duplicate ids", ActiveHigh, []int{1, 2, 2}},
		{"active low, id zero", ActiveLow, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bins []Bin
			var pins []*gpiotest.Pin
			for _, id := range tc.ids {
				p := &gpiotest.Pin{N: "LOCK", Num: id, L: tc.active.On()}
				pins = append(pins, p)
				bins = append(bins, Bin{ID: id, Lock: p})
			}
			_, err := New(Config{Bins: bins, LockActive: tc.active, Clock: clockwork.NewFakeClock()})
			valid := !slices.Contains(tc.ids, 0) && len(slices.Compact(slices.Clone(tc.ids))) == len(tc.ids)
			if valid && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !valid && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: err %v, want ErrInvalidConfig", err)
			}
			for i, p := range pins {
				if got := p.Read(); got != tc.active.Off() {
					t.Errorf("bin %d: lock at %s after New, want %s", tc.ids[i], got, tc.active.Off())
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	pin := func() gpio.PinOut { return &gpiotest.Pin{} }
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"negative id", Config{Bins: []Bin{{ID: -1, Lock: pin()}}}},
		{"zero id", Config{Bins: []Bin{{ID: 0, Lock: pin()}}}},
		{"duplicate id", Config{Bins: []Bin{{ID: 4, Lock: pin()}, {ID: 4, Lock: pin()}}}},
		{"no lock output", Config{Bins: []Bin{{ID: 1}}}},
		{"negative pulse", Config{Pulse: -time.Millisecond}},
		{"pulse too long", Config{Pulse: MaxPulse + time.Millisecond}},
		{"negative rest", Config{Rest: -time.Second}},
		{"negative budget", Config{MaxEnergised: -1}},
		{"negative debounce", Config{DoorDebounce: -1}},
		{"negative poll", Config{Poll: -1}},
		{"bad polarity", Config{LockActive: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: err %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewFailsWhenALockCannotBeDriven(t *testing.T) {
	good := &gpiotest.Pin{L: gpio.High}
	bad := &flakyPin{Pin: &gpiotest.Pin{L: gpio.High}, bad: gpio.Low, fails: 1}
	_, err := New(Config{Bins: []Bin{{ID: 1, Lock: bad}, {ID: 2, Lock: good}}})
	if !errors.Is(err, errPin) {
		t.Fatalf("New: err %v, want the pin's error", err)
	}
	if good.Read() != gpio.Low {
		t.Error("the other lock was left energised")
	}
}

func TestPolarity(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Polarity
		on, off gpio.Level
		err     bool
	}{
		{"", ActiveHigh, gpio.High, gpio.Low, false},
		{"high", ActiveHigh, gpio.High, gpio.Low, false},
		{"HIGH", ActiveHigh, gpio.High, gpio.Low, false},
		{"low", ActiveLow, gpio.Low, gpio.High, false},
		{"middle", 0, false, false, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePolarity(tc.in)
			if tc.err {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil || p != tc.want || p.On() != tc.on || p.Off() != tc.off {
				t.Fatalf("got %v (on %s, off %s), %v; want %v (on %s, off %s)", p, p.On(), p.Off(), err, tc.want, tc.on, tc.off)
			}
		})
	}
}

func TestDoorStateString(t *testing.T) {
	for s, want := range map[DoorState]string{DoorUnknown: "unknown", DoorOpen: "open", DoorClosed: "closed"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

func TestUnlockErrors(t *testing.T) {
	h := start(t, Config{Bins: []Bin{{ID: 1, Lock: &gpiotest.Pin{}}}})
	if err := h.bank.Unlock(2); !errors.Is(err, ErrUnknownBin) {
		t.Errorf("unknown bin: %v, want ErrUnknownBin", err)
	}
	if err := h.bank.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := h.bank.Unlock(1); !errors.Is(err, ErrStopped) {
		t.Errorf("after Halt: %v, want ErrStopped", err)
	}
	if err := h.wait(); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after Halt: %v, want ErrStopped", err)
	}
	if err := h.bank.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Run again: %v, want ErrStopped", err)
	}
}

// TestPulse checks one pulse on its own: exactly Pulse long, reported
// through the Sink, and the timer alone ends it.
func TestPulse(t *testing.T) {
	for _, active := range []Polarity{ActiveHigh, ActiveLow} {
		t.Run(active.String(), func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(epoch)
			rec := newRecorder(clock, active.On())
			h := start(t, Config{Bins: []Bin{{ID: 7, Lock: rec.pin(7)}}, LockActive: active, Clock: clock, Pulse: 300 * time.Millisecond})
			h.unlock(7)
			if !h.bank.Energised(7) {
				t.Fatal("not energised after Unlock")
			}
			h.advance(299 * time.Millisecond)
			if !h.bank.Energised(7) {
				t.Fatal("de-energised before the pulse was over")
			}
			h.advance(time.Millisecond)
			if h.bank.Energised(7) {
				t.Fatal("still energised when the pulse was over")
			}
			want := []change{{7, true, epoch}, {7, false, epoch.Add(300 * time.Millisecond)}}
			if got := rec.list(); !slices.Equal(got, want) {
				t.Errorf("changes %v, want %v", got, want)
			}
			reports := h.sink.list()
			wantReports := []report{{"lock", 7, true, epoch}, {"lock", 7, false, epoch.Add(300 * time.Millisecond)}}
			if !slices.Equal(reports, wantReports) {
				t.Errorf("reports %v, want %v", reports, wantReports)
			}
		})
	}
}

// TestLateLoopDeenergisesFirst wakes the loop long after a pulse should
// have ended, with another pulse waiting for the budget or for its coil's
// rest: the late coil is de-energised before the next one is energised.
func TestLateLoopDeenergisesFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		setup func(h *harness) // leaves bin 1 pulsing, bin 2 waiting
	}{
		{"waiting for the budget", 1, func(h *harness) {
			h.unlock(1)
			h.unlock(2)
		}},
		{"waiting for its rest", 2, func(h *harness) {
			h.unlock(2)
			h.advance(DefaultPulse + DefaultRest/2)
			h.unlock(1)
			h.unlock(2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(epoch)
			rec := newRecorder(clock, gpio.High)
			h := start(t, Config{
				Bins:         []Bin{{ID: 1, Lock: rec.pin(1)}, {ID: 2, Lock: rec.pin(2)}},
				MaxEnergised: tc.max,
				Clock:        clock,
			})
			tc.setup(h)
			if !h.bank.Energised(1) || h.bank.Energised(2) {
				t.Fatal("setup: want bin 1 pulsing and bin 2 waiting")
			}
			before := len(rec.list())
			h.advance(3 * time.Second)
			late := h.clock.Now()
			want := []change{{1, false, late}, {2, true, late}}
			if got := rec.list()[before:]; !slices.Equal(got, want) {
				t.Fatalf("changes %v, want %v", got, want)
			}
			h.advance(DefaultPulse)
			if h.bank.Energised(2) {
				t.Error("second pulse outlived Pulse")
			}
		})
	}
}

// TestCoalesce: a request for a bin whose pulse is still queued rides on
// that pulse; one made while it pulses gets a pulse of its own after the
// rest.
func TestCoalesce(t *testing.T) {
	clock := clockwork.NewFakeClockAt(epoch)
	rec := newRecorder(clock, gpio.High)
	h := start(t, Config{Bins: []Bin{{ID: 1, Lock: rec.pin(1)}, {ID: 2, Lock: rec.pin(2)}}, MaxEnergised: 1, Clock: clock})
	h.unlock(1) // pulses now
	h.unlock(2) // waits for the budget
	h.unlock(2) // rides on the queued pulse
	h.unlock(1) // bin 1 is pulsing: a new pulse, after its rest
	h.walk(5*time.Second, 50*time.Millisecond)
	var got []int
	for _, c := range rec.list() {
		if c.on {
			got = append(got, c.bin)
		}
	}
	if want := []int{1, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("pulses %v, want %v", got, want)
	}
	changes := rec.list()
	// Bin 1's second pulse starts a Rest after its first ended.
	if d := changes[4].at.Sub(changes[1].at); d != DefaultRest {
		t.Errorf("bin 1 rested %s, want %s", d, DefaultRest)
	}
}

// TestScheduleRandom throws 10,000 requests at a bank while a fake clock
// moves on in random steps, and checks every lock output change: the
// power budget, the pulse length, the rest and first come first served.
func TestScheduleRandom(t *testing.T) {
	const requests = 10000
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, tc := range []struct {
		name   string
		max    int
		active Polarity
		pulse  time.Duration
		rest   time.Duration
		seed   uint64
	}{
		{"budget 2", 2, ActiveHigh, 0, 0, 1},
		{"budget 1 active low", 1, ActiveLow, 0, 0, 2},
		{"budget 3 short", 3, ActiveHigh, 120 * time.Millisecond, 400 * time.Millisecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(epoch)
			rec := newRecorder(clock, tc.active.On())
			var bins []Bin
			for _, id := range ids {
				bins = append(bins, Bin{ID: id, Lock: rec.pin(id)})
			}
			h := start(t, Config{Bins: bins, MaxEnergised: tc.max, LockActive: tc.active, Pulse: tc.pulse, Rest: tc.rest, Clock: clock})
			pulse, rest := h.bank.pulse, h.bank.rest
			rng := rand.New(rand.NewPCG(tc.seed, 2024))

			// The model: a request starts a new pulse unless one of its bin
			// is still waiting to start.
			var order []int
			want := map[int]int{}
			coalesced := 0
			busy := false // bursts of requests, and quiet spells
			for n := 0; n < requests; {
				if rng.IntN(100) == 0 {
					busy = !busy
				}
				k := rng.IntN(4)
				if !busy && rng.IntN(4) > 0 {
					k = 0
				}
				for ; k > 0 && n < requests; k-- {
					id := ids[rng.IntN(len(ids))]
					if rec.starts(id) < want[id] {
						coalesced++
					} else {
						want[id]++
						order = append(order, id)
					}
					h.unlock(id)
					n++
				}
				h.advance(randomStep(t, rng, h))
			}
			for !h.bank.nextWake().IsZero() {
				h.advance(h.clock.Until(h.bank.nextWake()))
			}

			changes := rec.list()
			on := 0
			started := map[int]time.Time{}
			ended := map[int]time.Time{}
			var served []int
			for _, c := range changes {
				if c.on {
					on++
					if on > tc.max {
						t.Fatalf("%d coils energised at %s, budget %d", on, c.at, tc.max)
					}
					if _, ok := started[c.bin]; ok {
						t.Fatalf("bin %d energised twice", c.bin)
					}
					if e, ok := ended[c.bin]; ok && c.at.Sub(e) < rest {
						t.Fatalf("bin %d rested %s, want >= %s", c.bin, c.at.Sub(e), rest)
					}
					started[c.bin] = c.at
					served = append(served, c.bin)
					continue
				}
				on--
				s, ok := started[c.bin]
				if !ok {
					t.Fatalf("bin %d de-energised while not energised", c.bin)
				}
				if d := c.at.Sub(s); d != pulse {
					t.Fatalf("bin %d pulsed %s at %s, want %s", c.bin, d, s, pulse)
				}
				delete(started, c.bin)
				ended[c.bin] = c.at
			}
			if on != 0 {
				t.Fatalf("%d coils left energised", on)
			}
			if !slices.Equal(served, order) {
				t.Fatalf("served %d pulses, want %d in request order; first difference at %d",
					len(served), len(order), firstDiff(served, order))
			}
			locks := 0
			for _, r := range h.sink.list() {
				if r.kind == "lock" {
					locks++
				}
			}
			if locks != 2*len(served) {
				t.Errorf("Sink heard %d lock changes, want %d", locks, 2*len(served))
			}
			t.Logf("%d requests: %d pulses, %d coalesced, %s of fake time", requests, len(served), coalesced, h.clock.Since(epoch))
		})
	}
}

// randomStep picks a step for the fake clock: small, medium or large, but
// never past the loop's next deadline, so the loop is never late.
func randomStep(t *testing.T, rng *rand.Rand, h *harness) time.Duration {
	t.Helper()
	var d time.Duration
	switch rng.IntN(3) {
	case 0:
		d = time.Duration(1+rng.IntN(20)) * time.Millisecond
	case 1:
		d = time.Duration(1+rng.IntN(300)) * time.Millisecond
	default:
		d = time.Duration(1+rng.IntN(2000)) * time.Millisecond
	}
	if next := h.bank.nextWake(); !next.IsZero() {
		until := h.clock.Until(next)
		if until <= 0 {
			t.Fatalf("loop deadline %s is not in the future", next)
		}
		d = min(d, until)
	}
	return d
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// allInactive fails the test unless every pin reads inactive.
func allInactive(t *testing.T, pins map[int]*gpiotest.Pin, off gpio.Level) {
	t.Helper()
	for id, p := range pins {
		if got := p.Read(); got != off {
			t.Errorf("bin %d: lock at %s, want inactive %s", id, got, off)
		}
	}
}

// energisedBank starts a bank with two coils energised and a pulse
// queued.
func energisedBank(t *testing.T) (*harness, map[int]*gpiotest.Pin) {
	t.Helper()
	pins := map[int]*gpiotest.Pin{}
	var bins []Bin
	for id := 1; id <= 3; id++ {
		pins[id] = &gpiotest.Pin{}
		bins = append(bins, Bin{ID: id, Lock: pins[id]})
	}
	h := start(t, Config{Bins: bins})
	for id := 1; id <= 3; id++ {
		h.unlock(id)
	}
	if pins[1].Read() != gpio.High || pins[2].Read() != gpio.High {
		t.Fatal("coils not energised")
	}
	return h, pins
}

func TestInactiveOnStop(t *testing.T) {
	t.Run("ctx cancel", func(t *testing.T) {
		h, pins := energisedBank(t)
		h.cancel()
		if err := h.wait(); err != nil {
			t.Fatalf("Run: %v, want nil", err)
		}
		allInactive(t, pins, gpio.Low)
		if err := h.bank.Unlock(1); !errors.Is(err, ErrStopped) {
			t.Errorf("Unlock after Run: %v, want ErrStopped", err)
		}
		if h.bank.Energised(1) {
			t.Error("Energised says the coil is still on")
		}
		off := 0
		for _, r := range h.sink.list() {
			if r.kind == "lock" && !r.on {
				off++
			}
		}
		if off != 2 {
			t.Errorf("Sink heard %d coils go off, want 2", off)
		}
	})
	t.Run("halt", func(t *testing.T) {
		h, pins := energisedBank(t)
		if err := h.bank.Halt(); err != nil {
			t.Fatal(err)
		}
		allInactive(t, pins, gpio.Low) // at once, not when Run returns
		if err := h.bank.Halt(); err != nil {
			t.Fatalf("second Halt: %v", err)
		}
		if err := h.wait(); !errors.Is(err, ErrStopped) {
			t.Fatalf("Run: %v, want ErrStopped", err)
		}
		h.clock.Advance(5 * time.Second)
		allInactive(t, pins, gpio.Low)
	})
	t.Run("recovered panic", func(t *testing.T) {
		h, pins := energisedBank(t)
		done := make(chan any)
		go func() {
			var r any
			defer func() { done <- r }()
			defer func() {
				r = recover()
				_ = h.bank.Halt()
			}()
			_ = h.bank.Unlock(3)
			panic("boom")
		}()
		if r := <-done; r != "boom" {
			t.Fatalf("recovered %v", r)
		}
		allInactive(t, pins, gpio.Low)
		if err := h.bank.Unlock(1); !errors.Is(err, ErrStopped) {
			t.Errorf("Unlock after Halt: %v, want ErrStopped", err)
		}
		if err := h.wait(); !errors.Is(err, ErrStopped) {
			t.Fatalf("Run: %v, want ErrStopped", err)
		}
	})
	t.Run("nil bank", func(t *testing.T) {
		var b *Bank
		if err := b.Halt(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHaltRacesUnlock halts a bank while another goroutine keeps asking
// for pulses and the clock keeps moving: once Halt has returned, no coil
// is ever energised again.
func TestHaltRacesUnlock(t *testing.T) {
	pins := map[int]*gpiotest.Pin{}
	var bins []Bin
	for id := 1; id <= 4; id++ {
		pins[id] = &gpiotest.Pin{}
		bins = append(bins, Bin{ID: id, Lock: pins[id]})
	}
	h := start(t, Config{Bins: bins, MaxEnergised: 4, Rest: time.Millisecond, Pulse: time.Millisecond})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = h.bank.Unlock(1 + i%4)
			h.clock.Advance(time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.sink.list()) < 20 {
		if time.Now().After(deadline) {
			t.Fatal("no pulses")
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.bank.Halt(); err != nil {
		t.Fatal(err)
	}
	allInactive(t, pins, gpio.Low)
	for range 50 {
		h.clock.Advance(time.Millisecond)
		allInactive(t, pins, gpio.Low)
	}
	close(stop)
	<-done
	if err := h.wait(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run: %v, want ErrStopped", err)
	}
	allInactive(t, pins, gpio.Low)
}

// TestDeenergiseRetried: a lock output that refuses to go inactive at the
// end of a pulse is written again until it does, and holds its place in
// the power budget meanwhile.
func TestDeenergiseRetried(t *testing.T) {
	clock := clockwork.NewFakeClockAt(epoch)
	stuck := &flakyPin{Pin: &gpiotest.Pin{}, bad: gpio.Low}
	other := &gpiotest.Pin{}
	h := start(t, Config{Bins: []Bin{{ID: 1, Lock: stuck}, {ID: 2, Lock: other}}, MaxEnergised: 1, Clock: clock})
	h.unlock(1)
	stuck.mu.Lock()
	stuck.fails = 3
	stuck.mu.Unlock()
	h.unlock(2)
	h.advance(DefaultPulse)
	for i := 0; i < 3; i++ {
		if !h.bank.Energised(1) || stuck.Read() != gpio.High {
			t.Fatalf("retry %d: coil reported off while its write failed", i)
		}
		if other.Read() != gpio.Low {
			t.Fatalf("retry %d: second coil energised beyond the budget", i)
		}
		h.advance(DefaultPoll)
	}
	if h.bank.Energised(1) || stuck.Read() != gpio.Low {
		t.Fatal("coil still on after the write succeeded")
	}
	if other.Read() != gpio.High {
		t.Fatal("queued pulse did not start once the budget was free")
	}
}

// blockingSink blocks every call until release is closed.
type blockingSink struct{ release chan struct{} }

func (s blockingSink) LockChanged(int, bool) { <-s.release }
func (s blockingSink) DoorChanged(int, bool) { <-s.release }
func (s blockingSink) OpenFailed(int)        { <-s.release }
func (s blockingSink) DoorHeldOpen(int)      { <-s.release }
func (s blockingSink) DoorForced(int)        { <-s.release }

// TestSlowSinkDoesNotHoldACoil: a Sink stuck in its first report does not
// keep the coil energised past its pulse.
func TestSlowSinkDoesNotHoldACoil(t *testing.T) {
	clock := clockwork.NewFakeClockAt(epoch)
	pin := &gpiotest.Pin{}
	sink := blockingSink{release: make(chan struct{})}
	b, err := New(Config{Bins: []Bin{{ID: 1, Lock: pin}}, Clock: clock, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	if err := b.Unlock(1); err != nil {
		t.Fatal(err)
	}
	waitLevel(t, pin, gpio.High)
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // the pulse's timer
		t.Fatal(err)
	}
	clock.Advance(DefaultPulse)
	waitLevel(t, pin, gpio.Low)
	close(sink.release)
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// waitLevel polls pin until it reads l, with a generous deadline.
func waitLevel(t *testing.T, pin *gpiotest.Pin, l gpio.Level) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pin.Read() != l {
		if time.Now().After(deadline) {
			t.Fatalf("pin never went %s", l)
		}
		time.Sleep(time.Millisecond)
	}
}
