package device

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/store"
)

// fakeLocks records the bins the box pulsed.
type fakeLocks struct {
	mu       sync.Mutex
	unlocked []int
}

func (f *fakeLocks) Unlock(bin int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlocked = append(f.unlocked, bin)
	return nil
}

func (f *fakeLocks) pulses() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unlocked)
}

// feedback counts accepted and rejected entries.
type feedback struct{ ok, bad atomic.Int32 }

func (f *feedback) Accepted() { f.ok.Add(1) }
func (f *feedback) Rejected() { f.bad.Add(1) }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// harness is a box on a real bbolt file in a temp dir with a fake clock.
type harness struct {
	t       testing.TB
	dir     string
	clock   *clockwork.FakeClock
	db      *store.DB
	box     *Box
	locks   *fakeLocks
	fb      *feedback
	synced  atomic.Bool
	cancel  context.CancelFunc
	done    chan error
	cmdN    int
	tweak   func(*Config)
	noSync  bool // open the store without fsync (tests of many commands)
	replies int  // the store's bound on kept replies; 0: its default
}

func newHarness(t testing.TB, tweak ...func(*Config)) *harness {
	t.Helper()
	return newHarnessAt(t, t0, tweak...)
}

// newHarnessAt is newHarness with the fake clock starting at start.
func newHarnessAt(t testing.TB, start time.Time, tweak ...func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, clockwork.NewFakeClockAt(start), tweak...)
}

func newHarnessClock() *clockwork.FakeClock { return clockwork.NewFakeClockAt(t0) }

// newHarnessOn is newHarness on a given clock, shared with parts the test
// builds around the box.
func newHarnessOn(t testing.TB, clock *clockwork.FakeClock, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: clock}
	h.synced.Store(true)
	h.tweak = func(c *Config) {
		for _, f := range tweak {
			f(c)
		}
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) config() Config {
	cfg := Config{
		BoxID: "box-test", Version: "test", BootID: "boot",
		Bins: []BinSpec{
			{ID: 1, Reader: "/dev/r1"}, {ID: 2, Reader: "/dev/r2"}, {ID: 3, Reader: "/dev/r3"},
		},
		FobAbsent:       600 * time.Millisecond,
		DropoffTimeout:  60 * time.Second,
		InventorySettle: 3 * time.Second,
		LateAfter:       time.Minute,
		LockoutAfter:    5,
		LockoutBase:     30 * time.Second,
		LockoutMax:      900 * time.Second,
		RequireSync:     true,
		Synced:          h.synced.Load,
		Clock:           h.clock,
	}
	h.tweak(&cfg)
	return cfg
}

func (h *harness) start() {
	h.t.Helper()
	db, err := store.Open(h.dir, store.Options{BoxID: "box-test", NoSync: h.noSync, Replies: h.replies})
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.db = db
	h.locks = &fakeLocks{}
	h.fb = &feedback{}
	cfg := h.config()
	cfg.Store, cfg.Locks, cfg.Feedback = db, h.locks, h.fb
	box, err := New(cfg)
	if err != nil {
		h.t.Fatalf("new box: %v", err)
	}
	h.box = box
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- box.Run(ctx) }()
	h.flush()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("run: %v", err)
	}
	h.cancel = nil
	h.db.Close()
}

// restart stops the loop, closes the database and starts again on it.
func (h *harness) restart() {
	h.stop()
	h.start()
}

// flush waits until the loop has handled everything due. The bound only
// catches a wedged loop: under emulation on a loaded machine a batch of
// scheduled transitions, each committed with its fsync, takes seconds.
func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.box.Flush(ctx); err != nil {
		h.t.Fatalf("flush: %v", err)
	}
}

// advance moves the fake clock and lets the loop handle what fell due.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.flush()
}

func (h *harness) enter(code string) {
	h.box.KeypadEntry(code)
	h.flush()
}

func (h *harness) fob(bin int, serial string) { h.box.FobPresent(bin, serial); h.flush() }
func (h *harness) nofob(bin int)              { h.box.FobAbsent(bin); h.flush() }

// exec runs a command with a fresh id.
func (h *harness) exec(typ string, data any) contract.Reply {
	h.t.Helper()
	h.cmdN++
	return h.execID(fmt.Sprintf("c%d", h.cmdN), typ, data)
}

func (h *harness) execID(id, typ string, data any) contract.Reply {
	h.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := h.box.Execute(context.Background(), contract.Command{ID: id, Type: typ, Data: raw})
	if err != nil {
		h.t.Fatalf("execute %s: %v", typ, err)
	}
	return r
}

// mustOK runs a command that must succeed and returns its result.
func (h *harness) mustOK(typ string, data any) map[string]any {
	h.t.Helper()
	r := h.exec(typ, data)
	if !r.OK {
		h.t.Fatalf("%s: %+v", typ, r.Error)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Result, &m); err != nil {
		h.t.Fatalf("%s result: %v", typ, err)
	}
	return m
}

// mustFail runs a command that must fail with code.
func (h *harness) mustFail(code, typ string, data any) {
	h.t.Helper()
	r := h.exec(typ, data)
	if r.OK || r.Error == nil || r.Error.Code != code {
		h.t.Fatalf("%s: want error %s, got %+v", typ, code, r)
	}
}

// events returns every event not yet acked, in seq order.
func (h *harness) events() []contract.Event {
	h.t.Helper()
	recs, err := h.db.Pending(0, 1<<30)
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]contract.Event, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Payload, &out[i]); err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

// eventsOf returns the data of every event of type typ.
func (h *harness) eventsOf(typ string) []map[string]any {
	var out []map[string]any
	for _, ev := range h.events() {
		if ev.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				h.t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// last returns the data of the last event of type typ, failing if none.
func (h *harness) last(typ string) map[string]any {
	h.t.Helper()
	evs := h.eventsOf(typ)
	if len(evs) == 0 {
		h.t.Fatalf("no %s event; have %v", typ, h.types())
	}
	return evs[len(evs)-1]
}

func (h *harness) types() []string {
	var out []string
	for _, ev := range h.events() {
		out = append(out, ev.Type)
	}
	return out
}

// typesSince returns the event types after seq n.
func (h *harness) typesSince(n int) []string {
	return h.types()[n:]
}

func (h *harness) count() int { return len(h.events()) }

func (h *harness) state() contract.State {
	h.t.Helper()
	s, err := h.box.State()
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) binState(id int) contract.BinState {
	h.t.Helper()
	for _, b := range h.state().Bins {
		if b.ID == id {
			return b
		}
	}
	h.t.Fatalf("no bin %d", id)
	return contract.BinState{}
}

func (h *harness) key(id string) *store.Key {
	h.t.Helper()
	var k *store.Key
	if err := h.db.View(func(tx *store.Tx) (err error) { k, err = tx.Key(id); return }); err != nil {
		h.t.Fatal(err)
	}
	return k
}

// checkIn puts key id (fob serial) into a bin through a real drop-off and
// returns the bin.
func (h *harness) checkIn(id, serial string) int {
	h.t.Helper()
	code := fmt.Sprintf("9%07d", len(id)*1000+int(id[len(id)-1]))
	acID := "drop-" + id
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": acID, "code": code, "name": "drop", "type": "ongoing", "key_id": id, "action": "dropoff"})
	h.enter(code)
	bin := int(h.last("bin.unlocked")["bin"].(float64))
	if serial != "" {
		h.fob(bin, serial)
	} else {
		h.advance(61 * time.Second)
	}
	h.mustOK("access_code.delete", map[string]any{"access_code_id": acID})
	if k := h.key(id); k == nil || k.Bin != bin {
		h.t.Fatalf("check-in of %s into bin %d failed: %+v; events %v", id, bin, k, h.types())
	}
	return bin
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
