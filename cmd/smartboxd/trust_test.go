package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smartboxd/internal/mqtttest"
	"smartboxd/trust"
)

// signingCloud is a cloud that signs what it sends with its key, as a
// box with trust keys requires.
type signingCloud struct {
	*cloud
	name    string
	priv    ed25519.PrivateKey
	box     string
	counter uint64
}

func newSigningCloud(t *testing.T, b *mqtttest.Broker, box, name string) *signingCloud {
	_, priv, err := trust.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	signingClouds++
	c := mqtttest.Dial(t, b.URL(), mqtttest.WithClientID(fmt.Sprintf("cloud-%s-%s-%d", box, name, signingClouds)), mqtttest.WithCleanSession(false))
	p := "smartbox/" + box
	cl := &cloud{t: t, c: c, p: p, events: c.Subscribe(p + "/events"), replies: c.Subscribe(p + "/cmd/reply"), status: c.Subscribe(p + "/status")}
	return &signingCloud{cloud: cl, name: name, priv: priv, box: box}
}

// signingClouds numbers the signing clouds' client ids.
var signingClouds int

func (s *signingCloud) entry(roles string) string {
	return fmt.Sprintf("{name: %s, ed25519: %q, roles: [%s]}", s.name, trust.EncodePublicKey(s.priv.Public().(ed25519.PublicKey)), roles)
}

// signed is the JWS of a command with the next counter (or counter).
func (s *signingCloud) signed(id, typ string, data any, counter ...uint64) []byte {
	s.counter++
	n := s.counter
	if len(counter) > 0 {
		n = counter[0]
	}
	raw, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data, "box_id": s.box, "counter": n})
	return []byte(trust.Sign(s.priv, s.name, raw))
}

// send publishes a payload as a command and waits for the reply to id.
func (s *signingCloud) send(id string, payload []byte) map[string]any {
	s.t.Helper()
	s.c.Publish(s.t, s.p+"/cmd", 1, false, payload)
	return s.reply(id)
}

func (s *signingCloud) mustOK(typ string, data any) map[string]any {
	s.t.Helper()
	s.n++
	id := fmt.Sprintf("s-%s-%d", s.name, s.n)
	r := s.send(id, s.signed(id, typ, data))
	if r["ok"] != true {
		s.t.Fatalf("%s: %v", typ, r)
	}
	return r
}

func (s *signingCloud) signedAck(seq uint64) {
	raw, _ := json.Marshal(map[string]any{"box_id": s.box, "seq": seq})
	s.c.Publish(s.t, s.p+"/events/ack", 1, false, []byte(trust.Sign(s.priv, s.name, raw)))
}

// sealKey waits for the retained status and returns the box's seal_key.
func (s *signingCloud) sealKey() *[32]byte {
	s.t.Helper()
	var key *[32]byte
	s.status.WaitUntil(s.t, func(msgs []mqtttest.Message) bool {
		for _, m := range msgs {
			var st struct {
				Online  bool   `json:"online"`
				SealKey string `json:"seal_key"`
			}
			if json.Unmarshal(m.Payload, &st) == nil && st.Online {
				if raw, err := base64.StdEncoding.DecodeString(st.SealKey); err == nil && len(raw) == 32 {
					key = (*[32]byte)(raw)
					return true
				}
			}
		}
		return false
	}, 20*time.Second)
	return key
}

func seal(t *testing.T, to *[32]byte, code string) string {
	t.Helper()
	s, err := trust.Seal(to, []byte(code))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func errCode(r map[string]any) string {
	e, _ := r["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// stateOf waits for a retained state document matching pred.
func stateOf(t *testing.T, c *cloud, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	rec := c.c.Subscribe(c.p + "/state")
	var out map[string]any
	rec.WaitUntil(t, func(msgs []mqtttest.Message) bool {
		for i := len(msgs) - 1; i >= 0; i-- {
			var st map[string]any
			if json.Unmarshal(msgs[i].Payload, &st) == nil && pred(st) {
				out = st
				return true
			}
		}
		return false
	}, 20*time.Second)
	return out
}

// TestTrustOverMQTT plays an attacker who holds ordinary broker
// credentials against a box with trust keys, through a real mosquitto and
// the real daemon: nothing it sends is obeyed, its forged ack empties
// nothing, and the cloud's own signed commands still work, also after a
// restart that a replay cannot exploit.
func TestTrustOverMQTT(t *testing.T) {
	b := mqtttest.Start(t)
	const box = "box-trust"
	admin := newSigningCloud(t, b, box, "cloud")
	ops := newSigningCloud(t, b, box, "ops-7")
	stranger := newSigningCloud(t, b, box, "cloud") // the cloud's name, not its key
	attacker := mqtttest.Dial(t, b.URL(), mqtttest.WithClientID("intruder"))
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`box_id: %s
data_dir: %s
mqtt: {broker: %q, keepalive_s: 2}
hardware: {backend: sim, bins: [{id: 1}, {id: 2}]}
clock: {require_sync: false}
trust:
  keys:
    - %s
    - %s
  seal_codes: true
`, box, filepath.Join(dir, "data"), b.URL(), admin.entry("admin"), ops.entry("open")))
	d := startDaemon(t, cfg)
	admin.waitEvent("device.started", nil)
	sealTo := admin.sealKey()
	admin.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0A1B2C3D4E"})

	inject := func(id string, payload []byte) map[string]any {
		attacker.Publish(t, admin.p+"/cmd", 1, false, payload)
		return admin.reply(id)
	}
	plainCode := map[string]any{"access_code_id": "evil", "code": "1111", "name": "mine", "type": "ongoing", "key_id": "k1", "action": "dropoff"}
	for _, tc := range []struct {
		name, id, code string
		payload        []byte
	}{
		{"unsigned bin.open", "x1", "cmd.unauthenticated", []byte(`{"id":"x1","type":"bin.open","data":{"bin":1}}`)},
		{"unsigned empty snapshot", "x2", "cmd.unauthenticated", []byte(`{"id":"x2","type":"sync.snapshot","data":{"version":"0","keys":[],"access_codes":[]}}`)},
		{"a key of its own named cloud", "x3", "cmd.unauthenticated", stranger.signed("x3", "bin.open", map[string]any{"bin": 1})},
		{"another box's command", "x4", "cmd.wrong_box", func() []byte {
			raw, _ := json.Marshal(map[string]any{"id": "x4", "type": "bin.open", "data": map[string]any{"bin": 1}, "box_id": "box-other", "counter": 99})
			return []byte(trust.Sign(admin.priv, "cloud", raw))
		}()},
		{"an open key making a code", "x5", "cmd.forbidden", ops.signed("x5", "access_code.upsert", plainCode)},
		{"a plain code, signed", "x6", "code.plaintext", admin.signed("x6", "access_code.upsert", plainCode)},
	} {
		if r := inject(tc.id, tc.payload); r["ok"] != false || errCode(r) != tc.code {
			t.Errorf("%s: reply %v, want %s", tc.name, r, tc.code)
		}
	}
	// The attacker acks everything; the box counts the forged ack and
	// keeps its events.
	attacker.Publish(t, admin.p+"/events/ack", 1, false, []byte(`{"seq":999999999}`))
	st := stateOf(t, admin.cloud, func(st map[string]any) bool { return st["acks_refused"] == 1.0 })
	if depth := st["outbox"].(map[string]any)["depth"].(float64); depth < 2 {
		t.Fatalf("outbox depth %v after a forged ack", depth)
	}
	for _, e := range decodeEvents(admin.events.Messages()) {
		if e.Type == "bin.unlocked" || e.Type == "access_code.status" {
			t.Fatalf("an unobeyed command left %s %v", e.Type, e.Data)
		}
	}

	// The cloud's own signed commands work; the open key opens a bin.
	admin.mustOK("access_code.upsert", map[string]any{"access_code_id": "guest", "code_sealed": seal(t, sealTo, "4826"), "name": "guest",
		"type": "ongoing", "key_id": "k1", "action": "dropoff"})
	captured := ops.signed("open-1", "bin.open", map[string]any{"bin": 2})
	if r := ops.send("open-1", captured); r["ok"] != true {
		t.Fatalf("the open key's bin.open: %v", r)
	}
	admin.waitEvent("bin.unlocked", func(e event) bool { return e.Data["bin"] == 2.0 && e.Data["reason"] == "remote" })
	admin.signedAck(1 << 40) // clamped to what was published

	// After a restart the captured command's counter is still spent: under
	// a new id it is a replay, under its own id its stored reply.
	d.stop()
	d = startDaemon(t, cfg)
	admin.waitEvent("device.started", func(e event) bool { return e.Seq > 1 })
	raw, _ := json.Marshal(map[string]any{"id": "open-2", "type": "bin.open", "data": map[string]any{"bin": 2}, "box_id": box, "counter": ops.counter})
	if r := inject("open-2", []byte(trust.Sign(ops.priv, "ops-7", raw))); errCode(r) != "cmd.replayed" {
		t.Fatalf("a replayed counter after a restart: %v", r)
	}
	unlocks := map[uint64]bool{} // by seq: unacked events come again after the restart
	for _, e := range decodeEvents(admin.events.Messages()) {
		if e.Type == "bin.unlocked" {
			unlocks[e.Seq] = true
		}
	}
	if len(unlocks) != 1 {
		t.Fatalf("%d bin.unlocked events, want the one the open key asked for", len(unlocks))
	}
	d.stop()
	noRace(t, d)
}

// TestSealedCodesNeverInPlainText runs codes through a box with
// seal_codes: the cloud sends every code sealed, the box makes none, and
// no code is in any MQTT payload at all — commands and replies included —
// nor in the data directory or the debug log.
func TestSealedCodesNeverInPlainText(t *testing.T) {
	const (
		box      = "box-sealed"
		dropCode = "59370418264"
		pickCode = "2846193075"
		keyCode  = "9173640528"
		wrong    = "4815162342"
		fob      = "00DEC0DE42"
	)
	b := mqtttest.Start(t)
	spy := mqtttest.Dial(t, b.URL())
	all := spy.Subscribe("smartbox/#")
	admin := newSigningCloud(t, b, box, "cloud")
	reader, keypad := newFakeReader(t), newPort(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, fmt.Sprintf(`box_id: %s
data_dir: %s
mqtt: {broker: %q, keepalive_s: 2}
hardware: {backend: sim, bins: [{id: 1}, {id: 2}]}
readers: [{type: rdm6300, port: %s, bin: 1}]
keypad: {type: serial, port: %s}
timing: {fob_absent_ms: 300, dropoff_timeout_s: 5, inventory_settle_s: 1}
clock: {require_sync: false}
log: {level: debug}
trust:
  keys: [%s]
  seal_codes: true
`, box, data, b.URL(), reader.p.Name(), keypad.Name(), admin.entry("admin")))
	d := startDaemon(t, cfg)
	admin.waitEvent("device.started", nil)
	to := admin.sealKey()
	admin.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	admin.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": fob})
	admin.mustOK("access_code.upsert", map[string]any{"access_code_id": "drop", "code_sealed": seal(t, to, dropCode), "name": "host", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	admin.mustOK("access_code.upsert", map[string]any{"access_code_id": "pick", "code_sealed": seal(t, to, pickCode), "name": "guest", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	v := admin.mustOK("key.upsert", map[string]any{"key_id": "v1", "name": "Garage", "virtual": true, "key_code_sealed": seal(t, to, keyCode)})
	if strings.Contains(fmt.Sprint(v), "key_code\":") {
		t.Fatalf("the reply carries a key code: %v", v)
	}
	typeCode := func(code string) { keypad.Master.Write([]byte(code + "#")) }
	typeCode(dropCode)
	admin.waitEvent("bin.unlocked", func(e event) bool { return e.Data["reason"] == "dropoff" })
	reader.put(fob)
	admin.waitEvent("key.dropped_off", nil)
	typeCode(wrong)
	admin.waitEvent("code.rejected", nil)
	typeCode(pickCode)
	admin.waitEvent("bin.unlocked", func(e event) bool { return e.Data["reason"] == "pickup" })
	reader.take()
	admin.waitEvent("key.picked_up", nil)
	d.stop()
	noRace(t, d)

	codes := []string{dropCode, pickCode, keyCode, wrong}
	leaks := func(where string, blob []byte) {
		t.Helper()
		for _, c := range codes {
			if bytes.Contains(blob, []byte(c)) {
				t.Errorf("code %s is in %s", c, where)
			}
		}
	}
	n := 0
	for _, m := range all.Messages() {
		leaks(m.Topic, m.Payload)
		n++
	}
	if n < 10 {
		t.Fatalf("only %d payloads seen", n)
	}
	files, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if blob, err := os.ReadFile(filepath.Join(data, f.Name())); err == nil {
			leaks(f.Name(), blob)
		}
	}
	leaks("the daemon's log", []byte(d.out.String()))
}
