//go:build linux && (amd64 || arm64)

package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smartboxd/internal/faultfs"
	"smartboxd/store"
)

// The power-cut tests run the daemon with its data dir on a faultfs mount
// served by this test process. The test itself never opens the database
// through the mount (a page fault of its own on the mount's mmap would wait
// on the server it runs): it checks the backing directory after a cut, or
// runs the daemon's own db check as a child.

func powerCutRounds(t *testing.T) int {
	if s := os.Getenv("SMARTBOX_POWERCUT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SMARTBOX_POWERCUT_ROUNDS=%q: want a positive number", s)
		}
		return n
	}
	return 20
}

// faultMount serves a fresh backing directory at a fresh mount point; the
// box's data dir is data under either. It skips without root or /dev/fuse.
type faultMount struct {
	t       *testing.T
	fs      *faultfs.FS
	backing string
	mnt     string
	opts    faultfs.Options
}

func newFaultMount(t *testing.T, opts faultfs.Options) *faultMount {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting the fault-injecting file system needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("skipped: no /dev/fuse: %v", err)
	}
	dir := t.TempDir()
	m := &faultMount{t: t, backing: filepath.Join(dir, "backing"), mnt: filepath.Join(dir, "mnt"), opts: opts}
	for _, d := range []string{m.backing, m.mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := faultfs.Mount(m.backing, m.mnt, opts)
	if err != nil {
		t.Skipf("skipped: cannot mount faultfs: %v", err)
	}
	m.fs = f
	// Cleanups run last-in first-out: registered now, this runs after the
	// daemons started later are killed.
	t.Cleanup(func() {
		if err := m.fs.Unmount(); err != nil && !errors.Is(err, faultfs.ErrCut) {
			t.Errorf("unmount: %v", err)
		}
	})
	return m
}

// cut cuts the power (the daemon must be dead) and returns what it threw
// away; the mount stays down until remount.
func (m *faultMount) cut(tear bool) faultfs.CutStats {
	m.t.Helper()
	if err := m.fs.CutPower(tear); err != nil {
		m.t.Fatalf("cut power: %v", err)
	}
	return m.fs.Stats().Cut
}

func (m *faultMount) remount() {
	m.t.Helper()
	f, err := m.fs.Remount()
	if err != nil {
		m.t.Fatalf("remount: %v", err)
	}
	m.fs = f
}

// durableData is the box's data dir in the backing directory.
func (m *faultMount) durableData() string { return filepath.Join(m.backing, "data") }

// powerCutStats add up the cuts of a run.
type powerCutStats struct {
	cuts, torn, stalled                       int
	writesDropped, pagesTorn, entriesReverted int
	bytesDropped                              int64
	unappliedAcks                             int // cuts after which the box held less acked than the cloud had sent
}

// TestPowerCut is TestCrash with the power cut after every kill: the kill
// lands at a random moment of the random workload, then every write the
// daemon had not made durable is thrown away — on a random half of the
// rounds tearing its last writes at 4 KiB pages — and the box restarts on
// what a rebooted machine would find. SMARTBOX_POWERCUT_ROUNDS rounds
// (default 20). On top of TestCrash's checks after every round: the
// secret is the one first made; the outbox holds every event published
// and not acked, with its id, and nothing at or below the ack it keeps,
// which is no lower than what the box had shown acked and no higher than
// the cloud acked; and the new boot publishes nothing the box had acked.
func TestPowerCut(t *testing.T) {
	rounds := powerCutRounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds", seed, rounds)
	m := newFaultMount(t, faultfs.Options{Seed: seed, TearWrites: 4})
	dir := t.TempDir()
	// Lockouts come and go: three wrong entries lock the keypad for a
	// second, and the lockout survives restarts.
	r := newCrashRig(t, seed, dir, m.mnt, func(cfg string) string {
		return strings.Replace(cfg, "lockout_after: 100", "lockout_after: 3", 1)
	})
	r.dbPath = filepath.Join(m.durableData(), store.DBFile)
	rng := rand.New(rand.NewPCG(seed, 0xc07))
	var st powerCutStats
	var secret []byte
	var durableAcked uint64
	r.cut = func() {
		tear := rng.IntN(2) == 0
		cs := m.cut(tear)
		st.cuts++
		if tear {
			st.torn++
		}
		st.writesDropped += cs.WritesDropped
		st.bytesDropped += cs.BytesDropped
		st.pagesTorn += cs.PagesTorn
		st.entriesReverted += cs.EntriesReverted
		t.Logf("cut %d (tear %v): %+v", st.cuts, tear, cs)
	}
	began := time.Now()
	r.start()
	for round := 1; round <= rounds; round++ {
		r.settle()
		// A stalled card on half the rounds: the kill lands inside
		// an fsync, with the pages it was to make durable, more often.
		stall := time.Duration(0)
		if rng.IntN(2) == 0 {
			stall = time.Duration(5+rng.IntN(46)) * time.Millisecond
			st.stalled++
		}
		m.fs.SetFsyncDelay(stall)
		r.work(time.Duration(200+r.rng.IntN(2300)) * time.Millisecond)
		// Most kills land while a decision is being written: an entry,
		// then the kill within the time its commit takes.
		if rng.IntN(4) > 0 {
			r.keypad.Master.Write([]byte(r.newCode() + "#"))
			r.stats.inputs++
			time.Sleep(time.Duration(rng.Int64N(int64(2*stall + 15*time.Millisecond))))
		}
		r.crash() // kill -9, cut, bbolt check of the durable file
		secret = checkSecret(t, m, r.cfgPath, secret)
		durableAcked = checkDurableOutbox(t, r, m)
		if durableAcked < r.acked {
			st.unappliedAcks++
		}
		m.remount()
		r.start()
		for _, e := range r.events.all[r.restartIdx:] {
			if e.Seq <= durableAcked {
				t.Fatalf("after the cut seq %d (%s) came again, yet the box holds everything up to %d acked", e.Seq, e.Type, durableAcked)
			}
		}
	}
	r.settle()
	r.d.stop()
	noRace(t, r.d)
	r.offlineChecks()
	s := r.stats
	types := map[string]int{}
	for _, e := range r.events.ordered() {
		types[e.Type]++
	}
	t.Logf("events by type: %v", types)
	t.Logf("%d power cuts (%d torn, %d on a stalled card) in %v: %d events (%d republished copies, 0 lost), %d keypad entries and fob moves, %d commands",
		st.cuts, st.torn, st.stalled, time.Since(began).Round(time.Millisecond), s.events, s.republished, s.inputs, s.commands)
	t.Logf("the cuts dropped %d unsynced writes (%d bytes), kept %d torn pages, reverted %d directory entries; after %d cuts the box held an ack in flight unapplied (those events came again)",
		st.writesDropped, st.bytesDropped, st.pagesTorn, st.entriesReverted, st.unappliedAcks)
}

// checkSecret holds the durable secret against the one first seen. A
// secret gone or changed beside a database must make the box refuse to
// start, saying so — and it is a loss all the same.
func checkSecret(t *testing.T, m *faultMount, cfgPath string, first []byte) []byte {
	t.Helper()
	p := filepath.Join(m.durableData(), store.SecretFile)
	got, err := os.ReadFile(p)
	if err == nil && len(got) == 32 && (first == nil || bytes.Equal(got, first)) {
		return got
	}
	if first == nil && errors.Is(err, os.ErrNotExist) {
		if _, derr := os.Stat(filepath.Join(m.durableData(), store.DBFile)); errors.Is(derr, os.ErrNotExist) {
			return nil // nothing made durable yet: the box starts afresh
		}
	}
	m.remount()
	d := startDaemon(t, cfgPath)
	code := d.waitExit()
	t.Fatalf("the cut left the secret %d bytes (%v), first %d bytes; the daemon exited %d:\n%s", len(got), err, len(first), code, d.out.String())
	return nil
}

// checkDurableOutbox opens the durable database (in the backing directory,
// with the mount down) and checks its outbox against what the cloud saw.
// It returns the ack the box kept.
func checkDurableOutbox(t *testing.T, r *crashRig, m *faultMount) uint64 {
	t.Helper()
	data := m.durableData()
	if _, err := os.Stat(filepath.Join(data, store.DBFile)); err != nil {
		if r.events.maxSeq() > 0 {
			t.Fatalf("after the cut the database is gone (%v), yet the cloud saw %d events", err, r.events.maxSeq())
		}
		return 0
	}
	db, err := store.Open(data, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the durable database: %v", err)
	}
	defer db.Close()
	ob, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.Pending(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case ob.Acked > r.acked:
		t.Fatalf("after the cut the box holds seq %d acked; the cloud acked %d", ob.Acked, r.acked)
	case ob.Acked < r.confirmed:
		t.Fatalf("after the cut the box holds seq %d acked; it had shown everything up to %d acked", ob.Acked, r.confirmed)
	case ob.LastSeq < r.maxAtKill:
		t.Fatalf("after the cut the last seq written is %d; the cloud saw %d", ob.LastSeq, r.maxAtKill)
	case len(recs) != ob.Depth || uint64(len(recs)) != ob.LastSeq-ob.Acked:
		t.Fatalf("after the cut the outbox holds %d events, counts %d, and spans %d..%d", len(recs), ob.Depth, ob.Acked+1, ob.LastSeq)
	}
	for i, rec := range recs {
		if want := ob.Acked + 1 + uint64(i); rec.Seq != want {
			t.Fatalf("after the cut the outbox holds seq %d where %d belongs (acked %d)", rec.Seq, want, ob.Acked)
		}
		e, seen := r.events.bySeq[rec.Seq]
		if seen && !bytes.Contains(rec.Payload, []byte(`"id":"`+e.ID+`"`)) {
			t.Fatalf("after the cut seq %d is %s, the cloud saw it as %s id %s", rec.Seq, rec.Payload, e.Type, e.ID)
		}
	}
	return ob.Acked
}
