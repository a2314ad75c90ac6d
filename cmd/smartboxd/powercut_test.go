//go:build linux && (amd64 || arm64)

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"smartboxd/internal/faultfs"
	"smartboxd/internal/mqtttest"
	"smartboxd/store"
)

// The power-cut tests run the daemon with its data dir on a faultfs mount
// served by this test process. The test itself never opens the database
// through the mount (a page fault of its own on the mount's mmap would wait
// on the server it runs): it checks the backing directory after a cut, or
// runs the daemon's own db check as a child.

func powerCutRounds(t *testing.T) int { return envRounds(t, "SMARTBOX_POWERCUT_ROUNDS", 20) }

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
	t.Parallel() // its own broker, data dir and ports; it waits more than it computes
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
	var secret, identity []byte
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
		r.work(time.Duration(200+r.rng.IntN(800)) * time.Millisecond)
		// Most kills land while a decision is being written: an entry,
		// and once its commit has begun writing, the kill within the
		// time the commit's fsyncs take.
		if rng.IntN(4) > 0 {
			w := m.fs.Stats().Writes
			r.keypad.Master.Write([]byte(r.newCode() + "#"))
			r.stats.inputs++
			for end := time.Now().Add(time.Second); m.fs.Stats().Writes == w && time.Now().Before(end); {
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(2*stall + 2*time.Millisecond))))
		}
		r.crash() // kill -9, cut, bbolt check of the durable file
		secret = checkKept(t, m, r.cfgPath, store.SecretFile, 32, secret)
		identity = checkKept(t, m, r.cfgPath, IdentityFile, 0, identity)
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

// checkKept holds a durable key file (the secret, the identity) against
// the one first seen: a cut must leave it whole (size bytes, when size is
// not 0) and unchanged. A secret gone or changed beside a database must
// make the box refuse to start, saying so — and it is a loss all the same;
// an identity that changed would change the box's seal_key under the cloud.
func checkKept(t *testing.T, m *faultMount, cfgPath, name string, size int, first []byte) []byte {
	t.Helper()
	p := filepath.Join(m.durableData(), name)
	got, err := os.ReadFile(p)
	if err == nil && len(got) > 0 && (size == 0 || len(got) == size) && (first == nil || bytes.Equal(got, first)) {
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
	t.Fatalf("the cut left %s %d bytes (%v), first %d bytes; the daemon exited %d:\n%s", name, len(got), err, len(first), code, d.out.String())
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

// TestPowerCutStalledFsync runs the box on a card whose every fsync takes
// 200 ms, with the watchdog armed (10 s, a third of the shipped unit's):
// a burst of keypad entries, typed faster than they can be written,
// queues on the decision loop and every one is decided — the wrong ones
// rejected, the right one opening its bin — while the supervisor keeps
// finding the loop answering and feeds the watchdog. The entries' decision
// latency (from the last keystroke to the event at the cloud) is logged.
func TestPowerCutStalledFsync(t *testing.T) {
	m := newFaultMount(t, faultfs.Options{})
	n := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.path)
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("WATCHDOG_PID", "")
	r := newDiskRig(t, filepath.Join(m.mnt, "data"))
	n.waitFor(t, "READY=1", 1)

	const stall = 200 * time.Millisecond
	m.fs.SetFsyncDelay(stall)
	fsyncs := m.fs.Stats().Fsyncs
	fed := n.count("WATCHDOG=1")
	last := r.log.maxSeq()
	const wrong = 7
	var typed []time.Time
	for i := range wrong + 1 {
		code := fmt.Sprintf("8%07d", i)
		if i == wrong {
			code = diskPick
		}
		r.typeCode(code)
		typed = append(typed, time.Now())
		time.Sleep(300 * time.Millisecond)
	}
	// The i-th keypad decision after last is the i-th entry: entries are
	// decided in the order typed. Other events (the rig's console login,
	// which the stalled card may hold back until now) come between.
	arrived := map[uint64]time.Time{}
	var decisions []event
	waitFor(t, 60*time.Second, "every entry decided", func() bool {
		for _, e := range r.log.pump() {
			arrived[e.Seq] = time.Now()
		}
		if r.log.contiguous() != r.log.maxSeq() {
			return false
		}
		decisions = decisions[:0]
		for q := last + 1; q <= r.log.maxSeq(); q++ {
			if e := r.log.bySeq[q]; e.Type == "code.rejected" || e.Type == "bin.unlocked" {
				decisions = append(decisions, e)
			}
		}
		return len(decisions) >= wrong+1
	})
	var lat []time.Duration
	for i := range wrong + 1 {
		e := decisions[i]
		want := "code.rejected"
		if i == wrong {
			want = "bin.unlocked"
		}
		if e.Type != want {
			t.Fatalf("entry %d decided as %s %v, want %s", i+1, e.Type, e.Data, want)
		}
		lat = append(lat, arrived[e.Seq].Sub(typed[i]))
	}
	r.readers[0].take()
	r.next("key.picked_up", last)
	// Two feeds after the burst began: the supervisor probed the loop
	// while it worked through the queue, and it answered.
	n.waitFor(t, "WATCHDOG=1", fed+2)
	if strings.Contains(r.d.out.String(), "decision loop does not answer") {
		t.Fatalf("the watchdog went unfed while fsyncs stalled:\n%s", r.d.out.String())
	}
	stalled := m.fs.Stats().Fsyncs - fsyncs
	if stalled < wrong+1 {
		t.Fatalf("only %d fsyncs for %d decisions: the stall was not in their way", stalled, wrong+1)
	}
	slices.Sort(lat)
	t.Logf("with %v fsyncs (%d of them during the burst): %d entries 300 ms apart decided in %v median, %v at worst (keystroke to event at the cloud); watchdog fed %d times meanwhile",
		stall, stalled, len(lat), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), n.count("WATCHDOG=1")-fed)
	m.fs.SetFsyncDelay(0)
	r.d.stop()
	noRace(t, r.d)
	r.dbCheck()
}

// TestPowerCutFailingWrites makes the card fail under the running daemon —
// every write or every fsync returns EIO or ENOSPC — and checks what
// TestDiskFull checks: the right code, the cloud and the console open
// nothing, the state and the console say why; healed, the box carries on
// with nothing lost. Then the power is cut, torn: what was stored before
// the fault and since the heal is all still there after the restart.
func TestPowerCutFailingWrites(t *testing.T) {
	tests := []struct {
		name  string
		op    faultfs.Op
		errno syscall.Errno
		why   string
	}{
		{"fsync fails with EIO", faultfs.OpFsync, syscall.EIO, "input/output error"},
		{"writes fail with ENOSPC", faultfs.OpWrite, syscall.ENOSPC, "no space left on device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newFaultMount(t, faultfs.Options{Seed: uint64(time.Now().UnixNano()), TearWrites: 4})
			r := newDiskRig(t, filepath.Join(m.mnt, "data"))
			refusedFrom := r.log.maxSeq()
			if err := m.fs.FailAfter(tc.op, 0, tc.errno); err != nil {
				t.Fatal(err)
			}
			r.refusesToOpen(tc.why)
			r.waitStoreState(false, tc.why)
			failed := m.fs.Stats().Failed
			m.fs.Heal()
			r.recovered(refusedFrom)
			r.ackAll()

			// Cut the power: the recovery was made durable, and so was
			// everything before the fault.
			before := r.log.maxSeq()
			r.d.kill()
			cs := m.cut(true)
			boltCheck(t, filepath.Join(m.durableData(), store.DBFile))
			m.remount()
			r.start()
			rep := r.c.mustOK("state.get", nil)
			raw, _ := json.Marshal(rep["result"])
			s := decodeState(t, raw)
			if s.Keys != r.keys || s.AccessCodes != r.codes || !s.Store.OK {
				t.Fatalf("after the cut: %d keys, %d codes, store %+v; want %d keys, %d codes", s.Keys, s.AccessCodes, s.Store, r.keys, r.codes)
			}
			for _, b := range s.Bins {
				if b.KeyID != nil || b.Fob != nil {
					t.Fatalf("after the cut bin %d holds %v/%v; the key was picked up", b.ID, deref(b.KeyID), deref(b.Fob))
				}
			}
			started := r.next("device.started", before)
			if started.Seq != before+1 {
				t.Fatalf("after the cut the new boot is seq %d, the last before it %d", started.Seq, before)
			}
			r.log.ordered() // gapless
			t.Logf("%d operations failed with %v; after the heal and a torn cut (%+v) the box holds %d keys, %d codes, %d events gapless",
				failed, tc.errno, cs, s.Keys, s.AccessCodes, len(r.log.bySeq))
			r.d.stop()
			noRace(t, r.d)
			r.dbCheck()
		})
	}
}

// TestPowerCutAfterCompact compacts the stopped box's database, lets the
// next daemon commit to the compacted file, and cuts the power: the
// compacted file must still be the one under the name, with those commits.
func TestPowerCutAfterCompact(t *testing.T) {
	m := newFaultMount(t, faultfs.Options{})
	b := mqtttest.Start(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: box-compact\ndata_dir: %s\nmqtt: {broker: %q, keepalive_s: 2}\nhardware:\n  bins: [{id: 1}]\n",
		filepath.Join(m.mnt, "data"), b.URL()))
	c := newCloud(t, b, "box-compact")
	log := newEventLog(t, c.events)
	d := startDaemon(t, cfg)
	c.waitEvent("device.started", nil)
	c.mustOK("key.upsert", map[string]any{"key_id": "before", "name": "before"})
	d.stop()
	if out, err := exec.Command(binPath, "-config", cfg, "db", "compact").CombinedOutput(); err != nil {
		t.Fatalf("db compact: %v\n%s", err, out)
	}
	d = startDaemon(t, cfg)
	c.mustOK("key.upsert", map[string]any{"key_id": "after", "name": "after"})
	waitFor(t, 20*time.Second, "the second key's event", func() bool {
		log.pump()
		return log.maxSeq() >= 4 // started, key, started, key
	})
	seen := log.maxSeq()
	d.kill()
	m.cut(false)
	boltCheck(t, filepath.Join(m.durableData(), store.DBFile))
	m.remount()
	d = startDaemon(t, cfg)
	rep := c.mustOK("state.get", nil)
	raw, _ := json.Marshal(rep["result"])
	if s := decodeState(t, raw); s.Keys != 2 {
		t.Fatalf("after compact, a commit and a cut the box holds %d keys, want 2", s.Keys)
	}
	started := c.waitEvent("device.started", func(e event) bool { return e.Seq > seen })
	if started.Seq != seen+1 {
		t.Fatalf("the boot after the cut is seq %d; the cloud had seen up to %d", started.Seq, seen)
	}
	log.pump() // fails on a seq reused with another id
	d.stop()
	noRace(t, d)
}
