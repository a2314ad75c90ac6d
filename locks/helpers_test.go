package locks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

var epoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// change is one level change of a lock output, at fake time.
type change struct {
	bin int
	on  bool
	at  time.Time
}

// recorder watches lock outputs and records every level change with the
// fake time it happened at, in the order the changes happened.
type recorder struct {
	clock  clockwork.Clock
	active gpio.Level

	mu      sync.Mutex
	level   map[int]gpio.Level
	changes []change
	pulses  map[int]int // pulses started, per bin
}

func newRecorder(clock clockwork.Clock, active gpio.Level) *recorder {
	return &recorder{clock: clock, active: active, level: map[int]gpio.Level{}, pulses: map[int]int{}}
}

// pin returns an instrumented lock output for bin, starting inactive.
func (r *recorder) pin(bin int) *recPin {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.level[bin] = !r.active
	return &recPin{
		Pin: &gpiotest.Pin{N: fmt.Sprintf("LOCK%d", bin), Num: bin, L: !r.active},
		bin: bin,
		rec: r,
	}
}

func (r *recorder) out(bin int, l gpio.Level) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.level[bin] == l {
		return
	}
	r.level[bin] = l
	r.changes = append(r.changes, change{bin: bin, on: l == r.active, at: r.clock.Now()})
	if l == r.active {
		r.pulses[bin]++
	}
}

func (r *recorder) list() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.changes...)
}

// starts counts the pulses bin has started.
func (r *recorder) starts(bin int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulses[bin]
}

// recPin is a gpiotest.Pin whose Out is recorded.
type recPin struct {
	*gpiotest.Pin
	bin int
	rec *recorder
}

func (p *recPin) Out(l gpio.Level) error {
	p.rec.out(p.bin, l)
	return p.Pin.Out(l)
}

var _ gpio.PinOut = (*recPin)(nil)

// report is one Sink call.
type report struct {
	kind string // lock, door, failed, held, forced
	bin  int
	on   bool
	at   time.Time
}

func (r report) String() string {
	return fmt.Sprintf("%s(%d,%t)@%s", r.kind, r.bin, r.on, r.at.Format("15:04:05.000"))
}

// sinkRec is a Sink that records every call with the fake time.
type sinkRec struct {
	clock clockwork.Clock

	mu      sync.Mutex
	reports []report
}

var _ Sink = (*sinkRec)(nil)

func (s *sinkRec) add(kind string, bin int, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, report{kind: kind, bin: bin, on: on, at: s.clock.Now()})
}

func (s *sinkRec) LockChanged(bin int, on bool) { s.add("lock", bin, on) }
func (s *sinkRec) DoorChanged(bin int, on bool) { s.add("door", bin, on) }
func (s *sinkRec) OpenFailed(bin int)           { s.add("failed", bin, false) }
func (s *sinkRec) DoorHeldOpen(bin int)         { s.add("held", bin, false) }
func (s *sinkRec) DoorForced(bin int)           { s.add("forced", bin, false) }

func (s *sinkRec) list() []report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]report(nil), s.reports...)
}

// of returns the reports of kind for bin.
func (s *sinkRec) of(kind string, bin int) []report {
	var out []report
	for _, r := range s.list() {
		if r.kind == kind && r.bin == bin {
			out = append(out, r)
		}
	}
	return out
}

// harness runs a Bank on a fake clock.
type harness struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	bank   *Bank
	sink   *sinkRec
	cancel context.CancelFunc
	runErr chan error
}

// start builds a Bank from cfg on a fake clock (cfg.Clock, when set, must
// be a *clockwork.FakeClock), runs it and waits until its loop is up.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	clock, ok := cfg.Clock.(*clockwork.FakeClock)
	if !ok {
		clock = clockwork.NewFakeClockAt(epoch)
		cfg.Clock = clock
	}
	sink := &sinkRec{clock: clock}
	cfg.Sink = sink
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, clock: clock, bank: b, sink: sink, cancel: cancel, runErr: make(chan error, 1)}
	go func() { h.runErr <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	h.sync()
	return h
}

// sync waits until the loop has handled everything so far.
func (h *harness) sync() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.bank.sync(ctx); err != nil {
		h.t.Fatalf("sync: %v", err)
	}
}

// advance moves the fake clock by d and lets the loop catch up.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.sync()
}

// walk moves the fake clock by total in steps of by, letting the loop
// catch up after each.
func (h *harness) walk(total, by time.Duration) {
	h.t.Helper()
	for d := time.Duration(0); d < total; d += by {
		h.advance(min(by, total-d))
	}
}

// unlock calls Unlock and lets the loop take the request.
func (h *harness) unlock(bin int) {
	h.t.Helper()
	if err := h.bank.Unlock(bin); err != nil {
		h.t.Fatalf("Unlock(%d): %v", bin, err)
	}
	h.sync()
}

// wait returns what Run returned.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.runErr:
		h.runErr <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return")
		return nil
	}
}

// nextWake returns the loop's next scheduler deadline, zero when none.
func (b *Bank) nextWake() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wakeAt
}

// flakyPin fails its first fails writes of level bad.
type flakyPin struct {
	*gpiotest.Pin
	bad gpio.Level

	mu    sync.Mutex
	fails int
}

var errPin = errors.New("pin write failed")

func (p *flakyPin) Out(l gpio.Level) error {
	p.mu.Lock()
	if l == p.bad && p.fails > 0 {
		p.fails--
		p.mu.Unlock()
		return errPin
	}
	p.mu.Unlock()
	return p.Pin.Out(l)
}

var _ gpio.PinOut = (*flakyPin)(nil)
