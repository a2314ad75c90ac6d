package democloud

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net"
	"smartboxd/trust"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"smartboxd/offline"
)

// syncBuffer is an io.Writer safe for the cloud's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProvisionsAcksAndPrints plays the box with a plain MQTT client: the
// cloud provisions it when it comes online, acks its events and prints
// events and replies.
func TestProvisionsAcksAndPrints(t *testing.T) {
	addr := freeAddr(t)
	out := &syncBuffer{}
	now := time.Date(2026, 5, 1, 14, 20, 0, 0, time.UTC)
	c, err := Start(Config{Listen: addr, BoxID: "b1", Provision: true, Out: out, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var mu sync.Mutex
	var cmds []map[string]any
	var acks []uint64
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("b1")
	box := paho.NewClient(opts)
	if tok := box.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer box.Disconnect(100)
	sub := func(topic string, fn func([]byte)) {
		tok := box.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			mu.Lock()
			defer mu.Unlock()
			fn(m.Payload())
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	pub, err := trust.ParsePublicKey(DemoPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(kid string) (ed25519.PublicKey, bool) { return pub, kid == DemoKeyName }
	verified := func(p []byte) map[string]any {
		_, payload, err := trust.Verify(p, lookup)
		if err != nil {
			t.Errorf("not signed by the demo key: %v", err)
			return nil
		}
		var m map[string]any
		json.Unmarshal(payload, &m)
		return m
	}
	sub("smartbox/b1/cmd", func(p []byte) { cmds = append(cmds, verified(p)) })
	sub("smartbox/b1/events/ack", func(p []byte) {
		if m := verified(p); m != nil && m["box_id"] == "b1" {
			seq, _ := m["seq"].(float64)
			acks = append(acks, uint64(seq))
		}
	})
	publish := func(topic, payload string) {
		if tok := box.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	id, err := trust.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	publish("smartbox/b1/status", `{"online":true,"version":"test","seal_key":"`+id.Public()+`"}`)
	waitFor(t, "provisioning", func() bool { mu.Lock(); defer mu.Unlock(); return len(cmds) == len(Provisioning) })
	mu.Lock()
	last := 0.0
	for i, cmd := range cmds {
		if cmd["id"] != Provisioning[i]["id"] || cmd["type"] != Provisioning[i]["type"] || cmd["box_id"] != "b1" {
			t.Fatalf("command %d: %v", i, cmd)
		}
		if n, _ := cmd["counter"].(float64); n <= last {
			t.Fatalf("command %d: counter %v after %v", i, cmd["counter"], last)
		} else {
			last = n
		}
		data, _ := cmd["data"].(map[string]any)
		want, _ := Provisioning[i]["data"].(map[string]any)
		for _, field := range []string{"code", "key_code"} {
			plain, has := want[field].(string)
			if !has {
				continue
			}
			if _, leaked := data[field]; leaked {
				t.Fatalf("command %d sends %s in plain text", i, field)
			}
			sealed, _ := data[field+"_sealed"].(string)
			if got, err := id.Open(sealed); err != nil || string(got) != plain {
				t.Fatalf("command %d: %s_sealed opens to %q, %v", i, field, got, err)
			}
		}
	}
	mu.Unlock()

	publish("smartbox/b1/events", `{"id":"e1","box_id":"b1","seq":1,"type":"bin.unlocked","at":"2026-01-01T00:00:00Z","data":{"bin":3,"reason":"pickup"}}`)
	publish("smartbox/b1/events", `{"id":"e2","box_id":"b1","seq":2,"type":"key.picked_up","at":"2026-01-01T00:00:01Z","data":{"bin":3,"key_id":"front-door","via":"access_code"}}`)
	waitFor(t, "acks", func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) == 2 })
	mu.Lock()
	if acks[0] != 1 || acks[1] != 2 {
		t.Fatalf("acks %v", acks)
	}
	mu.Unlock()
	publish("smartbox/b1/cmd/reply", `{"id":"demo-2","ok":false,"error":{"code":"key.serialNumber.taken","message":"the fob belongs to another key"}}`)
	waitFor(t, "printed reply", func() bool { return strings.Contains(out.String(), "ERR key.serialNumber.taken") })
	text := out.String()
	for _, want := range []string{"box     b1 online", "#1    bin.unlocked", "bin=3 reason=pickup", "key.picked_up", "key_id=front-door"} {
		if !strings.Contains(text, want) {
			t.Fatalf("output lacks %q:\n%s", want, text)
		}
	}
	// The offline codes printed are the box's codes for its offline key.
	for _, oc := range OfflineCodes {
		code, err := offline.Generate(OfflineKey, "b1", oc.KeyID, oc.Mode, 4, now)
		if err != nil {
			t.Fatal(err)
		}
		want := "offline code " + code + ": " + oc.Mode.String() + " of " + oc.KeyID + ", 2026-05-01T14:00:00Z to 2026-05-02T14:00:00Z"
		if !strings.Contains(text, want) {
			t.Fatalf("output lacks %q:\n%s", want, text)
		}
	}
	if c.Acked() != 2 {
		t.Fatalf("acked %d", c.Acked())
	}
}
