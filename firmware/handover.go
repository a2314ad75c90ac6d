package firmware

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"smartboxd/contract"
)

// The environment of a binary the installed one handed over to.
const (
	// EnvHandover names the installed binary's path. A binary that finds
	// it set was handed over to and never hands over again.
	EnvHandover = "SMARTBOXD_HANDOVER"
	// EnvInstalledVersion is the installed binary's version.
	EnvInstalledVersion = "SMARTBOXD_INSTALLED_VERSION"
)

// Plan is what the installed binary does at start: run itself (Exec ""),
// or exec the firmware binary Exec, of Version, on trial or committed.
type Plan struct {
	Exec    string
	Version string
	Trial   bool
	// RolledBack is the trial this start rolled back, "" if none.
	RolledBack string
}

// Plan decides which binary runs, for the installed binary of version
// self, and writes what the decision changes before anything runs: a
// trial's start is counted, and a trial started MaxTrialStarts times
// without being committed is rolled back (its binary removed, the
// rollback recorded for the box to report). The newest of the trial, the
// committed version and self runs; a version that does not parse (a
// development build) is older than any.
func (d *Dir) Plan(self string) (Plan, error) {
	s, err := d.ReadState()
	if err != nil {
		return Plan{}, err
	}
	if s.Trial != "" {
		switch {
		case !d.has(s.Trial):
			err = d.rollback(&s, "the binary is missing")
		case s.Starts >= MaxTrialStarts:
			why := s.Failure
			if why == "" {
				why = fmt.Sprintf("it exited or stopped answering before it was committed, %d starts", s.Starts)
			}
			err = d.rollback(&s, why)
		case !Newer(s.Trial, self):
			// The installed binary was replaced by one as new: the trial
			// is moot.
			err = d.rollback(&s, fmt.Sprintf("the installed binary %s is not older", self))
		default:
			s.Starts++
			if err := d.WriteState(s); err != nil {
				return Plan{}, err
			}
			return Plan{Exec: d.Binary(s.Trial), Version: s.Trial, Trial: true}, nil
		}
		if err != nil {
			return Plan{}, err
		}
	}
	p := Plan{}
	if s.Rollback != nil {
		p.RolledBack = s.Rollback.Version
	}
	if s.Committed != "" && Newer(s.Committed, self) && d.has(s.Committed) {
		p.Exec, p.Version = d.Binary(s.Committed), s.Committed
	}
	return p, nil
}

// rollback ends s's trial for why, removes its binary and records it.
func (d *Dir) rollback(s *State, why string) error {
	seq := uint64(1)
	if s.Rollback != nil {
		seq = s.Rollback.Seq + 1
	}
	v := s.Trial
	s.Rollback = &Rollback{Seq: seq, Version: v, Error: contract.CodeFirmwareTrialFailed + ": " + why}
	s.Trial, s.Starts, s.Failure = "", 0, ""
	if err := d.WriteState(*s); err != nil {
		return err
	}
	os.Remove(d.Binary(v))
	return nil
}

// Handover runs at the very start of the installed binary, before
// anything opens: it plans (see Dir.Plan) and, when another binary is to
// run, execs it in this process's place, so systemd's pid and its notify
// socket stay. It returns nil when this binary is to run itself, and
// changes nothing when this binary was itself handed over to (EnvHandover
// is set), or when dataDir has no firmware directory. argv are the
// arguments after the program name.
func Handover(dataDir, self string, argv []string) error {
	if os.Getenv(EnvHandover) != "" {
		return nil
	}
	// Nothing is made here: a box with no firmware directory runs itself,
	// and a bad config must not half-start anything.
	d := &Dir{path: filepath.Join(dataDir, DirName)}
	if fi, err := os.Stat(d.path); err != nil || !fi.IsDir() {
		return nil
	}
	p, err := d.Plan(self)
	if err != nil || p.Exec == "" {
		return err
	}
	me, err := os.Executable()
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if same(me, p.Exec) {
		return nil
	}
	env := append(withoutHandover(os.Environ()), EnvHandover+"="+me, EnvInstalledVersion+"="+self)
	err = syscall.Exec(p.Exec, append([]string{p.Exec}, argv...), env)
	return fmt.Errorf("firmware: exec %s: %w", p.Exec, err)
}

// Relaunch execs the installed binary again in this process's place, with
// argv, so that it plans anew (after an install, or a trial that failed).
// It returns only on failure.
func Relaunch(argv []string) error {
	path := os.Getenv(EnvHandover)
	if path == "" {
		var err error
		if path, err = os.Executable(); err != nil {
			return fmt.Errorf("firmware: %w", err)
		}
	}
	err := syscall.Exec(path, append([]string{path}, argv...), withoutHandover(os.Environ()))
	return fmt.Errorf("firmware: exec %s: %w", path, err)
}

func withoutHandover(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, e := range env {
		if !strings.HasPrefix(e, EnvHandover+"=") && !strings.HasPrefix(e, EnvInstalledVersion+"=") {
			out = append(out, e)
		}
	}
	return out
}

// same reports whether two paths name one file.
func same(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
