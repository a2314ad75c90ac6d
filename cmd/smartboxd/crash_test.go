package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"smartboxd/internal/mqtttest"
)

// eventLog decodes a cloud's events as they arrive. It keeps every copy in
// arrival order and the first copy of each seq, and fails the test the
// moment a seq comes with another id than it first had.
type eventLog struct {
	t      testing.TB
	rec    *mqtttest.Recorder
	n      int              // messages decoded so far
	all    []event          // every copy, in arrival order
	bySeq  map[uint64]event // the first copy of each seq
	lastAt time.Time        // when a seq not seen before last arrived
}

func newEventLog(t testing.TB, rec *mqtttest.Recorder) *eventLog {
	return &eventLog{t: t, rec: rec, bySeq: map[uint64]event{}, lastAt: time.Now()}
}

// pump decodes what arrived since the last call and returns the copies
// of seqs not seen before.
func (l *eventLog) pump() []event {
	l.t.Helper()
	msgs := l.rec.Messages()
	var fresh []event
	for _, m := range msgs[l.n:] {
		var e event
		if err := json.Unmarshal(m.Payload, &e); err != nil || e.Seq == 0 || e.ID == "" {
			l.t.Fatalf("malformed event %q: %v", m.Payload, err)
		}
		l.all = append(l.all, e)
		if first, ok := l.bySeq[e.Seq]; ok {
			if first.ID != e.ID {
				l.t.Fatalf("seq %d reused: first %s id %s, now %s id %s", e.Seq, first.Type, first.ID, e.Type, e.ID)
			}
			continue
		}
		l.bySeq[e.Seq] = e
		l.lastAt = time.Now()
		fresh = append(fresh, e)
	}
	l.n = len(msgs)
	return fresh
}

func (l *eventLog) maxSeq() uint64 {
	var n uint64
	for s := range l.bySeq {
		n = max(n, s)
	}
	return n
}

// contiguous is the highest N such that every seq 1..N was seen.
func (l *eventLog) contiguous() uint64 {
	var n uint64
	for {
		if _, ok := l.bySeq[n+1]; !ok {
			return n
		}
		n++
	}
}

// ordered is the first copy of each seq 1..max; it fails on a gap.
func (l *eventLog) ordered() []event {
	l.t.Helper()
	if c, m := l.contiguous(), l.maxSeq(); c != m {
		l.t.Fatalf("seq gap: everything up to %d seen, then %d missing, %d seen", c, c+1, m)
	}
	out := make([]event, 0, len(l.bySeq))
	for s := uint64(1); s <= uint64(len(l.bySeq)); s++ {
		out = append(out, l.bySeq[s])
	}
	return out
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noRace fails the test when a race-built daemon reported a data race.
func noRace(t testing.TB, d *daemon) {
	t.Helper()
	if strings.Contains(d.out.String(), "WARNING: DATA RACE") {
		t.Fatalf("the daemon hit a data race:\n%s", d.out.String())
	}
}

// boltCheck opens a database file the daemon left behind, read-only, and
// runs bbolt's consistency check on it.
func boltCheck(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var problems []string
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problems = append(problems, e.Error())
		}
		return nil
	})
	if err != nil || len(problems) > 0 {
		t.Fatalf("bbolt check of %s: %v %s", path, err, strings.Join(problems, "; "))
	}
}

func decodeState(t testing.TB, raw []byte) stateDoc {
	t.Helper()
	var s stateDoc
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("state %q: %v", raw, err)
	}
	return s
}

func crashRounds(t *testing.T) int { return envRounds(t, "SMARTBOX_CRASH_ROUNDS", 20) }

// envRounds is the positive number in the environment variable name, or
// def when it is unset.
func envRounds(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", name, s)
		}
		return n
	}
	return def
}

// crashCode is an access code the test created (or tried to).
type crashCode struct {
	id, code string
}

// crashRig is a box under a random workload, killed and restarted.
type crashRig struct {
	t       *testing.T
	rng     *rand.Rand
	c       *cloud
	events  *eventLog
	state   *mqtttest.Recorder
	readers []*fakeReader
	keypad  *port
	cfgPath string
	dbPath  string
	d       *daemon

	inReader []string          // the fob the test holds in each reader's field
	serials  map[string]string // key id -> serial given when created
	keys     []string          // key ids created (the command sent)
	codes    []crashCode       // access codes sent
	pending  map[string]string // command id -> type, awaiting a reply
	nReplies int
	acked    uint64 // the highest seq acked
	lastAck  time.Time
	boots    map[string]bool // boot ids seen
	nKey     int
	nFob     int
	nCmd     int
	working  bool // react to bin.unlocked like a person at the box
	// confirmed is a seq the box has shown it holds acked: a state.get
	// answered with an outbox that starts above it.
	confirmed uint64
	// cut, when set, runs after each kill, before the database is checked:
	// the power cut.
	cut func()

	// Set at each kill, checked after the restart.
	unackedAtKill []uint64 // seqs seen and not acked when the daemon died
	maxAtKill     uint64   // the highest seq seen when the daemon died
	restartIdx    int      // events copies received before the restart
	stateIdx      int      // state messages received before the restart
	restartAt     time.Time
	bootSeq       uint64 // the seq of the running boot's device.started
	stats         crashStats
}

type crashStats struct {
	kills, events, republished, inputs, commands int
	settle                                       time.Duration
}

func crashConfig(dir, broker string, readers []*fakeReader, keypad *port) string {
	var b strings.Builder
	fmt.Fprintf(&b, "box_id: box-crash\ndata_dir: %s\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "mqtt: {broker: %q, keepalive_s: 2}\n", broker)
	b.WriteString("hardware:\n  backend: sim\n  bins:\n")
	for i := range readers {
		fmt.Fprintf(&b, "    - {id: %d}\n", i+1)
	}
	b.WriteString("readers:\n")
	for i, r := range readers {
		fmt.Fprintf(&b, "  - {type: rdm6300, port: %s, bin: %d}\n", r.p.Name(), i+1)
	}
	fmt.Fprintf(&b, "keypad: {type: serial, port: %s}\n", keypad.Name())
	b.WriteString("timing: {fob_absent_ms: 300, dropoff_timeout_s: 5, inventory_settle_s: 1, lock_pulse_ms: 100, lock_rest_ms: 100}\n")
	b.WriteString("security: {lockout_after: 100, lockout_s: 1, lockout_max_s: 1}\n")
	b.WriteString("clock: {require_sync: false}\n")
	return b.String()
}

// TestCrash kills the daemon with SIGKILL at random moments of a random
// workload — keypad entries, fobs coming and going, cloud commands — and
// restarts it, SMARTBOX_CRASH_ROUNDS times (default 20). After every kill
// the database passes bbolt's check; after every restart the locks are
// inactive, every event the cloud saw and did not ack comes again with its
// id, seq stays gapless and never changes meaning, and the box's bins, keys
// and codes are what its events say — a one-time code among them opens one
// bin at most and is removed with the entry that used it.
func TestCrash(t *testing.T) {
	t.Parallel() // its own broker, data dir and ports; it waits more than it computes
	rounds := crashRounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds", seed, rounds)
	dir := t.TempDir()
	r := newCrashRig(t, seed, dir, "", nil)
	began := time.Now()

	r.start()
	for round := 1; round <= rounds; round++ {
		r.settle()
		r.work(time.Duration(200+r.rng.IntN(2300)) * time.Millisecond)
		r.crash()
		r.start()
	}
	r.settle()
	r.d.stop()
	noRace(t, r.d)
	r.offlineChecks()
	s := r.stats
	types := map[string]int{}
	usedUp := 0
	for _, e := range r.events.ordered() {
		types[e.Type]++
		if e.Type == "access_code.status" && dataString(e, "status") == "removed" && dataInt(e, "max_uses") > 0 && dataInt(e, "uses") >= dataInt(e, "max_uses") {
			usedUp++
		}
	}
	t.Logf("one-time codes used up: %d", usedUp)
	t.Logf("events by type: %v", types)
	t.Logf("%d kills in %v: %d events (%d republished copies), %d keypad entries and fob moves, %d commands; settling took %v in all",
		s.kills, time.Since(began).Round(time.Millisecond), s.events, s.republished, s.inputs, s.commands, s.settle.Round(time.Millisecond))
}

// newCrashRig makes a box whose data dir is dataParent/data, with its
// config in dir, on a broker of its own; edit, when set, rewrites the
// config's YAML.
func newCrashRig(t *testing.T, seed uint64, dir, dataParent string, edit func(string) string) *crashRig {
	t.Helper()
	if dataParent == "" {
		dataParent = dir
	}
	b := mqtttest.Start(t)
	readers := []*fakeReader{newFakeReader(t), newFakeReader(t), newFakeReader(t)}
	keypad := newPort(t)
	cfg := crashConfig(dataParent, b.URL(), readers, keypad)
	if edit != nil {
		cfg = edit(cfg)
	}
	r := &crashRig{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), readers: readers, keypad: keypad,
		cfgPath:  writeConfig(t, dir, cfg),
		dbPath:   filepath.Join(dataParent, "data", "smartbox.db"),
		inReader: make([]string, len(readers)), serials: map[string]string{},
		pending: map[string]string{}, boots: map[string]bool{},
	}
	r.c = newCloud(t, b, "box-crash")
	r.events = newEventLog(t, r.c.events)
	r.state = r.c.c.Subscribe(r.c.p + "/state")
	return r
}

// start runs the daemon and waits for its device.started.
func (r *crashRig) start() {
	r.t.Helper()
	r.restartAt = time.Now()
	// Each round plays a box that ran long enough before its crash to
	// count as a good start; three kills in a row would otherwise put it
	// in safe mode (TestSafeModeAfterUncleanStarts).
	os.Remove(filepath.Join(filepath.Dir(r.cfgPath), "data", startsFile))
	r.d = startDaemon(r.t, r.cfgPath)
	waitFor(r.t, 30*time.Second, "device.started of the new boot", func() bool {
		r.pump()
		for _, e := range r.events.all[r.restartIdx:] {
			if id := dataString(e, "boot_id"); e.Type == "device.started" && !r.boots[id] {
				r.boots[id] = true
				r.bootSeq = e.Seq
				return true
			}
		}
		return false
	})
	// Published in seq order from the first unacked one, everything the
	// cloud saw and did not ack comes again before the new boot's event.
	again := map[uint64]bool{}
	for _, e := range r.events.all[r.restartIdx:] {
		again[e.Seq] = true
	}
	for _, s := range r.unackedAtKill {
		if !again[s] {
			r.t.Fatalf("seq %d (%s) was seen, not acked, and not published again after the restart",
				s, r.events.bySeq[s].Type)
		}
		r.stats.republished++
	}
	if r.bootSeq <= r.maxAtKill {
		r.t.Fatalf("the new boot's device.started has seq %d, yet seq %d was seen before the kill", r.bootSeq, r.maxAtKill)
	}
}

// pump takes in what the cloud received: events (checked for seq reuse),
// replies, and, while working, reacts to bins opening. It acks some events.
func (r *crashRig) pump() {
	r.t.Helper()
	fresh := r.events.pump()
	r.stats.events += len(fresh)
	replies := r.c.replies.Messages()
	for _, m := range replies[r.nReplies:] {
		var rep struct {
			ID string `json:"id"`
		}
		json.Unmarshal(m.Payload, &rep)
		delete(r.pending, rep.ID)
	}
	r.nReplies = len(replies)
	if r.working {
		for _, e := range fresh {
			if e.Type == "bin.unlocked" {
				r.react(dataInt(e, "bin")-1, dataString(e, "reason"))
			}
		}
	}
	// Ack most of what arrived, not all: the rest must come again after
	// a crash.
	if time.Since(r.lastAck) > 200*time.Millisecond {
		r.lastAck = time.Now()
		upto := r.events.contiguous()
		lag := uint64(r.rng.IntN(6))
		if upto > r.acked+lag {
			r.acked = upto - lag
			r.c.ack(r.acked)
		}
	}
}

// react is the person at the box: a drop-off bin gets a fob, a fob is
// taken from a pickup bin, mostly.
func (r *crashRig) react(i int, reason string) {
	if i < 0 || i >= len(r.readers) || r.rng.IntN(4) == 0 {
		return
	}
	switch {
	case r.inReader[i] == "" && (reason == "dropoff" || reason == "remote"):
		r.put(i)
	case r.inReader[i] != "" && (reason == "pickup" || reason == "remote"):
		r.take(i)
	}
}

func (r *crashRig) put(i int) {
	held := map[string]bool{}
	for _, f := range r.inReader {
		held[f] = true
	}
	var free []string
	for _, k := range r.keys {
		if s := r.serials[k]; s != "" && !held[s] {
			free = append(free, s)
		}
	}
	fob := ""
	if len(free) == 0 || r.rng.IntN(5) == 0 {
		r.nFob++
		fob = fmt.Sprintf("B%09X", r.nFob)
	} else {
		fob = free[r.rng.IntN(len(free))]
	}
	r.inReader[i] = fob
	r.readers[i].put(fob)
	r.stats.inputs++
}

func (r *crashRig) take(i int) {
	r.inReader[i] = ""
	r.readers[i].take()
	r.stats.inputs++
}

// send publishes a command without waiting for its reply.
func (r *crashRig) send(typ string, data map[string]any) string {
	r.t.Helper()
	r.nCmd++
	id := fmt.Sprintf("crash-%d", r.nCmd)
	raw, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	r.c.c.Publish(r.t, r.c.p+"/cmd", 1, false, raw)
	r.pending[id] = typ
	r.stats.commands++
	return id
}

func (r *crashRig) newCode() string {
	for {
		code := fmt.Sprintf("%06d", r.rng.IntN(1_000_000))
		if !slices.ContainsFunc(r.codes, func(c crashCode) bool { return c.code == code }) {
			return code
		}
	}
}

// work drives the box at random for d.
func (r *crashRig) work(d time.Duration) {
	r.t.Helper()
	r.working = true
	defer func() { r.working = false }()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		r.pump()
		bin := 1 + r.rng.IntN(len(r.readers))
		switch p := r.rng.IntN(100); {
		case p < 35: // an entry at the keypad
			code := ""
			if len(r.codes) > 0 && r.rng.IntN(5) > 0 {
				code = r.codes[r.rng.IntN(len(r.codes))].code
			} else {
				code = r.newCode() // wrong
			}
			r.keypad.Master.Write([]byte(code + "#"))
			r.stats.inputs++
		case p < 45:
			r.nKey++
			id := fmt.Sprintf("key-%d", r.nKey)
			data := map[string]any{"key_id": id, "name": "Key " + id}
			if r.rng.IntN(5) < 3 {
				r.serials[id] = fmt.Sprintf("A%09X", r.nKey)
				data["serial_number"] = r.serials[id]
			}
			r.keys = append(r.keys, id)
			r.send("key.upsert", data)
		case p < 58 && len(r.keys) > 0:
			c := crashCode{id: fmt.Sprintf("ac-%d", len(r.codes)+1), code: r.newCode()}
			action := []string{"pickup", "dropoff"}[r.rng.IntN(2)]
			r.codes = append(r.codes, c)
			data := map[string]any{"access_code_id": c.id, "code": c.code, "name": c.id,
				"type": "ongoing", "key_id": r.keys[r.rng.IntN(len(r.keys))], "action": action}
			if r.rng.IntN(3) == 0 {
				// One-time: the model holds that it opens one bin at most,
				// and is gone with the entry that used it.
				data["is_one_time_use"] = true
			}
			r.send("access_code.upsert", data)
		case p < 63 && len(r.codes) > 0:
			r.send("access_code.delete", map[string]any{"access_code_id": r.codes[r.rng.IntN(len(r.codes))].id})
		case p < 70:
			r.send("bin.open", map[string]any{"bin": bin})
		case p < 85:
			if r.inReader[bin-1] == "" {
				r.put(bin - 1)
			}
		default:
			if r.inReader[bin-1] != "" {
				r.take(bin - 1)
			}
		}
		time.Sleep(time.Duration(10+r.rng.IntN(80)) * time.Millisecond)
	}
}

// crash kills the daemon, waits for the broker to notice (the last will),
// and checks the file it left.
func (r *crashRig) crash() {
	r.t.Helper()
	statusIdx := r.c.status.Len()
	r.d.kill()
	r.stats.kills++
	noRace(r.t, r.d)
	r.c.status.WaitUntil(r.t, func(msgs []mqtttest.Message) bool {
		for _, m := range msgs[statusIdx:] {
			if bytes.Contains(m.Payload, []byte(`"online":false`)) {
				return true
			}
		}
		return false
	}, 20*time.Second)
	// Everything the dead daemon published was delivered before its will.
	r.pump()
	r.unackedAtKill = r.unackedAtKill[:0]
	for s := range r.events.bySeq {
		if s > r.acked {
			r.unackedAtKill = append(r.unackedAtKill, s)
		}
	}
	r.restartIdx = len(r.events.all)
	r.maxAtKill = r.events.maxSeq()
	r.stateIdx = r.state.Len()
	if r.cut != nil {
		r.cut()
	}
	boltCheck(r.t, r.dbPath)
}

// settle waits until the box is quiet — every command answered, every
// event up to the newest seen, no bin open, nothing new for a while — and
// holds its state against the replayed events.
func (r *crashRig) settle() {
	r.t.Helper()
	began := time.Now()
	quiet := func() bool {
		r.pump()
		if len(r.pending) > 0 || r.events.contiguous() != r.events.maxSeq() ||
			time.Since(r.events.lastAt) < 1500*time.Millisecond || time.Since(r.restartAt) < 1500*time.Millisecond {
			return false
		}
		msgs := r.state.Messages()
		if len(msgs) <= r.stateIdx {
			return false
		}
		for _, b := range decodeState(r.t, msgs[len(msgs)-1].Payload).Bins {
			if b.State == "open" || b.Lock != "locked" {
				return false
			}
		}
		return true
	}
	waitFor(r.t, 60*time.Second, fmt.Sprintf("the box to settle (%d commands unanswered, seqs up to %d of %d)",
		len(r.pending), r.events.contiguous(), r.events.maxSeq()), quiet)

	// Every state document names every bin, the first of a boot too.
	states := r.state.Messages()
	for _, m := range states[r.stateIdx:] {
		if s := decodeState(r.t, m.Payload); len(s.Bins) != len(r.readers) {
			r.t.Fatalf("a state document with %d bins: %s", len(s.Bins), m.Payload)
		}
	}
	// The locks were inactive at start: a lock the new boot's first state
	// shows energised was pulsed by a decision of this boot.
	first := decodeState(r.t, states[r.stateIdx].Payload)
	for _, b := range first.Bins {
		if b.Lock == "locked" {
			continue
		}
		pulsed := false
		for s := r.bootSeq + 1; s <= r.events.maxSeq(); s++ {
			if e := r.events.bySeq[s]; e.Type == "bin.unlocked" && dataInt(e, "bin") == b.ID {
				pulsed = true
			}
		}
		if !pulsed {
			r.t.Fatalf("bin %d's lock is %q at start with no bin.unlocked since", b.ID, b.Lock)
		}
	}

	// The state answered on the decision loop matches the events up to
	// some seq between the last one seen before asking and the last one
	// seen after the answer.
	from := r.events.maxSeq()
	r.nCmd++
	id := fmt.Sprintf("crash-state-%d", r.nCmd)
	raw, _ := json.Marshal(map[string]any{"id": id, "type": "state.get"})
	r.c.c.Publish(r.t, r.c.p+"/cmd", 1, false, raw)
	rep := r.c.reply(id)
	if rep["ok"] != true {
		r.t.Fatalf("state.get: %v", rep)
	}
	result, _ := json.Marshal(rep["result"])
	st := decodeState(r.t, result)
	if !st.Store.OK {
		r.t.Fatalf("store not ok: %q", st.Store.Error)
	}
	// The outbox holds exactly the seqs after the last ack applied, and
	// every seq up to from was written: everything up to from-depth is
	// acked for good.
	if c := int64(from) - int64(st.Outbox.Depth); c > int64(r.confirmed) {
		r.confirmed = uint64(c)
	}
	time.Sleep(200 * time.Millisecond)
	r.pump()
	evs := r.events.ordered()
	m := newModel([]int{1, 2, 3}, r.serials)
	var d []string
	for i, e := range evs {
		if err := m.apply(e); err != nil {
			r.t.Fatal(err)
		}
		if e.Seq < from {
			continue
		}
		if d = m.diff(st); len(d) == 0 {
			break
		}
		if i == len(evs)-1 {
			r.t.Fatalf("state after %d events disagrees with them:\n%s", len(evs), strings.Join(d, "\n"))
		}
	}
	r.stats.settle += time.Since(began)
}

// offlineChecks runs the daemon's own database commands on the stopped box:
// the check is clean, and the export agrees with the events on every key.
func (r *crashRig) offlineChecks() {
	r.t.Helper()
	out, err := exec.Command(binPath, "-config", r.cfgPath, "db", "check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		r.t.Fatalf("db check: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "-config", r.cfgPath, "db", "export").Output()
	if err != nil {
		r.t.Fatalf("db export: %v", err)
	}
	var exp struct {
		Keys []struct {
			KeyID string `json:"key_id"`
			Bin   *int   `json:"bin"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(out, &exp); err != nil {
		r.t.Fatalf("db export: %v\n%s", err, out)
	}
	m := newModel([]int{1, 2, 3}, r.serials)
	for _, e := range r.events.ordered() {
		if err := m.apply(e); err != nil {
			r.t.Fatal(err)
		}
	}
	if len(exp.Keys) != len(m.keys) {
		r.t.Fatalf("export has %d keys, events say %d", len(exp.Keys), len(m.keys))
	}
	for _, k := range exp.Keys {
		at := 0
		if k.Bin != nil {
			at = *k.Bin
		}
		want, ok := m.keys[k.KeyID]
		if !ok || want != at {
			r.t.Fatalf("key %s is in bin %d, events say %d (known %v)", k.KeyID, at, want, ok)
		}
	}
}
