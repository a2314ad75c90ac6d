package democloud

import (
	"bytes"
	"encoding/json"
	"net"
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
	sub("smartbox/b1/cmd", func(p []byte) {
		var m map[string]any
		json.Unmarshal(p, &m)
		cmds = append(cmds, m)
	})
	sub("smartbox/b1/events/ack", func(p []byte) {
		var a struct{ Seq uint64 }
		json.Unmarshal(p, &a)
		acks = append(acks, a.Seq)
	})
	pub := func(topic, payload string) {
		if tok := box.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	pub("smartbox/b1/status", `{"online":true,"version":"test"}`)
	waitFor(t, "provisioning", func() bool { mu.Lock(); defer mu.Unlock(); return len(cmds) == len(Provisioning) })
	mu.Lock()
	for i, cmd := range cmds {
		if cmd["id"] != Provisioning[i]["id"] || cmd["type"] != Provisioning[i]["type"] {
			t.Fatalf("command %d: %v", i, cmd)
		}
	}
	mu.Unlock()

	pub("smartbox/b1/events", `{"id":"e1","box_id":"b1","seq":1,"type":"bin.unlocked","at":"2026-01-01T00:00:00Z","data":{"bin":3,"reason":"pickup"}}`)
	pub("smartbox/b1/events", `{"id":"e2","box_id":"b1","seq":2,"type":"key.picked_up","at":"2026-01-01T00:00:01Z","data":{"bin":3,"key_id":"front-door","via":"access_code"}}`)
	waitFor(t, "acks", func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) == 2 })
	mu.Lock()
	if acks[0] != 1 || acks[1] != 2 {
		t.Fatalf("acks %v", acks)
	}
	mu.Unlock()
	pub("smartbox/b1/cmd/reply", `{"id":"demo-2","ok":false,"error":{"code":"key.serialNumber.taken","message":"the fob belongs to another key"}}`)
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
