package console

import (
	"errors"
	"fmt"
	"slices"
	"smartboxd/contract"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestNewRefusesBadConfig(t *testing.T) {
	box := &fakeBox{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no box", Config{PINHash: testHash}},
		{"no PIN hash", Config{Box: box}},
		{"PIN in plain text", Config{Box: box, PINHash: testPIN}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
	if _, err := New(Config{Box: box, PINHash: testHash}); err != nil {
		t.Fatalf("New with box and hash: %v", err)
	}
}

func TestBeforeLogin(t *testing.T) {
	r := newRig(t)
	tm := r.open()

	help := tm.mustOK("help")
	for _, want := range []string{"login PIN", "status", "open BIN", "events [N]", "sim door BIN open|closed"} {
		if !slices.ContainsFunc(help, func(l string) bool { return strings.HasPrefix(l, want+" ") }) {
			t.Errorf("help lacks %q: %q", want, help)
		}
	}
	if !strings.HasPrefix(help[0], "log in first") {
		t.Errorf("help before login should say to log in first: %q", help[0])
	}

	for _, line := range []string{"status", "bins", "open 1", "keys", "codes", "events 5", "sync",
		"readers", "logout", "sim key 1234#", "sim fob 1 0A1B2C3D4E", "sim door 2 open", "frobnicate", "STATUS"} {
		t.Run(line, func(t *testing.T) {
			if got := tm.mustErr(line, contract.CodeConsoleLoginRequired); got != "ERR console.login_required: log in first" {
				t.Errorf("got %q", got)
			}
		})
	}
	r.flush()
	if p := r.locks.pulses(); len(p) != 0 {
		t.Errorf("a lock moved before login: %v", p)
	}
	if got := r.sim.keys(); got != "" {
		t.Errorf("keys pressed before login: %q", got)
	}
	if a := r.audited(); len(a) != 0 {
		t.Errorf("commands audited before login: %q", a)
	}
	if n := len(r.eventsOf("bin.unlocked")); n != 0 {
		t.Errorf("%d bin.unlocked events before login", n)
	}
}

func TestLogin(t *testing.T) {
	r := newRig(t)
	tm := r.open()

	tm.mustErr("login", contract.CodeConsoleUsage)
	tm.mustErr("login 1 2", contract.CodeConsoleUsage)
	if got := tm.mustErr("login 135791", contract.CodeConsolePINInvalid); strings.Contains(got, "135791") {
		t.Errorf("a wrong PIN was shown: %q", got)
	}
	tm.mustErr("status", contract.CodeConsoleLoginRequired)

	tm.send("login " + testPIN + "\r")
	lines, prompt := tm.answer()
	if want := []string{"logged in to " + testBox, "OK"}; !slices.Equal(lines, want) || prompt != promptIn {
		t.Fatalf("login: %q prompt %q, want %q prompt %q", lines, prompt, want, promptIn)
	}
	tm.mustOK("status")

	tm.send("logout\r")
	lines, prompt = tm.answer()
	if !slices.Equal(lines, []string{"logged out", "OK"}) || prompt != promptOut {
		t.Fatalf("logout: %q prompt %q", lines, prompt)
	}
	tm.mustErr("status", contract.CodeConsoleLoginRequired)

	// A login while logged in logs out first: a wrong PIN ends the session.
	tm.login()
	tm.mustErr("login 000000", contract.CodeConsolePINInvalid)
	tm.mustErr("status", contract.CodeConsoleLoginRequired)

	var oks []any
	for _, m := range r.eventsOf("console.login") {
		oks = append(oks, m["ok"])
	}
	if want := []any{false, true, true, false}; !slices.Equal(oks, want) {
		t.Errorf("console.login events ok = %v, want %v", oks, want)
	}
	for _, e := range r.events() {
		if strings.Contains(string(e.Data), testPIN) {
			t.Errorf("the PIN is in event %s: %s", e.Type, e.Data)
		}
	}
}

func TestLockout(t *testing.T) {
	r := newRig(t)
	tm := r.open()

	for i := 1; i <= 4; i++ {
		tm.mustErr(fmt.Sprintf("login 99999%d", i), contract.CodeConsolePINInvalid)
	}
	until := t0.Add(30 * time.Second).Format(time.RFC3339)
	if got, want := tm.mustErr("login 999995", contract.CodeConsoleLockedOut), "ERR console.locked_out: try again after "+until+" (in 30s)"; got != want {
		t.Errorf("fifth wrong PIN: %q, want %q", got, want)
	}
	// Locked out: the right PIN is refused too.
	tm.mustErr("login "+testPIN, contract.CodeConsoleLockedOut)
	tm.mustErr("status", contract.CodeConsoleLoginRequired)

	r.clock.Advance(29 * time.Second)
	r.flush()
	if got := tm.mustErr("login "+testPIN, contract.CodeConsoleLockedOut); !strings.HasSuffix(got, "(in 1s)") {
		t.Errorf("one second before the end: %q", got)
	}
	r.clock.Advance(time.Second)
	r.flush()
	tm.login()
	tm.mustOK("bins")

	var got []string
	for _, m := range r.eventsOf("console.login") {
		got = append(got, fmt.Sprintf("ok=%v locked_out=%v", m["ok"], m["locked_out"]))
	}
	want := []string{
		"ok=false locked_out=<nil>", "ok=false locked_out=<nil>", "ok=false locked_out=<nil>",
		"ok=false locked_out=<nil>", "ok=false locked_out=<nil>",
		"ok=false locked_out=true", "ok=false locked_out=true",
		"ok=true locked_out=<nil>",
	}
	if !slices.Equal(got, want) {
		t.Errorf("console.login events:\n got %q\nwant %q", got, want)
	}
	if n := len(r.eventsOf("console.locked_out")); n != 1 {
		t.Errorf("%d console.locked_out events, want 1", n)
	}
}

func TestIdleLogout(t *testing.T) {
	r := newRig(t) // IdleLogout left at its default
	tm := r.open()
	tm.login()

	r.clock.Advance(DefaultIdleLogout - time.Second)
	// Still logged in; this command starts the idle time again.
	if lines := tm.mustOK("bins"); lines[0] == "logged out (idle)" {
		t.Fatalf("logged out early: %q", lines)
	}
	r.clock.Advance(DefaultIdleLogout - time.Second)
	tm.mustOK("keys")

	r.clock.Advance(DefaultIdleLogout)
	lines, prompt := tm.answer()
	if !slices.Equal(lines, []string{"logged out (idle)"}) || prompt != promptOut {
		t.Fatalf("after idling: %q prompt %q", lines, prompt)
	}
	tm.mustErr("status", contract.CodeConsoleLoginRequired)

	// Logged out sessions have no idle timer to fire.
	r.clock.Advance(2 * DefaultIdleLogout)
	tm.login()
	tm.mustOK("status")
}

// deafClock is a fake clock whose timers never fire, so only the check at
// each line can notice an idle session.
type deafClock struct{ *clockwork.FakeClock }

func (deafClock) NewTimer(time.Duration) clockwork.Timer { return deafTimer{} }

type deafTimer struct{}

func (deafTimer) Chan() <-chan time.Time   { return nil }
func (deafTimer) Reset(time.Duration) bool { return false }
func (deafTimer) Stop() bool               { return false }

func TestIdleLogoutCheckedAtEachLine(t *testing.T) {
	var clock deafClock
	r := newRig(t, func(c *Config) {
		clock = deafClock{c.Clock.(*clockwork.FakeClock)}
		c.Clock = clock
		c.IdleLogout = time.Minute
	})
	tm := r.open()
	tm.login()
	r.clock.Advance(59 * time.Second)
	tm.mustOK("status")
	r.clock.Advance(time.Minute)
	lines := tm.cmd("bins")
	if want := []string{"logged out (idle)", "ERR console.login_required: log in first"}; !slices.Equal(lines, want) {
		t.Fatalf("a line after the idle time: %q, want %q", lines, want)
	}
	if a := r.audited(); slices.Contains(a, "bins") {
		t.Errorf("a command after the idle time was audited: %q", a)
	}
}

func TestOpen(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()

	if got := tm.mustOK("open 3"); !slices.Equal(got, []string{"bin 3 unlocked"}) {
		t.Errorf("open 3: %q", got)
	}
	r.flush()
	if p := r.locks.pulses(); !slices.Equal(p, []int{3}) {
		t.Errorf("pulses %v, want [3]", p)
	}
	ev := r.eventsOf("bin.unlocked")
	if len(ev) != 1 || ev[0]["bin"] != 3.0 || ev[0]["reason"] != "console" {
		t.Errorf("bin.unlocked events %v, want one for bin 3 with reason console", ev)
	}

	tests := []struct{ line, code string }{
		{"open 9", contract.CodeBinNotFound},
		{"open 0", contract.CodeBinNotFound},
		{"open -1", contract.CodeBinNotFound},
		{"open x", contract.CodeConsoleUsage},
		{"open 1.5", contract.CodeConsoleUsage},
		{"open 99999999999999999999999", contract.CodeConsoleUsage},
		{"open", contract.CodeConsoleUsage},
		{"open 1 2", contract.CodeConsoleUsage},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) { tm.mustErr(tc.line, tc.code) })
	}
	r.flush()
	if p := r.locks.pulses(); len(p) != 1 {
		t.Errorf("bad bin numbers moved locks: %v", p)
	}
}

func TestBinsAndSim(t *testing.T) {
	r := newRig(t)
	r.exec("key.upsert", map[string]any{"key_id": "k1", "name": "Front", "serial_number": "0A1B2C3D4E"})
	tm := r.open()
	tm.login()

	tm.mustOK("open 1")
	if row := table(t, tm.mustOK("bins"), "1"); row[1] != "open" {
		t.Errorf("bin 1 after open: %q", row)
	}
	if got := tm.mustOK("sim fob 1 0a1b2c3d4e"); !slices.Equal(got, []string{"fob 0A1B2C3D4E at bin 1"}) {
		t.Errorf("sim fob: %q", got)
	}
	lines := tm.mustOK("bins")
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"BIN", "STATE", "KEY", "FOB", "LOCK", "DOOR"}) {
		t.Errorf("header %q", lines[0])
	}
	if row := table(t, lines, "1"); !slices.Equal(row, []string{"1", "occupied", "k1", "0A1B2C3D4E", "locked", "unknown"}) {
		t.Errorf("bin 1 after a fob: %q", row)
	}
	if row := table(t, lines, "2"); !slices.Equal(row, []string{"2", "empty", "-", "-", "locked", "unknown"}) {
		t.Errorf("bin 2: %q", row)
	}
	if len(lines) != 4 {
		t.Errorf("bins table has %d lines, want a header and 3 bins: %q", len(lines), lines)
	}
	// The columns are aligned.
	col := strings.Index(lines[0], "FOB")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned with the header %q", l, lines[0])
		}
	}
	if ev := r.eventsOf("key.dropped_off"); len(ev) != 1 || ev[0]["key_id"] != "k1" || ev[0]["bin"] != 1.0 {
		t.Errorf("key.dropped_off events %v", ev)
	}

	// The fob leaves the closed bin: once the reader's view has held, the
	// box follows it.
	if got := tm.mustOK("sim nofob 1"); !slices.Equal(got, []string{"no fob at bin 1"}) {
		t.Errorf("sim nofob: %q", got)
	}
	r.clock.Advance(3 * time.Second)
	r.flush()
	if row := table(t, tm.mustOK("bins"), "1"); row[1] != "empty" {
		t.Errorf("bin 1 after the fob left: %q", row)
	}
	if ev := r.eventsOf("inventory.mismatch"); len(ev) != 1 || ev[0]["seen"] != nil {
		t.Errorf("inventory.mismatch events %v", ev)
	}

	if got := tm.mustOK("sim door 2 open"); !slices.Equal(got, []string{"door 2 open"}) {
		t.Errorf("sim door: %q", got)
	}
	if row := table(t, tm.mustOK("bins"), "2"); row[5] != "open" {
		t.Errorf("bin 2 after its door opened: %q", row)
	}
	tm.mustOK("sim door 2 closed")
	if row := table(t, tm.mustOK("bins"), "2"); row[5] != "closed" {
		t.Errorf("bin 2 after its door closed: %q", row)
	}

	tests := []struct{ line, code string }{
		{"sim", contract.CodeConsoleUsage},
		{"sim fly", contract.CodeConsoleUsage},
		{"sim fob 1", contract.CodeConsoleUsage},
		{"sim fob 1 XYZ1", contract.CodeKeySerialInvalid},
		{"sim fob 1 ABC", contract.CodeKeySerialInvalid},
		{"sim fob 1 0123456789ABCDEF01234", contract.CodeKeySerialInvalid},
		{"sim fob 9 0A1B", contract.CodeBinNotFound},
		{"sim fob x 0A1B", contract.CodeConsoleUsage},
		{"sim nofob 9", contract.CodeBinNotFound},
		{"sim door 9 open", contract.CodeBinNotFound},
		{"sim door 2 ajar", contract.CodeConsoleUsage},
		{"sim key", contract.CodeConsoleUsage},
		{"sim key 12a4", contract.CodeConsoleUsage},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) { tm.mustErr(tc.line, tc.code) })
	}
	if doors := r.sim.doors; !slices.Equal(doors, []string{"2:true", "2:false"}) {
		t.Errorf("doors moved: %q", doors)
	}
}

func TestSimKey(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	if got := tm.mustOK("sim key 48213579#"); !slices.Equal(got, []string{"9 keys pressed"}) {
		t.Errorf("sim key: %q", got)
	}
	if got := r.sim.keys(); got != "48213579#" {
		t.Errorf("keys pressed %q", got)
	}
	// The entry reached the box, which knows no such code.
	if ev := r.eventsOf("code.rejected"); len(ev) != 1 || ev[0]["reason"] != contract.CodeCodeUnknown {
		t.Errorf("code.rejected events %v", ev)
	}
}

func TestSimNeedsTheSimBackend(t *testing.T) {
	r := newRig(t, withoutSim())
	tm := r.open()
	tm.login()
	if help := tm.mustOK("help"); slices.ContainsFunc(help, func(l string) bool { return strings.HasPrefix(l, "sim") }) {
		t.Errorf("help offers sim commands without the sim backend: %q", help)
	}
	tm.mustErr("sim key 1234#", contract.CodeConsoleUnknown)
	tm.mustErr("sim fob 1 0A1B", contract.CodeConsoleUnknown)
	if a := r.audited(); !slices.Equal(a, []string{"help", "sim", "sim"}) {
		t.Errorf("audited %q", a)
	}
}

func TestKeys(t *testing.T) {
	r := newRig(t)
	r.exec("key.upsert", map[string]any{"key_id": "k1", "name": "Front", "serial_number": "0a1b2c3d4e"})
	r.exec("settings.set", map[string]any{"key_codes_enabled": true})
	r.exec("key.upsert", map[string]any{"key_id": "k2", "name": "Van", "virtual": true})
	tm := r.open()
	tm.login()
	lines := tm.mustOK("keys")
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"KEY", "NAME", "FOB", "BIN", "VIRTUAL"}) {
		t.Errorf("header %q", lines[0])
	}
	if row := table(t, lines, "k1"); !slices.Equal(row, []string{"k1", "Front", "0A1B2C3D4E", "-", "no"}) {
		t.Errorf("k1: %q", row)
	}
	if row := table(t, lines, "k2"); !slices.Equal(row, []string{"k2", "Van", "-", "-", "yes"}) {
		t.Errorf("k2: %q", row)
	}
	if last := lines[len(lines)-1]; last != "2 keys" {
		t.Errorf("last line %q", last)
	}
}

func TestCodesNeverShowTheCode(t *testing.T) {
	r := newRig(t)
	r.exec("key.upsert", map[string]any{"key_id": "k1", "name": "Front"})
	r.exec("access_code.upsert", map[string]any{"access_code_id": "ac1", "code": "13579246", "name": "Cleaner",
		"type": "ongoing", "key_id": "k1", "action": "pickup"})
	r.exec("access_code.upsert", map[string]any{"access_code_id": "ac2", "code": "86420975", "name": "Courier",
		"type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(2 * time.Hour), "key_id": "k1", "action": "dropoff"})
	tm := r.open()
	tm.login()
	lines := tm.mustOK("codes")
	out := strings.Join(lines, "\n")
	for _, code := range []string{"13579246", "86420975"} {
		if strings.Contains(out, code) {
			t.Errorf("codes shows the code %s:\n%s", code, out)
		}
	}
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"ID", "NAME", "TYPE", "STATUS", "WINDOW", "KEY", "ACTION"}) {
		t.Errorf("header %q", lines[0])
	}
	if row := table(t, lines, "ac1"); !slices.Equal(row, []string{"ac1", "Cleaner", "ongoing", "set", "-", "k1", "pickup"}) {
		t.Errorf("ac1: %q", row)
	}
	row := table(t, lines, "ac2")
	if want := []string{"ac2", "Courier", "time_bound", row[3], "2026-11-22T11:00Z..2026-11-22T12:00Z", "k1", "dropoff"}; !slices.Equal(row, want) {
		t.Errorf("ac2: %q, want %q", row, want)
	}
	if last := lines[len(lines)-1]; last != "2 access codes" {
		t.Errorf("last line %q", last)
	}
}

func TestCodesShowAtMost50(t *testing.T) {
	r := newRig(t)
	r.exec("key.upsert", map[string]any{"key_id": "k1", "name": "Front"})
	for i := range 55 {
		r.exec("access_code.upsert", map[string]any{"access_code_id": fmt.Sprintf("ac%02d", i), "code": fmt.Sprintf("5%07d", i*7919),
			"name": "n", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	}
	tm := r.open()
	tm.login()
	lines := tm.mustOK("codes")
	if len(lines) != 52 {
		t.Errorf("%d lines, want a header, 50 rows and a count", len(lines))
	}
	if last := lines[len(lines)-1]; last != "50 of 55 access codes shown" {
		t.Errorf("last line %q", last)
	}
}

func TestEvents(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	tm.mustOK("open 3")
	tm.mustOK("bins")

	lines := tm.mustOK("events 5")
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"SEQ", "TIME", "TYPE", "DATA"}) {
		t.Errorf("header %q", lines[0])
	}
	rows := lines[1:]
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5: %q", len(rows), rows)
	}
	all := r.events()
	want := all[len(all)-5:]
	for i, ev := range want {
		f := strings.Fields(rows[i])
		if f[0] != fmt.Sprint(ev.Seq) || f[1] != ev.At.Format("2006-01-02T15:04:05.000Z") || f[2] != ev.Type {
			t.Errorf("row %d %q, want seq %d type %s", i, rows[i], ev.Seq, ev.Type)
		}
	}
	if last := rows[4]; !strings.HasSuffix(last, `console.command  {"command":"events 5"}`) {
		t.Errorf("the newest event should be the audit of this command: %q", last)
	}
	if !strings.Contains(rows[2], `bin.unlocked`) || !strings.Contains(rows[2], `{"bin":3,"reason":"console"}`) {
		t.Errorf("row 2 %q, want the console's bin.unlocked", rows[2])
	}

	if n := len(tm.mustOK("events")) - 1; n != min(len(r.events()), defaultEvents) {
		t.Errorf("events without N: %d rows", n)
	}
	if n := len(tm.mustOK("events 100000")) - 1; n != len(r.events()) {
		t.Errorf("events 100000: %d rows, want all %d", n, len(r.events()))
	}
	for _, line := range []string{"events 0", "events -3", "events x", "events 1 2"} {
		t.Run(line, func(t *testing.T) { tm.mustErr(line, contract.CodeConsoleUsage) })
	}
}

func TestReaders(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	lines := tm.mustOK("readers")
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"NAME", "TYPE", "BIN", "FRAMES", "BAD", "NOISE", "REOPENS", "PRESENT", "FAULT"}) {
		t.Errorf("header %q", lines[0])
	}
	row := table(t, lines, "/dev/ttyUSB0")
	if want := []string{"/dev/ttyUSB0", "rdm6300", "1", "1234", "5", "17", "1", "0A1B2C3D4E"}; !slices.Equal(row[:8], want) {
		t.Errorf("rdm6300 row %q, want %q", row, want)
	}
	if !strings.HasSuffix(lines[1], "ok (last: read: i/o error)") {
		t.Errorf("a recovered reader: %q", lines[1])
	}
	row = table(t, lines, "wiegand:GPIO5")
	if want := []string{"wiegand:GPIO5", "wiegand", "2", "7", "2", "3", "0", "-", "FAULT:"}; !slices.Equal(row[:9], want) {
		t.Errorf("wiegand row %q, want %q", row, want)
	}
	if !strings.HasSuffix(lines[2], "FAULT: line stuck low") {
		t.Errorf("a faulted reader: %q", lines[2])
	}

	r2 := newRig(t, func(c *Config) { c.Readers = nil })
	tm2 := r2.open()
	tm2.login()
	if got := tm2.mustOK("readers"); !slices.Equal(got, []string{"no readers"}) {
		t.Errorf("without readers: %q", got)
	}
}

func TestSync(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	lines := tm.mustOK("sync")
	o, err := r.db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"connected": "yes", "broker": testBroker, "last ack": "41", "in flight": "2",
		"published": "43", "reconnects": "3", "last error": "eof",
		"outbox": fmt.Sprintf("%d events", o.Depth), "last seq": fmt.Sprint(o.LastSeq), "acked seq": "0",
	}
	got := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "  ")
		got[k] = strings.TrimSpace(v)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sync %s = %q, want %q (%q)", k, got[k], v, lines)
		}
	}

	r2 := newRig(t, func(c *Config) { c.Sync = nil })
	tm2 := r2.open()
	tm2.login()
	if got := tm2.mustOK("sync"); !strings.HasPrefix(got[0], "mqtt") || !strings.HasSuffix(got[0], "off (no broker configured)") {
		t.Errorf("an offline box: %q", got)
	}
	if row := strings.Join(table(t, tm2.mustOK("status"), "mqtt"), " "); row != "mqtt off (no broker configured)" {
		t.Errorf("status of an offline box: %q", row)
	}
}

func TestStatus(t *testing.T) {
	r := newRig(t)
	r.exec("key.upsert", map[string]any{"key_id": "k1", "name": "Front"})
	tm := r.open()
	tm.login()
	r.clock.Advance(90 * time.Second)
	lines := tm.mustOK("status")
	o, err := r.db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"box":     "box-test",
		"version": "1.2.3",
		"boot":    "id boot-1",
		"uptime":  "1h31m30s",
		"time":    "2026-11-22T10:01:30Z",
		"clock":   "synced",
		"mqtt":    "connected to " + testBroker,
		"outbox":  fmt.Sprintf("%d events, oldest 2026-11-22T10:00:00Z", o.Depth),
		"bins":    "3: 3 empty, 0 occupied, 0 open",
		"keys":    "1",
		"access":  "codes 0",
	}
	for k, v := range want {
		if got := strings.Join(table(t, lines, k)[1:], " "); got != v {
			t.Errorf("status %s = %q, want %q", k, got, v)
		}
	}
	if o.Depth < 3 {
		t.Errorf("outbox depth %d: the test needs events in it", o.Depth)
	}
}

func TestAuditEveryCommand(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	lines := []string{
		"status", "BINS", "open 3", "keys", "codes", "events 2", "sync", "readers", "help",
		"sim key 48213579#", "sim key 4821*", "sim fob 2 0a1b2c3d", "sim nofob 2", "sim door 2 open",
		"open 9", "open   1    x", "frobnicate now", "246810", "x13579246", "open 13579246", "events 97531",
		"logout",
	}
	for _, l := range lines {
		tm.cmd(l)
	}
	want := []string{
		"status", "bins", "open 3", "keys", "codes", "events 2", "sync", "readers", "help",
		"sim key ***", "sim key ***", "sim fob 2 0a1b2c3d", "sim nofob 2", "sim door 2 open",
		"open 9", "open 1 x", "frobnicate", "***", "***", "open ***", "events ***",
		"logout",
	}
	if got := r.audited(); !slices.Equal(got, want) {
		t.Errorf("audited:\n got %q\nwant %q", got, want)
	}
	for _, e := range r.events() {
		for _, secret := range []string{"48213579", "4821", testPIN, "13579246", "97531"} {
			if strings.Contains(string(e.Data), secret) {
				t.Errorf("event %d %s holds %q: %s", e.Seq, e.Type, secret, e.Data)
			}
		}
	}
}

func TestAuditFailureRunsNothing(t *testing.T) {
	box := &fakeBox{auditErr: &contract.Error{Code: contract.CodeStoreUnavailable, Message: "disk gone"},
		storeErr: "write smartbox.db: no space left on device"}
	out := serveBytes(t, box, "login "+testPIN+"\r\nopen 1\r\nsim fob 1 ABCD\r\nstatus\r\nlogout\r\nstatus\r\n")
	for _, want := range []string{
		"\r\nERR store.unavailable: disk gone\r\n",
		// Looking still works, so the technician can see what is wrong.
		"warning: not recorded: store.unavailable: disk gone",
		"REFUSING WRITES: no bin opens",
		"database error: write smartbox.db: no space left on device",
		"\r\nlogged out\r\nOK\r\n",
		"\r\nERR console.login_required: log in first\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	if len(box.opened) != 0 {
		t.Errorf("an unaudited command opened bins %v", box.opened)
	}
	if n := strings.Count(out, "ERR store.unavailable"); n != 2 {
		t.Errorf("open and sim should both be refused; %d refusals:\n%q", n, out)
	}
}

func TestErrorsPrintTheirCode(t *testing.T) {
	box := &fakeBox{keysErr: errors.New("bbolt: tx closed")}
	out := serveBytes(t, box, "login "+testPIN+"\r\nkeys\r\nopen 7\r\n")
	for _, want := range []string{
		"\r\nERR internal: bbolt: tx closed\r\n",
		"\r\nERR bin.notFound: no bin 7\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
}

func TestNoise(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()
	tests := []struct {
		name, send, code string
	}{
		{"binary bytes", "\x00\x01\xfe\xffstatus\r", contract.CodeConsoleNoise},
		{"binary only", "\x00\x80\x9b\xff\r", contract.CodeConsoleNoise},
		{"escape sequence", "\x1b[Aopen 1\r", contract.CodeConsoleNoise},
		{"UTF-8", "öpen 1\r", contract.CodeConsoleNoise},
		{"over-long line", strings.Repeat("a", 300) + "\r", contract.CodeConsoleLineTooLong},
		{"over-long open", "open 1" + strings.Repeat(" ", MaxLine) + "\r", contract.CodeConsoleLineTooLong},
		{"over-long with noise", strings.Repeat("\x00b", 400) + "\r", contract.CodeConsoleLineTooLong},
		{"unknown command", "frobnicate\r", contract.CodeConsoleUnknown},
		{"bad bin", "open 99\r", contract.CodeBinNotFound},
		{"bad bin number", "open one\r", contract.CodeConsoleUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm.send(tc.send)
			lines, prompt := tm.answer()
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERR "+tc.code+": ") || prompt != promptIn {
				t.Fatalf("want one line ERR %s, got %q prompt %q", tc.code, lines, prompt)
			}
		})
	}
	// The line at the limit still runs, and the session is unharmed.
	if got := tm.mustOK("status" + strings.Repeat(" ", MaxLine-len("status"))); len(got) < 5 {
		t.Errorf("a line of %d bytes: %q", MaxLine, got)
	}
	r.flush()
	if p := r.locks.pulses(); len(p) != 0 {
		t.Errorf("noise moved locks: %v", p)
	}
	if a := r.audited(); !slices.Equal(a, []string{"frobnicate", "open 99", "open one", "status"}) {
		t.Errorf("audited %q", a)
	}
}

func TestLineEditing(t *testing.T) {
	r := newRig(t)
	tm := r.open()
	tm.login()

	// CR LF ends one line, not two: the next answer is the next command's.
	if lines := tm.raw("statx\bus\r\n"); !strings.HasPrefix(lines[0], "box ") {
		t.Fatalf("status after a backspace: %q", lines)
	}
	if lines := tm.mustOK("bins"); !strings.HasPrefix(lines[0], "BIN") {
		t.Fatalf("after CR LF: %q", lines)
	}
	if lines := tm.raw("binsss\x7f\x7f\n"); !strings.HasPrefix(lines[0], "BIN") {
		t.Fatalf("bins after DEL: %q", lines)
	}
	if lines := tm.raw("garbage\x15keys\r\n"); !strings.HasPrefix(lines[0], "KEY") {
		t.Fatalf("keys after Ctrl-U: %q", lines)
	}
	if lines := tm.raw("events\t2\r\x00"); len(lines) != 4 {
		t.Fatalf("events with a tab: %q", lines)
	}
	tm.send("open 1\x03")
	if out := tm.until(func(b []byte) bool { return strings.HasSuffix(string(b), promptIn) }); out != "^C\r\n"+promptIn {
		t.Fatalf("Ctrl-C: %q", out)
	}
	tm.send("\r\n\r")
	want := "\r\n" + promptIn + "\r\n" + promptIn
	if out := tm.until(func(b []byte) bool { return len(b) >= len(want) }); out != want {
		t.Fatalf("two empty lines: %q, want %q", out, want)
	}
	if lines := tm.mustOK("keys"); !strings.HasPrefix(lines[0], "KEY") {
		t.Fatalf("after empty lines: %q", lines)
	}
	r.flush()
	if p := r.locks.pulses(); len(p) != 0 {
		t.Errorf("an abandoned line moved locks: %v", p)
	}
	if a := r.audited(); !slices.Equal(a, []string{"status", "bins", "bins", "keys", "events 2", "keys"}) {
		t.Errorf("audited %q", a)
	}
}

func TestEditor(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []line
	}{
		{"CR", "a\rb\r", []line{{text: "a"}, {text: "b"}}},
		{"LF", "a\nb\n", []line{{text: "a"}, {text: "b"}}},
		{"CR LF once", "a\r\nb\r\n", []line{{text: "a"}, {text: "b"}}},
		{"CR NUL once", "a\r\x00b\r", []line{{text: "a"}, {text: "b"}}},
		{"LF CR twice", "a\n\rb\n", []line{{text: "a"}, {}, {text: "b"}}},
		{"CR CR twice", "a\r\r", []line{{text: "a"}, {}}},
		{"backspace", "ab\bc\r", []line{{text: "ac"}}},
		{"DEL", "ab\x7f\x7f\x7fc\r", []line{{text: "c"}}},
		{"kill", "abc\x15d\r", []line{{text: "d"}}},
		{"interrupt", "abc\x03d\r", []line{{interrupt: true}, {text: "d"}}},
		{"tab", "a\tb\r", []line{{text: "a b"}}},
		{"noise counted", "a\x00\x1b\xffb\r", []line{{text: "ab", noise: 3}}},
		{"noise cleared by kill", "a\x00\x15b\r", []line{{text: "b"}}},
		{"at the limit", strings.Repeat("x", MaxLine) + "\r", []line{{text: strings.Repeat("x", MaxLine)}}},
		{"over the limit", strings.Repeat("x", MaxLine+1) + "\r", []line{{tooLong: true}}},
		{"over the limit then backspace", strings.Repeat("x", MaxLine+1) + "\b\b\r", []line{{tooLong: true}}},
		{"after an over-long line", strings.Repeat("x", MaxLine+5) + "\rok\r", []line{{tooLong: true}, {text: "ok"}}},
		{"unfinished", "abc", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e editor
			var got []line
			for _, b := range []byte(tc.in) {
				if l, ok := e.feed(b); ok {
					got = append(got, l)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAuditText(t *testing.T) {
	tests := []struct {
		word  string
		args  []string
		known bool
		want  string
	}{
		{"open", []string{"3"}, true, "open 3"},
		{"open", []string{"1234"}, true, "open ***"},
		{"events", []string{"500"}, true, "events 500"},
		{"sim", []string{"key", "12"}, true, "sim key ***"},
		{"sim", []string{"KEY", "#", "extra"}, true, "sim KEY *** ***"},
		{"sim", []string{"fob", "1", "12345678"}, true, "sim fob 1 12345678"},
		{"sim", []string{"door", "2", "open"}, true, "sim door 2 open"},
		{"status", []string{"246810"}, true, "status ***"},
		{"probe", []string{"a", "b"}, false, "probe"},
		{"246810", nil, false, "***"},
		{"pin246810", nil, false, "***"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := auditText(tc.word, tc.args, tc.known); got != tc.want {
				t.Errorf("auditText(%q, %q) = %q, want %q", tc.word, tc.args, got, tc.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"tab\there\nand\x1b[2J", 40, "tab here and [2J"},
		{"Schlüssel", 40, "Schlüssel"},
		{"abcdef", 3, "abc~"},
		{"abc", 3, "abc"},
	}
	for _, tc := range tests {
		if got := clean(tc.in, tc.max); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
