package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jonboulle/clockwork"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/fob"
	"smartboxd/store"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const (
	testPIN    = "246810"
	testBox    = "box-test"
	promptOut  = "smartbox> "
	promptIn   = "smartbox(" + testBox + ")# "
	waitFor    = 10 * time.Second
	testBroker = "tcp://127.0.0.1:1883"
)

var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPIN), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// fakeLocks records the bins the box pulsed.
type fakeLocks struct {
	mu       sync.Mutex
	unlocked []int
}

func (f *fakeLocks) Unlock(bin int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlocked = append(f.unlocked, bin)
	return nil
}

func (f *fakeLocks) pulses() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unlocked)
}

// fakeSim is the sim backend: a keypad that collects keys and submits on #
// as the real collector does, and doors reported to the box.
type fakeSim struct {
	box     *device.Box
	mu      sync.Mutex
	pressed []rune
	entry   []rune
	doors   []string
}

func (f *fakeSim) press(r rune) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pressed = append(f.pressed, r)
	switch r {
	case '*':
		f.entry = nil
	case '#':
		f.box.KeypadEntry(string(f.entry))
		f.entry = nil
	default:
		f.entry = append(f.entry, r)
	}
}

func (f *fakeSim) door(bin int, open bool) error {
	f.mu.Lock()
	f.doors = append(f.doors, fmt.Sprintf("%d:%v", bin, open))
	f.mu.Unlock()
	f.box.DoorChanged(bin, open)
	return nil
}

func (f *fakeSim) keys() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.pressed)
}

// rig is a real box on a bbolt file in a temp dir, with a fake clock, and a
// console in front of it.
type rig struct {
	t     *testing.T
	clock *clockwork.FakeClock
	db    *store.DB
	box   *device.Box
	locks *fakeLocks
	sim   *fakeSim
	con   *Console
	cmdN  int
}

type rigOption func(*Config)

func withoutSim() rigOption { return func(c *Config) { c.Sim = nil } }

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, clock: clockwork.NewFakeClockAt(t0), locks: &fakeLocks{}}
	db, err := store.Open(t.TempDir(), store.Options{BoxID: testBox, NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	r.db = db
	box, err := device.New(device.Config{
		BoxID: testBox, Version: "1.2.3", BootID: "boot-1",
		Bins:  []device.BinSpec{{ID: 1, Reader: "/dev/ttyUSB0"}, {ID: 2, Reader: "/dev/ttyUSB1", HasDoor: true}, {ID: 3}},
		Store: db, Locks: r.locks, Clock: r.clock,
	})
	if err != nil {
		t.Fatalf("new box: %v", err)
	}
	r.box = box
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- box.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("box run: %v", err)
		}
		db.Close()
	})
	r.flush()

	r.sim = &fakeSim{box: box}
	cfg := Config{
		Box: box, PINHash: testHash,
		Events: db.Recent, Outbox: db.OutboxStats,
		Readers: func() []fob.Stats {
			return []fob.Stats{
				{Name: "/dev/ttyUSB0", Type: fob.TypeRDM6300, Bin: 1, Frames: 1234, BadChecksum: 5, Noise: 17, Reopens: 1, Present: "0A1B2C3D4E", LastError: "read: i/o error"},
				{Name: "wiegand:GPIO5", Type: fob.TypeWiegand, Bin: 2, Frames: 7, BadChecksum: 2, Noise: 3, Faulted: true, LastError: "line stuck low"},
			}
		},
		Sync: func() SyncStatus {
			return SyncStatus{Connected: true, Broker: testBroker, LastAck: 41, InFlight: 2, Published: 43, Reconnects: 3, LastError: "eof"}
		},
		Sim:     &Sim{Press: r.sim.press, Door: r.sim.door},
		Version: "1.2.3", BootID: "boot-1", BoxID: testBox,
		Started: t0.Add(-90 * time.Minute),
		Clock:   r.clock,
	}
	for _, o := range opts {
		o(&cfg)
	}
	con, err := New(cfg)
	if err != nil {
		t.Fatalf("new console: %v", err)
	}
	r.con = con
	return r
}

func (r *rig) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.box.Flush(ctx); err != nil {
		r.t.Fatalf("flush: %v", err)
	}
}

// exec runs a cloud command on the box and fails the test unless it is ok.
func (r *rig) exec(typ string, data any) {
	r.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmdN++
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rep, err := r.box.Execute(ctx, contract.Command{ID: fmt.Sprintf("cmd-%d", r.cmdN), Type: typ, Data: raw})
	if err != nil || !rep.OK {
		r.t.Fatalf("%s: %v %+v", typ, err, rep.Error)
	}
}

// events returns every event still in the history, oldest first.
func (r *rig) events() []contract.Event {
	r.t.Helper()
	evs, err := r.db.Recent(1000)
	if err != nil {
		r.t.Fatalf("recent: %v", err)
	}
	return evs
}

// eventsOf returns the data of every event of type typ.
func (r *rig) eventsOf(typ string) []map[string]any {
	r.t.Helper()
	var out []map[string]any
	for _, e := range r.events() {
		if e.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			r.t.Fatalf("event data: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// audited returns the command of every console.command event.
func (r *rig) audited() []string {
	var out []string
	for _, m := range r.eventsOf("console.command") {
		out = append(out, m["command"].(string))
	}
	return out
}

// makeRaw puts a terminal in raw mode, as a serial port is: no echo, no
// line editing, no CR/LF translation.
func makeRaw(t *testing.T, f *os.File) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("get termios: %v", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatalf("set termios: %v", err)
	}
}

// term is the technician's end of a pseudo-terminal whose other end a
// console session serves.
type term struct {
	t    *testing.T
	m    *os.File
	in   chan []byte
	buf  []byte
	done chan error // Serve's result

	waitOnce sync.Once
	err      error
}

// wait returns what Serve returned, waiting for it to return.
func (tm *term) wait() error {
	tm.waitOnce.Do(func() {
		select {
		case tm.err = <-tm.done:
		case <-time.After(waitFor):
			tm.err = fmt.Errorf("serve did not return")
		}
	})
	return tm.err
}

// open starts a session on a fresh pseudo-terminal in raw mode and reads its
// greeting.
func (r *rig) open() *term {
	r.t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		r.t.Fatalf("pty: %v", err)
	}
	makeRaw(r.t, s)
	ctx, cancel := context.WithCancel(context.Background())
	tm := r.attach(m)
	go func() { tm.done <- r.con.Serve(ctx, s) }()
	r.t.Cleanup(func() {
		cancel()
		if err := tm.wait(); err != nil {
			r.t.Errorf("serve: %v", err)
		}
		s.Close()
		m.Close()
	})
	tm.greeting()
	return tm
}

// attach reads the technician's end m in the background.
func (r *rig) attach(m *os.File) *term {
	tm := &term{t: r.t, m: m, in: make(chan []byte, 64), done: make(chan error, 1)}
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := m.Read(buf)
			if n > 0 {
				tm.in <- buf[:n]
			}
			if err != nil {
				close(tm.in)
				return
			}
		}
	}()
	return tm
}

func (tm *term) greeting() {
	tm.t.Helper()
	out := tm.until(func(b []byte) bool { return bytes.HasSuffix(b, []byte(promptOut)) })
	if !strings.HasPrefix(out, "SmartBox "+testBox+" console") {
		tm.t.Fatalf("greeting %q", out)
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.m.Write([]byte(s)); err != nil {
		tm.t.Fatalf("write: %v", err)
	}
}

// until reads until done says the output so far is complete, and returns
// it (consumed).
func (tm *term) until(done func([]byte) bool) string {
	tm.t.Helper()
	deadline := time.After(waitFor)
	for !done(tm.buf) {
		select {
		case b, ok := <-tm.in:
			if !ok {
				tm.t.Fatalf("terminal closed; got %q", tm.buf)
			}
			tm.buf = append(tm.buf, b...)
		case <-deadline:
			tm.t.Fatalf("timed out; got %q", tm.buf)
		}
	}
	out := string(tm.buf)
	tm.buf = nil
	return out
}

// answer reads one answer up to the next prompt and returns its lines
// (without the prompt) and the prompt.
func (tm *term) answer() ([]string, string) {
	tm.t.Helper()
	var prompt string
	out := tm.until(func(b []byte) bool {
		for _, p := range []string{promptOut, promptIn} {
			if bytes.HasSuffix(b, []byte(p)) {
				prompt = p
				return true
			}
		}
		return false
	})
	out = strings.TrimSuffix(out, prompt)
	body, ok := strings.CutPrefix(out, "\r\n")
	if !ok {
		tm.t.Fatalf("answer does not start on a new line: %q", out)
	}
	if body == "" {
		return nil, prompt
	}
	if !strings.HasSuffix(body, "\r\n") {
		tm.t.Fatalf("answer does not end with CR LF: %q", body)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
	return lines, prompt
}

// cmd sends one line and returns its answer's lines.
func (tm *term) cmd(line string) []string {
	tm.t.Helper()
	return tm.raw(line + "\r")
}

// raw sends bytes that end one line and returns its answer's lines, which
// must end with OK or ERR.
func (tm *term) raw(b string) []string {
	tm.t.Helper()
	tm.send(b)
	lines, _ := tm.answer()
	if len(lines) == 0 {
		tm.t.Fatalf("%q: empty answer", b)
	}
	if last := lines[len(lines)-1]; last != "OK" && !strings.HasPrefix(last, "ERR ") {
		tm.t.Fatalf("%q: answer ends with %q", b, last)
	}
	return lines
}

// mustOK runs a command that must succeed and returns its lines before OK.
func (tm *term) mustOK(line string) []string {
	tm.t.Helper()
	lines := tm.cmd(line)
	if lines[len(lines)-1] != "OK" {
		tm.t.Fatalf("%q: %q", line, lines)
	}
	return lines[:len(lines)-1]
}

// mustErr runs a command that must fail with code, with nothing but the ERR
// line, and returns that line.
func (tm *term) mustErr(line, code string) string {
	tm.t.Helper()
	lines := tm.cmd(line)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERR "+code+": ") {
		tm.t.Fatalf("%q: want one line ERR %s, got %q", line, code, lines)
	}
	return lines[0]
}

func (tm *term) login() {
	tm.t.Helper()
	tm.send("login " + testPIN + "\r")
	lines, prompt := tm.answer()
	if len(lines) == 0 || lines[len(lines)-1] != "OK" || prompt != promptIn {
		tm.t.Fatalf("login: %q, prompt %q", lines, prompt)
	}
}

// table finds the row of a table whose first cell is first and returns its
// cells.
func table(t *testing.T, lines []string, first string) []string {
	t.Helper()
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			return f
		}
	}
	t.Fatalf("no row %q in %q", first, lines)
	return nil
}
