package mqttlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`{"seq":5}`, 5, true},
		{` {"seq": 18446744073709551615} `, 18446744073709551615, true},
		{`{"seq":0}`, 0, true},
		{`{"seq":7,"box_id":"box-1"}`, 7, true},
		{`{"seq":"5"}`, 0, false},
		{`{"seq":-1}`, 0, false},
		{`{"seq":1.5}`, 0, false},
		{`{"seq":1e3}`, 0, false},
		{`{"seq":18446744073709551616}`, 0, false},
		{`{"seq":null}`, 0, false},
		{`{}`, 0, false},
		{`[5]`, 0, false},
		{`5`, 0, false},
		{`{"seq":5} {"seq":6}`, 0, false},
		{``, 0, false},
		{`{"seq":5,"pad":"` + strings.Repeat("x", maxAckPayload) + `"}`, 0, false},
	} {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			got, err := ParseAck([]byte(tc.in))
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("ParseAck = %d, %v; want %d ok=%v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadAck) {
				t.Errorf("error %v is not ErrBadAck", err)
			}
		})
	}
}

func FuzzAckPayload(f *testing.F) {
	for _, s := range []string{`{"seq":1}`, `{"seq":"1"}`, `{"seq":-1}`, `{}`, `null`, `{"seq":1,"seq":2}`, `{"seq":1e2}`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		seq, err := ParseAck(payload)
		if err != nil {
			if seq != 0 || !errors.Is(err, ErrBadAck) {
				t.Fatalf("failed parse returned %d, %v", seq, err)
			}
			return
		}
		if !json.Valid(payload) || len(payload) > maxAckPayload {
			t.Fatalf("accepted %q", payload)
		}
		again, err := ParseAck(fmt.Appendf(nil, `{"seq":%d}`, seq))
		if err != nil || again != seq {
			t.Fatalf("seq %d does not round-trip: %d %v", seq, again, err)
		}
	})
}

func TestPeekEnvelope(t *testing.T) {
	long := strings.Repeat("i", maxIDLen+1)
	for _, tc := range []struct {
		in, id, typ string
	}{
		{`{"id":"a","type":"sync.snapshot","data":{"x":[1,2,{"type":"no"}]}}`, "a", "sync.snapshot"},
		{`{"data":{"id":"inner"},"type":"bin.open","id":"b"}`, "b", "bin.open"},
		{`{"id":5,"type":["x"]}`, "", ""},
		{`{"id":"` + long + `","type":"t"}`, "", "t"},
		{`{"id":"c","type":"t","data":{"unterminated`, "c", "t"},
		{`{"type":"t","data":{"unterminated`, "", "t"},
		{`not json`, "", ""},
		{`["id","type"]`, "", ""},
		{`{"id":"d","id":"e"}`, "e", ""},
	} {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			id, typ := peekEnvelope([]byte(tc.in))
			if id != tc.id || typ != tc.typ {
				t.Errorf("peek = %q, %q; want %q, %q", id, typ, tc.id, tc.typ)
			}
		})
	}
}

func FuzzPeekEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"a","type":"sync.snapshot","data":{}}`))
	f.Add([]byte(`{"id":"a","type":1}`))
	f.Add([]byte(`{"id":"a"`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, typ := peekEnvelope(payload)
		if len(id) > maxIDLen {
			t.Fatalf("id of %d bytes", len(id))
		}
		// On a well-formed envelope the peek agrees with a full decode.
		var env struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if json.Unmarshal(payload, &env) == nil && len(env.ID) <= maxIDLen && validStrings(payload) {
			if id != env.ID || typ != env.Type {
				t.Fatalf("peek %q %q, decode %q %q", id, typ, env.ID, env.Type)
			}
		}
	})
}

// validStrings reports whether payload is an object whose "id" and "type"
// members, when present, are strings and appear once (where a full decode
// and the peek may rightly differ otherwise). Keys are compared as
// encoding/json does, case-insensitively.
func validStrings(payload []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return false
	}
	seen := map[string]int{}
	for k, v := range m {
		lk := strings.ToLower(k)
		if lk != "id" && lk != "type" {
			continue
		}
		seen[lk]++
		if k != lk {
			return false
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return false
		}
	}
	return seen["id"] <= 1 && seen["type"] <= 1 && !duplicateKeys(payload)
}

// duplicateKeys reports whether the top-level object repeats a key.
func duplicateKeys(payload []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if _, err := dec.Token(); err != nil {
		return true
	}
	keys := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return true
		}
		k := strings.ToLower(t.(string))
		if keys[k] {
			return true
		}
		keys[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return true
		}
	}
	return false
}

func publish(topic string, id uint16, payload string) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload = topic, 1, id, []byte(payload)
	return p
}

// TestSessionStore: the store hands packets back in the order they were
// stored, and reports the PUBACKs of event publishes only.
func TestSessionStore(t *testing.T) {
	var acked []string
	s := newSessionStore(prefix+"/events", func(p []byte) { acked = append(acked, string(p)) })
	s.Open()
	// Ids wrap around: the order is that of storing, not of the keys.
	for i, id := range []uint16{65535, 1, 2, 10} {
		s.Put(fmt.Sprintf("o.%d", id), publish(prefix+"/events", id, fmt.Sprintf(`{"seq":%d}`, i+1)))
	}
	s.Put("o.11", publish(prefix+"/state", 11, `{}`))
	s.Put("i.3", publish(prefix+"/cmd", 3, `{}`))
	want := []string{"o.65535", "o.1", "o.2", "o.10", "o.11", "i.3"}
	if got := s.All(); !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	if p := s.Get("o.2").(*packets.PublishPacket); string(p.Payload) != `{"seq":3}` {
		t.Errorf("Get o.2 = %s", p.Payload)
	}
	s.Del("o.1")  // PUBACK of an event
	s.Del("o.11") // PUBACK of a state publish
	s.Del("i.3")  // an inbound command, acknowledged
	s.Del("o.99") // nothing stored
	if !slices.Equal(acked, []string{`{"seq":2}`}) {
		t.Errorf("reported %v", acked)
	}
	if got := s.All(); !slices.Equal(got, []string{"o.65535", "o.2", "o.10"}) {
		t.Errorf("All after deletes = %v", got)
	}
	s.Reset()
	if len(s.All()) != 0 {
		t.Errorf("Reset left %v", s.All())
	}
}

// nopBox and nopOutbox let New be tested without a box.
type nopBox struct{ Box }
type nopOutbox struct{ Outbox }

func TestNewChecksConfig(t *testing.T) {
	ok := Config{Broker: "tcp://127.0.0.1:1883", BoxID: "box-1"}
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		field string
	}{
		{"no broker", func(c *Config) { c.Broker = "" }, "broker"},
		{"bad scheme", func(c *Config) { c.Broker = "http://127.0.0.1" }, "broker"},
		{"no host", func(c *Config) { c.Broker = "tcp://" }, "broker"},
		{"bad url", func(c *Config) { c.Broker = "tcp://[::1" }, "broker"},
		{"no box id", func(c *Config) { c.BoxID = "" }, "box_id"},
		{"bad box id", func(c *Config) { c.BoxID = "a/b" }, "box_id"},
		{"wildcard prefix", func(c *Config) { c.TopicPrefix = "a/#" }, "topic_prefix"},
		{"bad ack", func(c *Config) { c.Ack = "never" }, "ack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			_, err := New(cfg, nopBox{}, nopOutbox{})
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("err %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}

	l, err := New(Config{Broker: "ssl://user:secret@broker.example:8883", BoxID: "box-1"}, nopBox{}, nopOutbox{})
	if err != nil {
		t.Fatal(err)
	}
	c := l.cfg
	if c.TopicPrefix != "smartbox" || c.ClientID != "box-1" || c.Ack != AckCloud || c.InFlight != DefaultInFlight ||
		c.MaxPayload != DefaultMaxPayload || c.SnapshotMaxPayload != DefaultSnapshotMaxPayload || c.KeepAlive != DefaultKeepAlive {
		t.Errorf("defaults %+v", c)
	}
	if s := l.Stats(); strings.Contains(s.Broker, "secret") || s.Connected {
		t.Errorf("stats %+v", s)
	}
	if l.pahoBroker != "ssl://broker.example:8883" {
		t.Errorf("paho dials %q", l.pahoBroker)
	}
	if l.topics.ack != "smartbox/box-1/events/ack" || l.topics.reply != "smartbox/box-1/cmd/reply" {
		t.Errorf("topics %+v", l.topics)
	}
}
