package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/store"
)

// The data every benchmark works on: a box with n access codes (a third of
// them time-bound, in the future) over n/100 keys, and an outbox of queued
// events of the kinds a box writes.

const (
	benchBoxID = "bench-box"
	benchBins  = 4
	// cycleKey is a key without a fob whose two access codes (the first two
	// of the set) drop it off and pick it up again: the right codes.
	cycleKey = "bench-cycle-key"
)

// codeOf is the i-th code: an 8-digit number, distinct for every i below
// 10^8 (7919 is prime to 10^8). Codes 0..n-1 are stored; n and above are
// wrong codes.
func codeOf(i int) string {
	return fmt.Sprintf("%08d", (uint64(i)*7919+12345678)%100_000_000)
}

// uuidOf is a stable UUID-shaped id for (kind, i), so record keys are as
// long as the cloud's and do not sort in creation order.
func uuidOf(kind string, i int) string {
	h := fnv.New128a()
	h.Write([]byte(kind))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h.Write(b[:])
	s := h.Sum(nil)
	return fmt.Sprintf("%x-%x-4%x-a%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])[:36]
}

type snapKey struct {
	KeyID        string `json:"key_id"`
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
}

type snapCode struct {
	AccessCodeID string     `json:"access_code_id"`
	Code         string     `json:"code"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	StartsAt     *time.Time `json:"starts_at,omitempty"`
	EndsAt       *time.Time `json:"ends_at,omitempty"`
	KeyID        string     `json:"key_id"`
	Action       string     `json:"action"`
}

// snapshotData is the data of a sync.snapshot with n access codes, its
// time-bound windows at least 30 days after base.
func snapshotData(n int, base time.Time, version string) ([]byte, error) {
	nKeys := max(1, n/100)
	keys := make([]snapKey, 0, nKeys+1)
	keys = append(keys, snapKey{KeyID: cycleKey, Name: "Bench cycle key"})
	for k := range nKeys {
		keys = append(keys, snapKey{KeyID: uuidOf("key", k), Name: fmt.Sprintf("Unit %d front door", k),
			Description: "Main entrance, two keys on a ring", SerialNumber: fmt.Sprintf("%010X", int64(0xA000000000)+int64(k))})
	}
	codes := make([]snapCode, 0, n)
	for i := range n {
		c := snapCode{AccessCodeID: uuidOf("code", i), Code: codeOf(i), Name: fmt.Sprintf("Guest %d", i),
			Type: contract.TypeOngoing, KeyID: uuidOf("key", i%nKeys), Action: contract.ActionPickup}
		switch {
		case i == 0:
			c.KeyID, c.Action = cycleKey, contract.ActionDropoff
		case i == 1:
			c.KeyID = cycleKey
		case i%10 == 9:
			c.Action = contract.ActionDropoff
		}
		if i > 1 && i%3 == 2 {
			start := base.Add(30*24*time.Hour + time.Duration(i%5000)*time.Minute).UTC().Truncate(time.Second)
			end := start.Add(7 * 24 * time.Hour)
			c.Type, c.StartsAt, c.EndsAt = contract.TypeTimeBound, &start, &end
		}
		codes = append(codes, c)
	}
	return json.Marshal(map[string]any{"version": version, "keys": keys, "access_codes": codes})
}

// eventData returns the i-th queued event's type and data, in the mix a box
// writes: keypad rejections, openings, pickups, drop-offs, code statuses.
func eventData(i int, at time.Time) (string, any) {
	bin := 1 + i%benchBins
	key := uuidOf("key", i%997)
	switch i % 5 {
	case 0:
		return "code.rejected", map[string]string{"reason": "code.unknown"}
	case 1:
		return "bin.unlocked", map[string]any{"bin": bin, "reason": "pickup"}
	case 2:
		return "key.picked_up", map[string]any{"key_id": key, "bin": bin, "access_code_id": uuidOf("code", i), "via": "access_code"}
	case 3:
		return "key.dropped_off", map[string]any{"key_id": key, "bin": bin, "fob": fmt.Sprintf("%010X", int64(0xA000000000)+int64(i)%997)}
	}
	t := at.UTC().Truncate(time.Second)
	return "access_code.status", contract.AccessCodeView{AccessCodeID: uuidOf("code", i), Name: fmt.Sprintf("Guest %d", i),
		Type: contract.TypeOngoing, Status: contract.StatusSet, CreatedAt: t, KeyID: key, Action: contract.ActionPickup,
		Errors: []contract.NoticeView{}, Warnings: []contract.NoticeView{}}
}

// appendEvents queues n events, a thousand per transaction.
func appendEvents(db *store.DB, n int, at time.Time) error {
	const batch = 1000
	for done := 0; done < n; {
		err := db.Update(func(tx *store.Tx) error {
			for i := done; i < min(done+batch, n); i++ {
				typ, data := eventData(i, at)
				if _, err := tx.Append(typ, at, data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queue events: %w", err)
		}
		done = min(done+batch, n)
	}
	return nil
}

// ---- a box on a store, for the in-process benchmarks ----

// stampFeedback records when the box told the keypad how an entry went.
type stampFeedback struct {
	mu       sync.Mutex
	at       time.Time
	accepted bool
	n        int
}

func (f *stampFeedback) Accepted() { f.stamp(true) }
func (f *stampFeedback) Rejected() { f.stamp(false) }

func (f *stampFeedback) stamp(ok bool) {
	now := time.Now()
	f.mu.Lock()
	f.at, f.accepted = now, ok
	f.n++
	f.mu.Unlock()
}

func (f *stampFeedback) last() (at time.Time, accepted bool, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at, f.accepted, f.n
}

// countLocker counts lock pulses.
type countLocker struct {
	mu sync.Mutex
	n  int
}

func (l *countLocker) Unlock(int) error {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return nil
}

var (
	_ device.Feedback = (*stampFeedback)(nil)
	_ device.Locker   = (*countLocker)(nil)
)

// stagingStore is the store as the benchmark box sees it. It notes when
// each of the box's write transactions begins: a keypad decision is taken
// on a read transaction before it, and the write records it.
type stagingStore struct {
	*store.DB
	mu     sync.Mutex
	staged time.Time
}

var _ device.Store = (*stagingStore)(nil)

func (s *stagingStore) Update(fn func(tx *store.Tx) error) error {
	now := time.Now()
	s.mu.Lock()
	s.staged = now
	s.mu.Unlock()
	return s.DB.Update(fn)
}

func (s *stagingStore) lastStaged() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staged
}

// benchBox is a running device.Box on a store.
type benchBox struct {
	box    *device.Box
	db     *store.DB
	st     *stagingStore
	fb     *stampFeedback
	locks  *countLocker
	cancel context.CancelFunc
	done   chan error
}

// boxConfig is the box the benchmarks run: four bins without readers or
// door sensors (a drop-off completes when its bin's timeout passes, a
// pickup at once), no lockout so wrong codes can be entered in a row, and
// no clock trust needed. The lockout's window is 1 ns: every wrong entry
// is still counted and its record written, but the record holds what a
// real box's does (at most lockout_after − 1 times, 4 by default) instead
// of growing by a time with each of the run's thousands of wrong entries.
func boxConfig(db *store.DB, clock clockwork.Clock) device.Config {
	cfg := device.Config{
		BoxID: benchBoxID, Version: "bench", BootID: "bench",
		DropoffTimeout: time.Second,
		LockoutAfter:   1 << 30,
		LockoutWindow:  time.Nanosecond,
		Store:          db,
		Clock:          clock,
	}
	for id := 1; id <= benchBins; id++ {
		cfg.Bins = append(cfg.Bins, device.BinSpec{ID: id})
	}
	return cfg
}

// startBox runs a box on db until stop.
func startBox(ctx context.Context, db *store.DB, clock clockwork.Clock) (*benchBox, error) {
	b := &benchBox{db: db, st: &stagingStore{DB: db}, fb: &stampFeedback{}, locks: &countLocker{}, done: make(chan error, 1)}
	cfg := boxConfig(db, clock)
	cfg.Store, cfg.Feedback, cfg.Locks = b.st, b.fb, b.locks
	box, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	b.box = box
	runCtx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { b.done <- box.Run(runCtx) }()
	if err := b.flush(ctx); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *benchBox) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.box.Flush(ctx); err != nil {
		select {
		case err := <-b.done:
			return fmt.Errorf("box stopped: %w", err)
		default:
		}
		return fmt.Errorf("box flush: %w", err)
	}
	return nil
}

// stop ends the box's loop; it does not close the store.
func (b *benchBox) stop() error {
	b.cancel()
	return <-b.done
}

// execute runs a command and fails unless the box says ok.
func (b *benchBox) execute(ctx context.Context, id, typ string, data []byte) (contract.Reply, error) {
	r, err := b.box.Execute(ctx, contract.Command{ID: id, Type: typ, Data: data})
	if err != nil {
		return r, err
	}
	if !r.OK {
		return r, fmt.Errorf("%s: %s: %s", typ, r.Error.Code, r.Error.Message)
	}
	return r, nil
}

// prepareDataDir makes a data directory (database and secret) holding the
// snapshot's codes and n queued events, as the daemon finds it after a
// long time offline.
func prepareDataDir(ctx context.Context, dir string, snapshot []byte, events int) error {
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID, NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := startBox(ctx, db, clockwork.NewRealClock())
	if err != nil {
		return err
	}
	_, err = b.execute(ctx, "prepare-snapshot", "sync.snapshot", snapshot)
	if serr := b.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if err := appendEvents(db, events, time.Now()); err != nil {
		return err
	}
	return db.Bolt().Sync()
}

// copyDataDir copies a prepared data directory's files, synced.
func copyDataDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, name := range []string{store.DBFile, store.SecretFile} {
		if err := copyFile(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	// On disk before the daemon starts: its first commit's fsync must not
	// flush the copy.
	return out.Sync()
}
