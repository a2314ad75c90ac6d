package firmware

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"smartboxd/internal/atomicfile"
)

// File names inside the firmware directory, <data_dir>/firmware.
const (
	DirName   = "firmware"
	StateFile = "state.json"
	// BinaryPrefix starts the name of every firmware binary:
	// smartboxd-1.4.0.
	BinaryPrefix = "smartboxd-"
	// partialSuffix ends the name of a download in progress:
	// smartboxd-1.4.0-<first 16 hex digits of its sha256>.partial.
	partialSuffix = ".partial"
)

// MaxTrialStarts is how many times a trial is started before it is rolled
// back: a trial that exits, hangs or misses its deadline twice is not
// started a third time.
const MaxTrialStarts = 2

// ErrState is returned when the state file is not one this package wrote.
var ErrState = errors.New("firmware: corrupt state file")

// State is the firmware directory's state file: which binaries there are
// and which runs. It is written with internal/atomicfile (synced, renamed
// into place, the directory synced), so a crash leaves the old state or the
// new one.
type State struct {
	// Committed is the version of the committed binary here; "" when the
	// installed binary (the one systemd starts) is what the box runs.
	Committed string `json:"committed,omitempty"`
	// Previous is the committed version before Committed, kept on disk.
	Previous string `json:"previous,omitempty"`
	// Trial is the version on trial, "" when none.
	Trial string `json:"trial,omitempty"`
	// Starts counts the trial's starts, counted before each one.
	Starts int `json:"starts,omitempty"`
	// Failure is why the trial's last start failed, when it could say.
	Failure string `json:"failure,omitempty"`
	// Rollback is the last rollback, for the box to report once.
	Rollback *Rollback `json:"rollback,omitempty"`
}

// Rollback is one trial rolled back: Seq numbers the rollbacks of this
// directory, so the box reports each once.
type Rollback struct {
	Seq     uint64 `json:"seq"`
	Version string `json:"version"`
	Error   string `json:"error"`
}

// Dir is the firmware directory of a data directory.
type Dir struct{ path string }

// OpenDir returns the firmware directory of dataDir, making it (mode 0700)
// when missing.
func OpenDir(dataDir string) (*Dir, error) {
	p := filepath.Join(dataDir, DirName)
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	return &Dir{path: p}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Binary is the path of version v's binary.
func (d *Dir) Binary(v string) string { return filepath.Join(d.path, BinaryPrefix+v) }

// partial is the path m downloads to.
func (d *Dir) partial(m Manifest) string {
	return filepath.Join(d.path, BinaryPrefix+m.Version.String()+"-"+hex.EncodeToString(m.SHA256[:8])+partialSuffix)
}

// has reports whether version v's binary is here, a regular executable file.
func (d *Dir) has(v string) bool {
	fi, err := os.Stat(d.Binary(v))
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0
}

// ReadState reads the state file; a missing one is the zero State.
func (d *Dir) ReadState() (State, error) {
	raw, err := os.ReadFile(filepath.Join(d.path, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("firmware: %w", err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	for _, v := range []string{s.Committed, s.Previous, s.Trial} {
		if _, err := ParseVersion(v); v != "" && err != nil {
			return State{}, fmt.Errorf("%w: %v", ErrState, err)
		}
	}
	return s, nil
}

// WriteState replaces the state file durably.
func (d *Dir) WriteState(s State) error {
	raw, _ := json.Marshal(s) // strings and integers
	if err := atomicfile.WriteFile(filepath.Join(d.path, StateFile), raw, 0o600); err != nil {
		return fmt.Errorf("firmware: state: %w", err)
	}
	return nil
}

// install moves m's finished download into place as its binary, mode 0755,
// and makes it the trial.
func (d *Dir) install(m Manifest) error {
	v := m.Version.String()
	src := d.partial(m)
	if err := os.Chmod(src, 0o755); err != nil {
		return fmt.Errorf("firmware: install: %w", err)
	}
	if err := os.Rename(src, d.Binary(v)); err != nil {
		return fmt.Errorf("firmware: install: %w", err)
	}
	if err := syncDir(d.path); err != nil {
		return err
	}
	s, err := d.ReadState()
	if err != nil {
		return err
	}
	s.Trial, s.Starts, s.Failure = v, 0, ""
	return d.WriteState(s)
}

// commit makes the trial v the committed version and removes binaries that
// are neither committed nor previous.
func (d *Dir) commit(v string) error {
	s, err := d.ReadState()
	if err != nil {
		return err
	}
	if s.Trial != v {
		return fmt.Errorf("firmware: commit %s: %q is on trial", v, s.Trial)
	}
	if s.Committed != "" && s.Committed != v {
		s.Previous = s.Committed
	}
	s.Committed, s.Trial, s.Starts, s.Failure = v, "", 0, ""
	if err := d.WriteState(s); err != nil {
		return err
	}
	d.prune(s)
	return nil
}

// prune removes the binaries and downloads s does not name.
func (d *Dir) prune(s State) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, v := range []string{s.Committed, s.Previous, s.Trial} {
		if v != "" {
			keep[BinaryPrefix+v] = true
		}
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, BinaryPrefix) && !strings.HasSuffix(n, partialSuffix) && !keep[n] {
			os.Remove(filepath.Join(d.path, n))
		}
	}
}

// removePartials removes every download in progress but keep's.
func (d *Dir) removePartials(keep string) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(d.path, e.Name())
		if strings.HasSuffix(e.Name(), partialSuffix) && p != keep {
			os.Remove(p)
		}
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("firmware: sync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("firmware: sync directory: %w", err)
	}
	return nil
}
