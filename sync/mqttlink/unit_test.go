package mqttlink

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

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
		{"broker and brokers", func(c *Config) { c.Brokers = []string{"tcp://127.0.0.1:1883"} }, "broker"},
		{"bad second broker", func(c *Config) { c.Broker, c.Brokers = "", []string{"tcp://127.0.0.1:1883", "http://x"} }, "brokers[1]"},
		{"empty broker in list", func(c *Config) { c.Broker, c.Brokers = "", []string{""} }, "brokers[0]"},
		{"reconnect max below min", func(c *Config) { c.ReconnectMin, c.ReconnectMax = 2*time.Second, time.Second }, "reconnect_max"},
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
		c.KeepAlive != DefaultKeepAlive {
		t.Errorf("defaults %+v", c)
	}
	if s := l.Stats(); strings.Contains(s.Broker, "secret") || s.Connected {
		t.Errorf("stats %+v", s)
	}
	if b := l.brokers[0]; b.paho != "ssl://broker.example:8883" || !b.overTLS {
		t.Errorf("paho dials %+v", b)
	}
	if c.ReconnectMin != DefaultReconnectMin || c.ReconnectMax != DefaultReconnectMax {
		t.Errorf("reconnect defaults %v, %v", c.ReconnectMin, c.ReconnectMax)
	}
	if l.topics.Ack != "smartbox/box-1/events/ack" || l.topics.Reply != "smartbox/box-1/cmd/reply" {
		t.Errorf("topics %+v", l.topics)
	}
}

// TestBackoff: full jitter, the ceiling doubling from the least wait per
// failure up to the most, and the random draw spread over [0, ceiling).
func TestBackoff(t *testing.T) {
	const least, most = time.Second, time.Minute
	for _, tc := range []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0, 0},
		{0, 0.5, 500 * time.Millisecond},
		{0, 0.999, 999 * time.Millisecond},
		{1, 0.5, time.Second},
		{3, 0.25, 2 * time.Second},
		{5, 0.5, 16 * time.Second},
		{6, 0.5, 30 * time.Second}, // 64 s capped at 60 s
		{40, 0.5, 30 * time.Second},
		{1000, 0.999, 59940 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%d/%v", tc.failures, tc.r), func(t *testing.T) {
			if got := backoff(tc.failures, least, most, tc.r); got != tc.want {
				t.Errorf("backoff(%d, %v) = %v, want %v", tc.failures, tc.r, got, tc.want)
			}
		})
	}
}
