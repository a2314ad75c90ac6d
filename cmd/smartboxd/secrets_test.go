package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smartboxd/internal/mqtttest"
)

// TestSecretsNeverLeave runs a day at the box — access codes made, changed
// and deleted over MQTT, codes typed at the keypad (right, wrong, stale),
// a console login with a wrong PIN and the right one, a virtual key whose
// key code the box makes and which is then used — and then looks for every
// code and PIN in the database file and everything beside it, in the
// daemon's debug log, and in every payload the daemon published. None is
// anywhere, except the generated key code in the one reply that returns it.
func TestSecretsNeverLeave(t *testing.T) {
	const (
		pin      = "80467193"
		wrongPIN = "52917364"
		dropCode = "59370418264"
		pickOld  = "73920581"
		pickNew  = "2846193075"
		timeCode = "6081735294"
		vDrop    = "9173640528"
		wrong    = "4815162342"
		fob      = "00DEC0DE42"
	)
	b := mqtttest.Start(t)
	spy := mqtttest.Dial(t, b.URL())
	all := spy.Subscribe("smartbox/#")
	readers := []*fakeReader{newFakeReader(t), newFakeReader(t)}
	keypad, con := newPort(t), newPort(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, fmt.Sprintf(`box_id: box-sec
data_dir: %s
mqtt: {broker: %q, keepalive_s: 2}
console: {port: %s, technician_pin: %q}
hardware:
  backend: sim
  bins: [{id: 1}, {id: 2}]
readers:
  - {type: rdm6300, port: %s, bin: 1}
  - {type: rdm6300, port: %s, bin: 2}
keypad: {type: serial, port: %s}
timing: {fob_absent_ms: 300, dropoff_timeout_s: 5, inventory_settle_s: 1}
clock: {require_sync: false}
log: {level: debug}
`, data, b.URL(), con.Name(), pin, readers[0].p.Name(), readers[1].p.Name(), keypad.Name()))
	d := startDaemon(t, cfg)
	c := newCloud(t, b, "box-sec")
	cons := newConsoleClient(t, con)
	c.waitEvent("device.started", nil)

	now := time.Now().UTC()
	c.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	c.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": fob})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "drop", "code": dropCode, "name": "host", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "pick", "code": pickOld, "name": "guest", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "pick", "code": pickNew, "name": "guest", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "window", "code": timeCode, "name": "cleaner", "type": "time_bound",
		"starts_at": now.Add(-time.Hour).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339), "key_id": "k1", "action": "pickup"})

	// The box makes the virtual key's code and says it once; the same
	// command again gets the stored reply, without it.
	vkey := map[string]any{"key_id": "v1", "name": "Garage code", "virtual": true}
	made := c.mustOK("key.upsert", vkey)
	keyCode, _ := made["result"].(map[string]any)["key_code"].(string)
	if len(keyCode) != 8 {
		t.Fatalf("no generated key code in %v", made)
	}
	again := c.resend("key.upsert", vkey)
	if again["ok"] != true || strings.Contains(fmt.Sprint(again), keyCode) {
		t.Fatalf("the repeated command's reply: %v", again)
	}
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "vdrop", "code": vDrop, "name": "garage", "type": "ongoing", "key_id": "v1", "action": "dropoff"})

	typeCode := func(code string) { keypad.Master.Write([]byte(code + "#")) }
	last := uint64(0)
	next := func(typ string, pred func(event) bool) event {
		t.Helper()
		e := c.waitEvent(typ, func(e event) bool { return e.Seq > last && (pred == nil || pred(e)) })
		last = e.Seq
		return e
	}
	reason := func(r string) func(event) bool { return func(e event) bool { return e.Data["reason"] == r } }

	typeCode(dropCode)
	next("bin.unlocked", reason("dropoff"))
	readers[0].put(fob)
	next("key.dropped_off", nil)
	typeCode(timeCode)
	next("bin.unlocked", reason("pickup"))
	readers[0].take()
	next("key.picked_up", func(e event) bool { return e.Data["access_code_id"] == "window" })
	typeCode(dropCode)
	next("bin.unlocked", reason("dropoff"))
	readers[0].put(fob)
	next("key.dropped_off", nil)
	typeCode(pickOld)
	next("code.rejected", reason("code.unknown"))
	typeCode(wrong)
	next("code.rejected", reason("code.unknown"))
	typeCode(pickNew)
	next("bin.unlocked", reason("pickup"))
	readers[0].take()
	next("key.picked_up", func(e event) bool { return e.Data["access_code_id"] == "pick" })
	typeCode(vDrop)
	next("bin.unlocked", reason("dropoff"))
	next("key.dropped_off", func(e event) bool { return e.Data["key_id"] == "v1" })
	typeCode(keyCode)
	next("key.picked_up", func(e event) bool { return e.Data["key_id"] == "v1" && e.Data["via"] == "key_code" })
	c.mustOK("access_code.delete", map[string]any{"access_code_id": "window"})

	if ans := cons.do("login " + wrongPIN); !strings.Contains(ans, "ERR console.pin_invalid") {
		t.Fatalf("wrong PIN: %q", ans)
	}
	if ans := cons.do("login " + pin); !strings.Contains(ans, "\r\nOK\r\n") {
		t.Fatalf("login: %q", ans)
	}
	for _, line := range []string{"status", "bins", "keys", "codes", "events 200", pin, "open " + pickNew} {
		cons.do(line)
	}
	cons.do("logout")
	next("console.command", func(e event) bool { return e.Data["command"] == "logout" })
	d.stop()
	noRace(t, d)

	secrets := map[string]string{"PIN": pin, "wrong PIN": wrongPIN, "drop-off code": dropCode, "old pickup code": pickOld,
		"pickup code": pickNew, "time-bound code": timeCode, "virtual drop-off code": vDrop, "wrong entry": wrong}
	leaks := func(where string, blob []byte, keyCodeToo bool) {
		t.Helper()
		for name, s := range secrets {
			if bytes.Contains(blob, []byte(s)) {
				t.Errorf("the %s %s is in %s", name, s, where)
			}
		}
		if keyCodeToo && bytes.Contains(blob, []byte(keyCode)) {
			t.Errorf("the generated key code %s is in %s", keyCode, where)
		}
	}

	// Every file, the backup in its folder included.
	err := filepath.WalkDir(data, func(path string, f fs.DirEntry, err error) error {
		if err != nil || f.IsDir() {
			return err
		}
		blob, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		leaks(f.Name(), blob, true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(data, "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret file: %v %v", fi.Mode(), err)
	}
	log := d.out.String()
	if !strings.Contains(log, "level=DEBUG") {
		t.Fatal("the daemon logged nothing at debug level")
	}
	leaks("the daemon's log", []byte(log), true)

	withKeyCode := 0
	for _, m := range all.Messages() {
		if m.Topic == c.p+"/cmd" {
			continue // the cloud's own commands carry the codes
		}
		leaks(m.Topic+" payload "+string(m.Payload), m.Payload, false)
		if bytes.Contains(m.Payload, []byte(keyCode)) {
			withKeyCode++
			if m.Topic != c.p+"/cmd/reply" || !bytes.Contains(m.Payload, []byte(`"key_code":"`+keyCode+`"`)) {
				t.Errorf("the generated key code is in %s: %s", m.Topic, m.Payload)
			}
		}
	}
	if withKeyCode != 1 {
		t.Errorf("the generated key code is in %d published payloads, want exactly the one reply", withKeyCode)
	}
}

// resend publishes a command again under the id of the last one sent and
// returns the reply to this copy.
func (c *cloud) resend(typ string, data any) map[string]any {
	c.t.Helper()
	id := fmt.Sprintf("t-%d", c.n)
	n := c.replies.Len()
	raw, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	c.c.Publish(c.t, c.p+"/cmd", 1, false, raw)
	var out map[string]any
	c.replies.WaitUntil(c.t, func(msgs []mqtttest.Message) bool {
		for _, m := range msgs[n:] {
			var r map[string]any
			if json.Unmarshal(m.Payload, &r) == nil && r["id"] == id {
				out = r
				return true
			}
		}
		return false
	}, 20*time.Second)
	return out
}
