package firmware

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
)

// dirWith makes a firmware directory holding binaries of versions and
// the state s.
func dirWith(t *testing.T, s State, versions ...string) *Dir {
	t.Helper()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		os.WriteFile(d.Binary(v), []byte("#!/bin/false\n"), 0o755)
	}
	if err := d.WriteState(s); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		state    State
		bins     []string
		self     string
		exec     string // the version exec'd, "" for self
		trial    bool
		after    State // the state file afterwards (Rollback checked by version only)
		rollback string
	}{
		{"nothing here", State{}, nil, "1.0.0", "", false, State{}, ""},
		{"a committed newer version", State{Committed: "1.1.0"}, []string{"1.1.0"}, "1.0.0", "1.1.0", false, State{Committed: "1.1.0"}, ""},
		{"the installed binary is newer", State{Committed: "1.1.0"}, []string{"1.1.0"}, "1.2.0", "", false, State{Committed: "1.1.0"}, ""},
		{"a committed binary gone", State{Committed: "1.1.0"}, nil, "1.0.0", "", false, State{Committed: "1.1.0"}, ""},
		{"a trial's first start", State{Trial: "1.1.0"}, []string{"1.1.0"}, "1.0.0", "1.1.0", true, State{Trial: "1.1.0", Starts: 1}, ""},
		{"a trial's second start", State{Trial: "1.1.0", Starts: 1}, []string{"1.1.0"}, "1.0.0", "1.1.0", true, State{Trial: "1.1.0", Starts: 2}, ""},
		{"two strikes", State{Committed: "1.1.0", Trial: "1.2.0", Starts: 2}, []string{"1.1.0", "1.2.0"}, "1.0.0", "1.1.0", false, State{Committed: "1.1.0"}, "1.2.0"},
		{"two strikes, back to the installed binary", State{Trial: "1.2.0", Starts: 2, Failure: "not online"}, []string{"1.2.0"}, "1.0.0", "", false, State{}, "1.2.0"},
		{"a trial binary gone", State{Trial: "1.2.0"}, nil, "1.0.0", "", false, State{}, "1.2.0"},
		{"a trial not newer than the installed binary", State{Trial: "1.2.0"}, []string{"1.2.0"}, "1.2.0", "", false, State{}, "1.2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dirWith(t, tc.state, tc.bins...)
			p, err := d.Plan(tc.self)
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.exec != "" {
				want = d.Binary(tc.exec)
			}
			if p.Exec != want || p.Trial != tc.trial {
				t.Fatalf("Plan = %+v, want exec %q trial %t", p, want, tc.trial)
			}
			got, _ := d.ReadState()
			rb := got.Rollback
			got.Rollback = nil
			if got != tc.after {
				t.Fatalf("state %+v, want %+v", got, tc.after)
			}
			switch {
			case tc.rollback == "" && rb != nil:
				t.Fatalf("a rollback recorded: %+v", rb)
			case tc.rollback != "" && (rb == nil || rb.Version != tc.rollback || rb.Seq != 1 || !strings.HasPrefix(rb.Error, contract.CodeFirmwareTrialFailed+": ")):
				t.Fatalf("rollback %+v, want one of %s", rb, tc.rollback)
			case tc.rollback != "" && d.has(tc.rollback):
				t.Fatalf("the rolled-back binary is still there")
			}
			if tc.name == "two strikes, back to the installed binary" && !strings.Contains(rb.Error, "not online") {
				t.Fatalf("the rollback does not say why the trial failed: %q", rb.Error)
			}
		})
	}
}

// TestTrialLifecycle walks a directory through install, two starts,
// commit, and a second release whose trial is rolled back.
func TestTrialLifecycle(t *testing.T) {
	u := newUpdater(t, "1.0.0")
	d := u.dir
	install := func(v string) {
		m := manifestOf(v, []byte("binary "+v))
		os.WriteFile(d.partial(m), []byte("binary "+v), 0o600)
		if err := u.Install(m); err != nil {
			t.Fatal(err)
		}
	}
	install("1.1.0")
	if p, _ := d.Plan("1.0.0"); p.Version != "1.1.0" || !p.Trial {
		t.Fatalf("plan after install %+v", p)
	}
	trial := &Updater{dir: d, running: "1.1.0", installed: "1.0.0", handedOver: true}
	if !trial.OnTrial() {
		t.Fatal("the trial does not know it is on trial")
	}
	if f := trial.Status(); f.Committed != "1.0.0" || f.Trial == nil || *f.Trial != "1.1.0" {
		t.Fatalf("status on trial %+v", f)
	}
	if err := trial.Commit(); err != nil {
		t.Fatal(err)
	}
	if f := trial.Status(); f.Committed != "1.1.0" || f.Trial != nil {
		t.Fatalf("status after the commit %+v", f)
	}
	install("1.2.0")
	for range MaxTrialStarts {
		if p, _ := d.Plan("1.0.0"); p.Version != "1.2.0" || !p.Trial {
			t.Fatalf("plan of a trial start %+v", p)
		}
	}
	p, _ := d.Plan("1.0.0")
	if p.Version != "1.1.0" || p.Trial || p.RolledBack != "1.2.0" {
		t.Fatalf("plan after two strikes %+v", p)
	}
	s, _ := d.ReadState()
	if s.Committed != "1.1.0" || s.Trial != "" || s.Rollback == nil || s.Rollback.Version != "1.2.0" {
		t.Fatalf("state after the rollback %+v", s)
	}
	// The committed version commits again later: the one before stays as
	// previous, older ones go.
	install("1.3.0")
	next := &Updater{dir: d, running: "1.3.0", installed: "1.0.0", handedOver: true}
	if err := next.Commit(); err != nil {
		t.Fatal(err)
	}
	s, _ = d.ReadState()
	if s.Committed != "1.3.0" || s.Previous != "1.1.0" || !d.has("1.1.0") || !d.has("1.3.0") {
		t.Fatalf("state after the second commit %+v", s)
	}
}

func TestWaitHealthy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		healthy bool
		want    error
	}{
		{"online and acked", true, nil},
		{"never", false, ErrTrialDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			done := make(chan error, 1)
			go func() {
				done <- WaitHealthy(context.Background(), clock, time.Minute, time.Second, func() Health {
					return Health{Online: true, Acked: tc.healthy}
				})
			}()
			if !tc.healthy {
				clock.BlockUntilContext(context.Background(), 2)
				clock.Advance(time.Minute)
			}
			if err := <-done; !errors.Is(err, tc.want) {
				t.Fatalf("WaitHealthy: %v, want %v", err, tc.want)
			}
		})
	}
}
