package firmware

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
)

// Config is what New needs.
type Config struct {
	// DataDir is the daemon's data directory; the firmware lives in its
	// firmware/ subdirectory.
	DataDir string
	// ReleaseKeys may sign manifests; none refuses every update.
	ReleaseKeys []ed25519.PublicKey
	// Running is this binary's version.
	Running string
	// Installed is the version of the binary systemd starts, when the
	// running one was handed over to (Handover sets EnvInstalledVersion);
	// "" when the running binary is the installed one.
	Installed string
	// HandedOver says the running binary was started by Handover.
	HandedOver bool
	// Client fetches downloads; default an http.Client of its own.
	Client *http.Client
	Clock  clockwork.Clock
	Logger *slog.Logger
}

// Updater is the box's side of firmware updates: it checks an update,
// downloads, verifies and installs it, and commits a trial. The device
// calls it from its decision loop, except Download, which runs on a
// goroutine of its own. Its methods are safe for concurrent use.
type Updater struct {
	dir        *Dir
	keys       []ed25519.PublicKey
	running    string
	installed  string
	handedOver bool
	client     *http.Client
	clock      clockwork.Clock
	log        *slog.Logger

	mu sync.Mutex // guards the state file's read-modify-writes
}

// New opens the firmware directory of cfg.DataDir, making it when missing.
func New(cfg Config) (*Updater, error) {
	d, err := OpenDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Updater{dir: d, keys: cfg.ReleaseKeys, running: cfg.Running, installed: cfg.Installed,
		handedOver: cfg.HandedOver, client: cfg.Client, clock: cfg.Clock, log: cfg.Logger}, nil
}

// Dir is the firmware directory.
func (u *Updater) Dir() *Dir { return u.dir }

// Running is the running binary's version.
func (u *Updater) Running() string { return u.running }

// State reads the state file.
func (u *Updater) State() (State, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dir.ReadState()
}

// OnTrial reports whether the running binary is the version on trial.
func (u *Updater) OnTrial() bool {
	s, err := u.State()
	return err == nil && u.handedOver && s.Trial != "" && s.Trial == u.running
}

// Status is the firmware part of the retained status: the committed
// version and the one on trial.
func (u *Updater) Status() contract.Firmware {
	s, _ := u.State()
	f := contract.Firmware{Committed: s.Committed}
	if s.Trial != "" && s.Trial == u.running && u.handedOver {
		t := s.Trial
		f.Trial = &t
	}
	inst := u.running
	if u.handedOver {
		inst = u.installed
	}
	// The installed binary runs when nothing here is committed, or when it
	// is newer than what is (Handover picks the same).
	if f.Committed == "" || Newer(inst, f.Committed) {
		f.Committed = inst
	}
	return f
}

// Check reads an update: a manifest by a release key, a URL the box
// fetches from, a version newer than the running one and not below floor,
// the highest version the box ever committed. It does no I/O.
func (u *Updater) Check(manifest, rawURL, floor string) (Manifest, error) {
	m, err := ParseManifest([]byte(manifest), u.keys)
	if err != nil {
		return Manifest{}, err
	}
	if _, err := CheckURL(rawURL); err != nil {
		return Manifest{}, err
	}
	v := m.Version.String()
	switch {
	case !Newer(v, u.running):
		return Manifest{}, contract.Errorf(contract.CodeFirmwareDowngrade, "%s is not newer than the running %s", v, u.running)
	case Newer(floor, v):
		return Manifest{}, contract.Errorf(contract.CodeFirmwareDowngrade, "%s is below %s, the highest version this box committed", v, floor)
	}
	return m, nil
}

// Download fetches m from rawURL into the firmware directory, resuming a
// download a restart cut, and verifies its size and SHA-256. It returns
// ctx's error when ctx ends first (the partial file stays, to resume), a
// firmware.hash_mismatch or firmware.download_failed *contract.Error when
// it fails (a mismatching file is removed).
func (u *Updater) Download(ctx context.Context, m Manifest, rawURL string) error {
	src, err := CheckURL(rawURL)
	if err != nil {
		return err
	}
	return u.fetch(ctx, m, src)
}

// Install moves m's verified download into place and makes it the trial
// version: the next start of the installed binary runs it.
func (u *Updater) Install(m Manifest) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.dir.install(m); err != nil {
		return downloadFailed("install: %v", err)
	}
	return nil
}

// Discard removes m's download.
func (u *Updater) Discard(m Manifest) { os.Remove(u.dir.partial(m)) }

// Installed reports whether version v is installed: on trial, committed,
// or the running binary.
func (u *Updater) Installed(v string) bool {
	s, err := u.State()
	return v == u.running || (err == nil && (s.Trial == v || s.Committed == v))
}

// Commit makes the running trial the committed version and removes the
// binaries no longer needed (the previous committed version stays).
func (u *Updater) Commit() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dir.commit(u.running)
}

// NoteFailure records why the running trial's start failed, for the
// rollback to report.
func (u *Updater) NoteFailure(reason string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := u.dir.ReadState()
	if err != nil {
		return err
	}
	if s.Trial != u.running {
		return fmt.Errorf("firmware: %s is not on trial", u.running)
	}
	s.Failure = reason
	return u.dir.WriteState(s)
}

// ReleaseKeys are the keys manifests are verified with.
func (u *Updater) ReleaseKeys() []ed25519.PublicKey { return u.keys }
