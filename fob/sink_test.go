package fob

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// event is one Sink call.
type event struct {
	Kind   string // present, absent, fault, ok
	Bin    int
	Serial string
}

func present(bin int, serial string) event { return event{Kind: "present", Bin: bin, Serial: serial} }
func absent(bin int) event                 { return event{Kind: "absent", Bin: bin} }
func fault(bin int) event                  { return event{Kind: "fault", Bin: bin} }
func ok(bin int) event                     { return event{Kind: "ok", Bin: bin} }

// recorder is a Sink that keeps every call.
type recorder struct {
	mu      sync.Mutex
	events  []event
	errs    []error
	changed chan struct{} // closed and replaced on every call
}

var _ Sink = (*recorder)(nil)

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(e event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) FobPresent(bin int, serial string) { r.add(present(bin, serial), nil) }
func (r *recorder) FobAbsent(bin int)                 { r.add(absent(bin), nil) }
func (r *recorder) ReaderFault(bin int, err error)    { r.add(fault(bin), err) }
func (r *recorder) ReaderOK(bin int)                  { r.add(ok(bin), nil) }

func (r *recorder) got() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// wait waits until the sink has received exactly want.
func (r *recorder) wait(t testing.TB, want ...event) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := slices.Clone(r.events), r.changed
		r.mu.Unlock()
		if len(got) >= len(want) {
			if !slices.Equal(got, want) {
				t.Fatalf("sink got %+v, want %+v", got, want)
			}
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("sink got %+v, still waiting for %+v", got, want)
		}
	}
}

// expect checks that the sink has received exactly want by now.
func (r *recorder) expect(t testing.TB, want ...event) {
	t.Helper()
	if got := r.got(); !slices.Equal(got, want) {
		t.Fatalf("sink got %+v, want %+v", got, want)
	}
}

// waitStats polls a reader's Stats until cond holds.
func waitStats(t testing.TB, stats func() Stats, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: still waiting for %s", s, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runReader runs a reader's Run in the background; the returned function
// cancels it and checks that it returned nil.
func runReader(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e event) String() string { return fmt.Sprintf("%s(%d %s)", e.Kind, e.Bin, e.Serial) }
