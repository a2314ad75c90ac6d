package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smartboxd/internal/mqtttest"
)

// faultsBin is the daemon built with -tags faults, made on first use.
var (
	faultsOnce sync.Once
	faultsBin  string
	faultsErr  error
)

func faultsDaemon(t *testing.T) string {
	t.Helper()
	faultsOnce.Do(func() {
		faultsBin = filepath.Join(filepath.Dir(binPath), "smartboxd-faults")
		out, err := exec.Command("go", "build", "-tags", "faults", "-o", faultsBin, ".").CombinedOutput()
		if err != nil {
			faultsErr = fmt.Errorf("build -tags faults: %v\n%s", err, out)
		}
	})
	if faultsErr != nil {
		t.Fatal(faultsErr)
	}
	return faultsBin
}

// A panic on the decision loop (here: the store's write panics, as on a
// corrupt database) halts every lock, a coil mid-pulse included, before
// the daemon exits with an error.
func TestPanicHaltsEveryLock(t *testing.T) {
	bin := faultsDaemon(t)
	dir := t.TempDir()
	con := newPort(t)
	const pin = "135790"
	cfg := writeConfig(t, dir, fmt.Sprintf(`box_id: box-panic
data_dir: %s
console: {port: %s, technician_pin: %q}
hardware: {backend: sim, bins: [{id: 1}, {id: 2}]}
keypad: {type: sim}
timing: {lock_pulse_ms: 5000}
`, filepath.Join(dir, "data"), con.Name(), pin))
	trigger, pins := filepath.Join(dir, "panic-now"), filepath.Join(dir, "pins")
	d := startBinary(t, bin, cfg, "SMARTBOXD_FAULT_PANIC_FILE="+trigger, "SMARTBOXD_FAULT_PINS="+pins)
	c := newConsoleClient(t, con)
	waitFor(t, 20*time.Second, "the console", func() bool { return strings.Contains(c.do("help"), "OK") })
	if ans := c.do("login " + pin); !strings.Contains(ans, "\r\nOK\r\n") {
		t.Fatalf("login: %q", ans)
	}
	if ans := c.do("open 1"); !strings.Contains(ans, "OK") {
		t.Fatalf("open 1: %q", ans)
	}
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.p.Master.Write([]byte("sim key 1234#\r")) // a rejected entry: a write, which panics
	code := d.waitExit()
	if code != 1 {
		t.Errorf("exit status %d, want 1 (an error, not a crash)", code)
	}
	raw, err := os.ReadFile(pins)
	if err != nil {
		t.Fatalf("no report of the halt: %v", err)
	}
	report := string(raw)
	if !strings.Contains(report, "energised [1]\n") {
		t.Errorf("lock 1 was not energised at the panic, the test proves nothing:\n%s", report)
	}
	for _, want := range []string{"lock 1 Low\n", "lock 2 Low\n"} {
		if !strings.Contains(report, want) {
			t.Errorf("after the panic, want %q in:\n%s", want, report)
		}
	}
	if !strings.Contains(d.out.String(), "panic: every lock halted") {
		t.Errorf("the panic is not logged")
	}
}

// corruptPages overwrites every nth page of a file with random bytes.
func corruptPages(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	page := int64(os.Getpagesize())
	junk := make([]byte, page)
	r := rand.New(rand.NewPCG(13, 7))
	for off := int64(0); off < fi.Size(); off += int64(n) * page {
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		f.WriteAt(junk, off)
	}
}

// With every 7th page of its database corrupted, the daemon moves the file
// aside, starts on its backup (or empty when there is none), says so, and
// serves.
func TestCorruptDatabaseRestored(t *testing.T) {
	b := mqtttest.Start(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: box-db\ndata_dir: %s\nmqtt: {broker: %q, keepalive_s: 2}\nhardware:\n  bins: [{id: 1}, {id: 2}]\n", data, b.URL()))
	c := newCloud(t, b, "box-db")
	d := startDaemon(t, cfg)
	c.waitEvent("device.started", nil)
	keys := make([]any, 300)
	for i := range keys {
		keys[i] = map[string]any{"key_id": fmt.Sprintf("key-%03d", i), "name": strings.Repeat("n", 40)}
	}
	c.mustOK("sync.snapshot", map[string]any{"version": "1", "keys": keys})
	waitFor(t, 20*time.Second, "the backup after the snapshot", func() bool {
		return strings.Contains(d.out.String(), `why=snapshot`)
	})
	c.mustOK("key.upsert", map[string]any{"key_id": "after-backup", "name": "x"})
	d.stop()

	for _, tc := range []struct{ name, from string }{{"backup", "backup"}, {"no backup", "empty"}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.from == "empty" {
				os.RemoveAll(filepath.Join(data, "backup"))
			}
			corruptPages(t, filepath.Join(data, "smartbox.db"), 7)
			n := len(c.events.Messages())
			d := startDaemon(t, cfg)
			var restored event
			c.events.WaitUntil(t, func(msgs []mqtttest.Message) bool {
				for _, e := range decodeEvents(msgs[min(n, len(msgs)):]) {
					if e.Type == "store.restored" {
						restored = e
						return true
					}
				}
				return false
			}, 20*time.Second)
			if restored.Data["from"] != tc.from || !strings.HasPrefix(fmt.Sprint(restored.Data["moved_to"]), "smartbox.db.corrupt-") {
				t.Fatalf("store.restored %v", restored.Data)
			}
			if _, err := os.Stat(filepath.Join(data, restored.Data["moved_to"].(string))); err != nil {
				t.Errorf("the corrupt file was not kept: %v", err)
			}
			r := c.mustOK("state.get", nil)
			var st struct {
				Keys  int `json:"keys"`
				Mode  string
				Store struct {
					OK       bool   `json:"ok"`
					Restored string `json:"restored"`
				} `json:"store"`
			}
			raw, _ := json.Marshal(r["result"])
			json.Unmarshal(raw, &st)
			wantKeys := map[string]int{"backup": 300, "empty": 0}[tc.from]
			if st.Store.Restored != tc.from || !st.Store.OK || st.Keys != wantKeys {
				t.Errorf("state %s, want restored %s and %d keys", raw, tc.from, wantKeys)
			}
			c.mustOK("key.upsert", map[string]any{"key_id": "works", "name": "x"})
			// The file put back is older than the one lost: no seq the
			// lost one published may name another event now.
			c.waitEvent("key.updated", func(e event) bool { return dataString(e, "key_id") == "works" })
			msgs := c.events.Messages()
			before := map[uint64]string{}
			for _, e := range decodeEvents(msgs[:n]) {
				before[e.Seq] = e.ID
			}
			for _, e := range decodeEvents(msgs[n:]) {
				if id, ok := before[e.Seq]; ok && id != e.ID {
					t.Fatalf("after the restore seq %d names %s (id %s); before it was id %s", e.Seq, e.Type, e.ID, id)
				}
			}
			d.stop()
			boltCheck(t, filepath.Join(data, "smartbox.db"))
		})
	}
}

// After three unclean starts in a row the box starts in safe mode: keypad
// off, console and cloud on, "mode":"safe" in the state; a clean stop ends
// it.
func TestSafeModeAfterUncleanStarts(t *testing.T) {
	b := mqtttest.Start(t)
	dir := t.TempDir()
	con := newPort(t)
	const pin = "135790"
	cfg := writeConfig(t, dir, fmt.Sprintf(`box_id: box-safe
data_dir: %s
mqtt: {broker: %q, keepalive_s: 2}
console: {port: %s, technician_pin: %q}
hardware: {backend: sim, bins: [{id: 1}, {id: 2}]}
keypad: {type: sim}
`, filepath.Join(dir, "data"), b.URL(), con.Name(), pin))
	c := newCloud(t, b, "box-safe")
	// start runs the daemon and waits until it is online.
	start := func() *daemon {
		n := len(c.status.Messages())
		d := startDaemon(t, cfg)
		c.status.WaitUntil(t, func(msgs []mqtttest.Message) bool {
			for _, m := range msgs[min(n, len(msgs)):] {
				if strings.Contains(string(m.Payload), `"online":true`) {
					return true
				}
			}
			return false
		}, 20*time.Second)
		return d
	}
	mode := func() string {
		r := c.mustOK("state.get", nil)
		return fmt.Sprint(r["result"].(map[string]any)["mode"])
	}
	for i := range 3 {
		d := start()
		if m := mode(); m != "normal" {
			t.Fatalf("start %d: mode %s", i+1, m)
		}
		d.kill()
	}
	d := start()
	if m := mode(); m != "safe" {
		t.Fatalf("after 3 unclean starts: mode %s", m)
	}
	c.waitEvent("device.safe_mode", func(e event) bool { return e.Data["unclean_starts"] == 3.0 })
	cons := newConsoleClient(t, con)
	if ans := cons.do("login " + pin); !strings.Contains(ans, "\r\nOK\r\n") {
		t.Fatalf("console login in safe mode: %q", ans)
	}
	n := len(c.events.Messages())
	if ans := cons.do("sim key 1234#"); !strings.Contains(ans, "OK") {
		t.Fatalf("sim key: %q", ans)
	}
	c.mustOK("state.get", nil) // the loop has had the entry, if it got one
	for _, e := range decodeEvents(c.events.Messages()[n:]) {
		if e.Type == "code.rejected" {
			t.Fatalf("the keypad decided an entry in safe mode: %v", e)
		}
	}
	d.stop()
	d = start()
	if m := mode(); m != "normal" {
		t.Fatalf("after a clean stop: mode %s", m)
	}
	d.stop()
}
