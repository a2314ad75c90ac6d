package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/internal/mqtttest"
	"smartboxd/store"
)

// countingLocker counts the pulses the box asks for.
type countingLocker struct {
	mu    sync.Mutex
	bins  []int
	total int
}

func (l *countingLocker) Unlock(bin int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bins = append(l.bins, bin)
	l.total++
	return nil
}

func (l *countingLocker) pulses() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

var _ device.Locker = (*countingLocker)(nil)

// boxRig is a device.Box on a real store in a temp dir, with a fake clock,
// restartable on the same files.
type boxRig struct {
	t      *testing.T
	dir    string
	clock  *clockwork.FakeClock
	locks  *countingLocker
	db     *store.DB
	box    *device.Box
	cancel context.CancelFunc
	done   chan error
	seq    uint64 // the last event read
	cmds   int
}

func newBoxRig(t *testing.T) *boxRig {
	r := &boxRig{t: t, dir: t.TempDir(), clock: clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), locks: &countingLocker{}}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *boxRig) start() {
	r.t.Helper()
	db, err := store.Open(r.dir, store.Options{BoxID: "box-bf", NoSync: true})
	if err != nil {
		r.t.Fatal(err)
	}
	box, err := device.New(device.Config{
		BoxID: "box-bf", Version: "test", BootID: fmt.Sprintf("boot-%d", db.Boot()),
		Bins:         []device.BinSpec{{ID: 1, Reader: "r1"}, {ID: 2, Reader: "r2"}},
		LockoutAfter: 5, LockoutBase: 30 * time.Second, LockoutMax: 900 * time.Second,
		Store: db, Locks: r.locks, Clock: r.clock,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.db, r.box, r.cancel, r.done = db, box, cancel, make(chan error, 1)
	go func() { r.done <- box.Run(ctx) }()
	r.flush()
}

func (r *boxRig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("box run: %v", err)
	}
	r.cancel = nil
	r.db.Close()
}

func (r *boxRig) restart() { r.stop(); r.start() }

func (r *boxRig) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.box.Flush(ctx); err != nil {
		r.t.Fatalf("flush: %v", err)
	}
}

// newEvents returns the events committed since the last call.
func (r *boxRig) newEvents() []event {
	r.t.Helper()
	recs, err := r.db.Pending(r.seq, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]event, 0, len(recs))
	for _, rec := range recs {
		var e event
		if err := json.Unmarshal(rec.Payload, &e); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, e)
		r.seq = rec.Seq
	}
	return out
}

func (r *boxRig) mustOK(typ string, data any) {
	r.t.Helper()
	r.cmds++
	raw, _ := json.Marshal(data)
	rep, err := r.box.Execute(context.Background(), contract.Command{ID: fmt.Sprintf("c%d", r.cmds), Type: typ, Data: raw})
	if err != nil || !rep.OK {
		r.t.Fatalf("%s: %v %+v", typ, err, rep.Error)
	}
}

// enter submits one keypad entry and returns the events it caused.
func (r *boxRig) enter(code string) []event {
	r.t.Helper()
	r.box.KeypadEntry(code)
	r.flush()
	return r.newEvents()
}

// rejected checks that evs is one code.rejected for reason (and, when the
// entry started a lockout, the keypad.locked_out event; a keypad.lockout_ended
// of the lockout before may come first) and returns that lockout's end, zero
// if none.
func rejected(t *testing.T, evs []event, entry string, reasons ...string) time.Time {
	t.Helper()
	var until time.Time
	var reason string
	for _, e := range evs {
		switch e.Type {
		case contract.EventKeypadLockoutEnded:
		case "code.rejected":
			if reason != "" {
				t.Fatalf("entry %q rejected twice: %v", entry, evs)
			}
			reason = dataString(e, "reason")
		case "keypad.locked_out", "console.locked_out":
			var err error
			if until, err = time.Parse(time.RFC3339, dataString(e, "until")); err != nil {
				t.Fatalf("%s until: %v", e.Type, err)
			}
		default:
			t.Fatalf("entry %q caused %s %v", entry, e.Type, e.Data)
		}
	}
	for _, want := range reasons {
		if reason == want {
			return until
		}
	}
	t.Fatalf("entry %q: rejected with %q, want one of %v (events %v)", entry, reason, reasons, evs)
	return until
}

// lockoutFor is the contract's escalation: lockout_s doubling per lockout,
// capped at lockout_max_s.
func lockoutFor(level int, base, maxD time.Duration) time.Duration {
	d := base
	for i := 1; i < level; i++ {
		d = min(2*d, maxD)
	}
	return min(d, maxD)
}

// randomEntry is a keypad entry a guesser might type: mostly 4 to 16
// digits, sometimes too short or too long.
func randomEntry(rng *rand.Rand, avoid map[string]bool) string {
	for {
		n := 4 + rng.IntN(13)
		if rng.IntN(10) < 3 {
			n = 1 + rng.IntN(20)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if s := string(b); !avoid[s] {
			return s
		}
	}
}

// TestBruteForceKeypad types 10,000 random entries into a box holding real
// codes, on the real store with a fake clock: none opens a bin, every fifth
// wrong entry in a row starts a lockout that doubles from 30 s up to 900 s,
// a right code is refused during a lockout (the first refusal reported, the
// rest counted in keypad.lockout_ended), and the lockout and its level
// survive a restart. A right code after the lockout opens its bin but does
// not end the escalation; security.clear_lockout does.
func TestBruteForceKeypad(t *testing.T) {
	const entries = 10_000
	const base, maxD = 30 * time.Second, 900 * time.Second
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	r := newBoxRig(t)

	// Real codes: two drop-off codes (each opens a free bin) and a pickup
	// code for a key checked in to bin 1.
	const drop1, drop2, pick = "86420975", "3141", "7777777777777777"
	real := map[string]bool{drop1: true, drop2: true, pick: true}
	r.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "k1", "serial_number": "00C0FFEE01"})
	r.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": drop1, "name": "d1", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "d2", "code": drop2, "name": "d2", "type": "ongoing", "key_id": "k2", "action": "dropoff"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "p1", "code": pick, "name": "p1", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	r.enter(drop1)
	r.box.FobPresent(1, "00C0FFEE01")
	r.flush()
	if evs := r.newEvents(); len(evs) == 0 || evs[len(evs)-1].Type != "key.dropped_off" {
		t.Fatalf("drop-off of k1: %v", evs)
	}
	pulsesBefore := r.locks.pulses()

	var until time.Time
	level, failures, lockouts, duringLockout, reported := 0, 0, 0, 0, false
	counted := 0 // refusals not reported one by one
	for i := range entries {
		now := r.clock.Now()
		locked := now.Before(until)
		if locked && rng.IntN(10) > 0 {
			r.clock.Advance(until.Sub(now))
			locked = false
		}
		entry := randomEntry(rng, real)
		if locked && rng.IntN(4) == 0 {
			entry = pick // the right code, at the wrong time
		}
		evs := r.enter(entry)
		if locked {
			duringLockout++
			if reported {
				if len(evs) != 0 {
					t.Fatalf("a refusal after the lockout's first was reported: %v", evs)
				}
				counted++
				continue
			}
			if got := rejected(t, evs, entry, contract.CodeKeypadLockedOut); !got.IsZero() {
				t.Fatalf("an entry refused during a lockout started another")
			}
			reported = true
			continue
		}
		for _, e := range evs {
			if e.Type == contract.EventKeypadLockoutEnded {
				if n := dataInt(e, "rejected"); n != counted {
					t.Fatalf("keypad.lockout_ended counts %d refusals, want %d", n, counted)
				}
				counted = 0
			}
		}
		got := rejected(t, evs, entry, contract.CodeCodeUnknown, contract.CodeCodeInvalidLength, contract.CodeCodeNotNumeric)
		failures++
		if failures < 5 {
			if !got.IsZero() {
				t.Fatalf("entry %d: a lockout after %d wrong entries", i, failures)
			}
			continue
		}
		failures = 0
		level++
		lockouts++
		want := r.clock.Now().Add(lockoutFor(level, base, maxD))
		if !got.Equal(want) {
			t.Fatalf("lockout %d ends %v, want %v (%v after it began)", level, got, want, lockoutFor(level, base, maxD))
		}
		until, reported = got, false
	}
	if n := r.locks.pulses(); n != pulsesBefore {
		t.Fatalf("%d random entries pulsed a lock %d times", entries, n-pulsesBefore)
	}
	if lockouts < entries/6 || level < 7 {
		t.Fatalf("only %d lockouts, level %d", lockouts, level)
	}
	t.Logf("%d entries: %d lockouts (the last %v long), %d entries refused during one", entries, lockouts, lockoutFor(level, base, maxD), duringLockout)

	// Make sure a lockout is running, then restart the box: it still is.
	for !r.clock.Now().Before(until) {
		if got := rejected(t, r.enter("0000"), "0000", contract.CodeCodeUnknown); !got.IsZero() {
			level++
			until = got
		}
	}
	r.clock.Advance(time.Second)
	r.restart()
	r.newEvents() // device.started
	rejected(t, r.enter(pick), pick, contract.CodeKeypadLockedOut)
	if evs := r.enter(drop2); len(evs) != 0 { // refused too, and counted
		t.Fatalf("the second refusal of a lockout was reported: %v", evs)
	}
	// The level survived too: the next lockout is as long as the cap.
	r.clock.Advance(until.Sub(r.clock.Now()))
	for i := range 5 {
		got := rejected(t, r.enter("12345"), "12345", contract.CodeCodeUnknown)
		if i == 4 && !got.Equal(r.clock.Now().Add(maxD)) {
			t.Fatalf("after the restart the lockout ends %v, want %v", got, r.clock.Now().Add(maxD))
		}
		until = got
	}
	if n := r.locks.pulses(); n != pulsesBefore {
		t.Fatalf("a lock pulsed during a lockout")
	}

	// Once it is over, the right code opens its bin, but the escalation
	// stays: the next lockout is as long as the cap again.
	r.clock.Advance(until.Sub(r.clock.Now()))
	r.flush()
	r.newEvents() // keypad.lockout_ended
	evs := r.enter(pick)
	if len(evs) == 0 || evs[0].Type != "bin.unlocked" || dataInt(evs[0], "bin") != 1 || r.locks.pulses() != pulsesBefore+1 {
		t.Fatalf("the pickup code after the lockout: %v", evs)
	}
	for i := range 5 {
		got := rejected(t, r.enter("99999"), "99999", contract.CodeCodeUnknown)
		if i == 4 && !got.Equal(r.clock.Now().Add(maxD)) {
			t.Fatalf("after a right code the lockout ends %v, want %v", got, r.clock.Now().Add(maxD))
		}
	}
	// security.clear_lockout ends the lockout and the escalation: the next
	// one starts again from the bottom.
	r.mustOK("security.clear_lockout", map[string]any{})
	if evs := r.newEvents(); len(evs) != 1 || evs[0].Type != contract.EventKeypadLockoutCleared {
		t.Fatalf("security.clear_lockout: %v", evs)
	}
	for i := range 5 {
		got := rejected(t, r.enter("99999"), "99999", contract.CodeCodeUnknown)
		if i == 4 && !got.Equal(r.clock.Now().Add(base)) {
			t.Fatalf("after clear_lockout the lockout ends %v, want %v", got, r.clock.Now().Add(base))
		}
	}
}

// TestBruteForceConsolePIN: wrong PINs lock the console out like the
// keypad (5, then 30 s doubling), the right PIN is refused during the
// lockout, and a restart does not lift it.
func TestBruteForceConsolePIN(t *testing.T) {
	r := newBoxRig(t)
	ctx := context.Background()
	login := func(ok bool) device.LoginResult {
		t.Helper()
		res, err := r.box.ConsoleLogin(ctx, ok)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for level := 1; level <= 3; level++ {
		for i := 1; i <= 5; i++ {
			res := login(false)
			if res.OK || res.LockedOut != (i == 5) {
				t.Fatalf("level %d, wrong PIN %d: %+v", level, i, res)
			}
			if i == 5 {
				if want := r.clock.Now().Add(lockoutFor(level, 30*time.Second, 900*time.Second)); !res.Until.Equal(want) {
					t.Fatalf("level %d: locked out until %v, want %v", level, res.Until, want)
				}
			}
		}
		if res := login(true); res.OK || !res.LockedOut {
			t.Fatalf("the right PIN during a lockout: %+v", res)
		}
		r.restart()
		if res := login(true); res.OK || !res.LockedOut {
			t.Fatalf("the right PIN after a restart during a lockout: %+v", res)
		}
		r.clock.Advance(lockoutFor(level, 30*time.Second, 900*time.Second))
	}
	if res := login(true); !res.OK {
		t.Fatalf("the right PIN after the lockout: %+v", res)
	}
	for _, e := range r.newEvents() {
		if e.Type == "console.login" {
			if _, ok := e.Data["pin"]; ok {
				t.Fatalf("console.login carries the PIN: %v", e.Data)
			}
		}
	}
}

// consoleClient talks to the daemon's console through a pseudo-terminal.
type consoleClient struct {
	t   testing.TB
	p   *port
	out *syncBuffer
	pos int
}

func newConsoleClient(t testing.TB, p *port) *consoleClient {
	c := &consoleClient{t: t, p: p, out: &syncBuffer{}}
	go io.Copy(c.out, p.Master)
	return c
}

// do sends a line and returns the answer, up to and including its OK or
// ERR line.
func (c *consoleClient) do(line string) string {
	c.t.Helper()
	c.pos = len(c.out.String())
	if _, err := c.p.Master.Write([]byte(line + "\r")); err != nil {
		c.t.Fatal(err)
	}
	var answer string
	waitFor(c.t, 20*time.Second, fmt.Sprintf("the console's answer to %q", strings.Fields(line + " _")[0]), func() bool {
		s := c.out.String()[c.pos:]
		for _, end := range []string{"\r\nOK\r\n", "\r\nERR "} {
			if i := strings.Index(s, end); i >= 0 {
				rest := s[i+2:]
				if j := strings.Index(rest, "\r\n"); j >= 0 {
					answer = s[:i+2+j+2]
					return true
				}
			}
		}
		return false
	})
	return answer
}

// waitText waits for text in what the console printed since the last line
// sent.
func (c *consoleClient) waitText(text string) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, fmt.Sprintf("%q on the console", text), func() bool {
		return strings.Contains(c.out.String()[c.pos:], text)
	})
}

// TestBruteForceProcess runs the guesser against the real daemon: random
// entries through the serial keypad open no bin; then a lockout of the
// keypad and one of the console, both started before a kill -9, still
// refuse the right code and the right PIN after the restart.
func TestBruteForceProcess(t *testing.T) {
	const entries = 1000
	const drop1, drop2, pin = "86420975", "31415926", "246813"
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	t.Logf("seed %d", seed)
	b := mqtttest.Start(t)
	keypad, con := newPort(t), newPort(t)
	dir := t.TempDir()
	config := func(after, lockoutS, maxS int) string {
		return fmt.Sprintf(`box_id: box-bf
data_dir: %s
mqtt: {broker: %q, ack: broker, keepalive_s: 2}
console: {port: %s, technician_pin: %q}
hardware:
  backend: sim
  bins: [{id: 1}, {id: 2}]
keypad: {type: serial, port: %s}
security: {lockout_after: %d, lockout_s: %d, lockout_max_s: %d}
`, filepath.Join(dir, "data"), b.URL(), con.Name(), pin, keypad.Name(), after, lockoutS, maxS)
	}
	c := newCloud(t, b, "box-bf")
	d := startDaemon(t, writeConfig(t, dir, config(100, 1, 2)))
	c.waitEvent("device.started", nil)
	c.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "k1"})
	c.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": drop1, "name": "d1", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "d2", "code": drop2, "name": "d2", "type": "ongoing", "key_id": "k2", "action": "dropoff"})

	real := map[string]bool{drop1: true, drop2: true}
	var typed strings.Builder
	for range entries {
		typed.WriteString(randomEntry(rng, real) + "#")
	}
	if _, err := keypad.Master.Write([]byte(typed.String())); err != nil {
		t.Fatal(err)
	}
	count := func(typ string) (n int, last event) {
		for _, e := range decodeEvents(c.events.Messages()) {
			if e.Type == typ {
				n, last = n+1, e
			}
		}
		return n, last
	}
	// Every entry is rejected: reported one by one, or (after the first
	// refusal of a lockout) counted in the lockout's keypad.lockout_ended.
	judged := func() (reported, counted int) {
		for _, e := range decodeEvents(c.events.Messages()) {
			switch e.Type {
			case "code.rejected":
				reported++
			case contract.EventKeypadLockoutEnded:
				counted += dataInt(e, "rejected")
			}
		}
		return reported, counted
	}
	waitFor(t, 120*time.Second, fmt.Sprintf("%d rejections", entries), func() bool {
		n, m := judged()
		return n+m >= entries
	})
	if n, m := judged(); n+m != entries {
		t.Fatalf("%d entries, %d rejections reported and %d counted", entries, n, m)
	}
	if n, e := count("bin.unlocked"); n > 0 {
		t.Fatalf("a random entry opened a bin: %v", e.Data)
	}
	lockouts, last := count("keypad.locked_out")
	t.Logf("%d random entries through the keypad: all rejected, %d lockouts", entries, lockouts)
	if lockouts > 0 {
		end, err := time.Parse(time.RFC3339, dataString(last, "until"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(end.Add(1100 * time.Millisecond)))
	}
	// The codes were real all along.
	keypad.Master.Write([]byte(drop1 + "#"))
	opened := c.waitEvent("bin.unlocked", func(e event) bool { return e.Data["reason"] == "dropoff" })
	d.stop()

	// Now a lockout long enough to outlive a crash, for both the keypad
	// and the console.
	cfg := writeConfig(t, dir, config(5, 60, 900))
	d = startDaemon(t, cfg)
	cons := newConsoleClient(t, con)
	cons.waitText("smartbox> ")
	boot := c.waitEvent("device.started", func(e event) bool { return e.Seq > opened.Seq })
	keypad.Master.Write([]byte("1111#2222#3333#4444#5555#"))
	c.waitEvent("keypad.locked_out", func(e event) bool { return e.Seq > boot.Seq })
	for i := 1; i <= 5; i++ {
		ans := cons.do("login 135790")
		want := "ERR console.pin_invalid"
		if i == 5 {
			want = "ERR console.locked_out"
		}
		if !strings.Contains(ans, want) {
			t.Fatalf("wrong PIN %d: %q, want %s", i, ans, want)
		}
	}
	if ans := cons.do("login " + pin); !strings.Contains(ans, "ERR console.locked_out") {
		t.Fatalf("right PIN during the lockout: %q", ans)
	}
	keypad.Master.Write([]byte(drop2 + "#"))
	refused := c.waitEvent("code.rejected", func(e event) bool {
		return e.Seq > boot.Seq && e.Data["reason"] == contract.CodeKeypadLockedOut
	})
	d.kill()
	noRace(t, d)

	d = startDaemon(t, cfg)
	cons.waitText("smartbox> ")
	reboot := c.waitEvent("device.started", func(e event) bool { return e.Seq > refused.Seq })
	keypad.Master.Write([]byte(drop2 + "#"))
	c.waitEvent("code.rejected", func(e event) bool {
		return e.Seq > reboot.Seq && e.Data["reason"] == contract.CodeKeypadLockedOut
	})
	if ans := cons.do("login " + pin); !strings.Contains(ans, "ERR console.locked_out") {
		t.Fatalf("right PIN after the restart: %q", ans)
	}
	c.waitEvent("console.login", func(e event) bool {
		return e.Seq > reboot.Seq && e.Data["ok"] == false && e.Data["locked_out"] == true
	})
	for _, e := range decodeEvents(c.events.Messages()) {
		if e.Seq > boot.Seq && e.Type == "bin.unlocked" {
			t.Fatalf("a bin opened during the lockout: %v", e.Data)
		}
	}
	d.stop()
	noRace(t, d)
}
