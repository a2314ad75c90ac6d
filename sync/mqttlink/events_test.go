package mqttlink

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/internal/mqtttest"
)

func ack(t testing.TB, cloud *mqtttest.Client, seq uint64) {
	t.Helper()
	cloud.Publish(t, prefix+"/events/ack", 1, false, fmt.Appendf(nil, `{"seq":%d}`, seq))
}

// TestEventsInOrderAndAcked: events go out in seq order with their stored
// payloads, and an ack empties the outbox, which the state then shows.
func TestEventsInOrderAndAcked(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	state := cloud.Subscribe(prefix + "/state")
	l := startLink(t, b, br.URL())

	first := decodeEvents(t, events.WaitFor(t, 1, wait))[0]
	if first.Seq != 1 || first.Type != "device.started" {
		t.Fatalf("first event %+v", first)
	}
	b.addKeys(1, 20)
	evs := decodeEvents(t, events.WaitUntil(t, reaches(21), wait))
	checkStream(t, evs, 1, 21)
	// The payload is the stored event, verbatim.
	stored, err := b.db.Pending(0, 1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("pending: %v %v", stored, err)
	}
	if got := events.Messages()[0].Payload; string(got) != string(stored[0].Payload) {
		t.Errorf("published %s, stored %s", got, stored[0].Payload)
	}
	if b.outbox().Depth != 21 {
		t.Errorf("outbox depth before the ack %d", b.outbox().Depth)
	}

	ack(t, cloud, 21)
	eventually(t, "outbox empty", func() bool { return b.outbox().Depth == 0 })
	eventually(t, "stats", func() bool { s := l.Stats(); return s.LastAck == 21 && s.InFlight == 0 })
	state.WaitUntil(t, func(msgs []mqtttest.Message) bool {
		var s contract.State
		return json.Unmarshal(msgs[len(msgs)-1].Payload, &s) == nil && s.Outbox.Depth == 0
	}, wait)
	if s := l.Stats(); s.Published < 21 || s.Broker != br.URL() {
		t.Errorf("stats %+v", s)
	}
}

// TestInFlightWindow: no more than InFlight events are out unacked; each
// ack lets as many more go.
func TestInFlightWindow(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	b.addKeys(1, 9) // seqs 2..10 behind device.started
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL(), func(c *Config) { c.InFlight = 3; c.AckTimeout = time.Hour })

	events.WaitFor(t, 3, wait)
	eventually(t, "window full", func() bool { return l.Stats().InFlight == 3 })
	ack(t, cloud, 2)
	// Stats are taken after the loop has drained for the ack.
	eventually(t, "ack applied", func() bool { return l.Stats().LastAck == 2 })
	if s := l.Stats(); s.Published != 5 || s.InFlight != 3 {
		t.Fatalf("after acking 2 of 3: %+v, want 5 published and 3 in flight", s)
	}
	checkStream(t, decodeEvents(t, events.WaitFor(t, 5, wait)), 1, 5)
	if d := b.outbox().Depth; d != 8 {
		t.Errorf("outbox depth %d, want 8", d)
	}
}

// TestAckTimeoutRepublishes: while connected but without acks (the cloud is
// down), the link publishes the unacked events again after AckTimeout,
// with the same ids.
func TestAckTimeoutRepublishes(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	b.addKeys(1, 2)
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL(), func(c *Config) { c.AckTimeout = 200 * time.Millisecond })

	// paho may resend what was published as the connection came up, so
	// copies on the wire prove nothing; the link's own count does.
	eventually(t, "republished", func() bool { return l.Stats().Published >= 6 })
	if len(l.logs.lines("not acknowledged in time")) == 0 {
		t.Errorf("the republish was not logged")
	}
	evs := decodeEvents(t, events.WaitFor(t, 6, wait))
	checkStream(t, evs, 1, 3)
	ack(t, cloud, 3)
	eventually(t, "outbox empty", func() bool { return b.outbox().Depth == 0 })
}

// TestAckBroker: in broker mode events leave the outbox on the broker's
// PUBACK, with no ack from the cloud.
func TestAckBroker(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL(), func(c *Config) { c.Ack = AckBroker; c.InFlight = 4; c.AckTimeout = time.Hour })
	b.addKeys(1, 30)
	checkStream(t, decodeEvents(t, events.WaitUntil(t, reaches(31), wait)), 1, 31)
	eventually(t, "outbox drained by PUBACKs", func() bool { return b.outbox().Depth == 0 })
	eventually(t, "stats", func() bool { s := l.Stats(); return s.LastAck == 31 && s.InFlight == 0 })
}

// TestAcksMalformedAndBeyond: malformed acks are logged and change
// nothing; an ack beyond the last published seq counts up to it only.
func TestAcksMalformedAndBeyond(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	b.addKeys(1, 2)
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL(), func(c *Config) { c.AckTimeout = time.Hour })
	events.WaitFor(t, 3, wait)

	for _, p := range []string{`nope`, `{"seq":"3"}`, `{"seq":-1}`, `{"seq":2.5}`, `{}`, `[3]`} {
		cloud.Publish(t, prefix+"/events/ack", 1, false, []byte(p))
	}
	eventually(t, "malformed acks logged", func() bool {
		n := 0
		for _, line := range l.logs.lines("malformed event acks") {
			var c int
			if _, err := fmt.Sscanf(line[strings.Index(line, "count=")+len("count="):], "%d", &c); err == nil {
				n += c
			}
		}
		return n == 6
	})
	if d := b.outbox().Depth; d != 3 {
		t.Fatalf("outbox depth %d after malformed acks, want 3", d)
	}

	ack(t, cloud, 1000)
	eventually(t, "clamped ack applied", func() bool { return l.Stats().LastAck == 3 })
	if d := b.outbox().Depth; d != 0 {
		t.Errorf("outbox depth %d", d)
	}
	// The next event is not covered by the ack that came before it.
	b.addKeys(10, 1)
	evs := decodeEvents(t, events.WaitUntil(t, reaches(4), wait))
	if last := evs[len(evs)-1]; last.Seq != 4 {
		t.Fatalf("next event %+v", last)
	}
	if d := b.outbox().Depth; d != 1 {
		t.Errorf("outbox depth %d after a new event, want 1", d)
	}
}

// TestBrokerRestart: the broker goes away while the box keeps working and
// comes back; every event arrives, first copies in seq order, no gaps.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	// The cloud keeps a persistent session, as a real one would.
	cloud := mqtttest.Dial(t, br.URL(), mqtttest.WithClientID("cloud"), mqtttest.WithCleanSession(false))
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL(), func(c *Config) { c.InFlight = 8 })
	b.addKeys(1, 5)
	events.WaitUntil(t, reaches(6), wait)

	// Activity while the broker stops...
	stopped := make(chan struct{})
	go func() { br.Stop(); close(stopped) }()
	b.addKeys(100, 5)
	<-stopped
	eventually(t, "link sees the loss", func() bool { return !l.Stats().Connected })
	// ... and while it is down.
	b.addKeys(200, 10)
	br.Restart()
	l.waitConnected()
	b.addKeys(300, 3)

	var last uint64 = 1 + 5 + 5 + 10 + 3
	// The window is 8 and nothing is acked: ack as the cloud goes.
	deadline := time.Now().Add(wait)
	for {
		msgs := events.Messages()
		if m := maxSeq(msgs); m > 0 {
			ack(t, cloud, m)
			if m >= last {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("events up to %d of %d arrived", maxSeq(events.Messages()), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkStream(t, decodeEvents(t, events.Messages()), 1, last)
	eventually(t, "outbox empty", func() bool { return b.outbox().Depth == 0 })
	if l.Stats().Reconnects < 1 {
		t.Errorf("stats %+v: no reconnect counted", l.Stats())
	}
}

// TestNewLinkRepublishes: a link stopped without acks, and a new box and
// link on the same data: the unacked events go out again with the same
// ids, and seqs continue.
func TestNewLinkRepublishes(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	dir := t.TempDir()
	b := startBox(t, dir)
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")
	l := startLink(t, b, br.URL())
	b.addKeys(1, 4)
	before := decodeEvents(t, events.WaitUntil(t, reaches(5), wait))
	l.stop()
	b.stop()

	b2 := startBox(t, dir)
	startLink(t, b2, br.URL())
	all := decodeEvents(t, events.WaitUntil(t, reaches(6), wait))
	checkStream(t, all, 1, 6)
	again := all[len(before):]
	if len(again) < 6 || again[0].Seq != 1 || again[0].ID != before[0].ID {
		t.Errorf("after the restart the link published %+v", again)
	}
	if e := all[len(all)-1]; e.Seq != 6 || e.Type != "device.started" {
		t.Errorf("the new boot's first event %+v", e)
	}
}

// TestReconnectRepublishes: events the broker took but no cloud stored (no
// subscriber was there) go out again after a reconnect, from the first
// unacked one.
func TestReconnectRepublishes(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	p := startProxy(t, br.Addr())
	l := startLink(t, b, p.URL())
	b.addKeys(1, 3)
	// Nobody listens yet: the broker acknowledges and drops them.
	eventually(t, "published", func() bool { return l.Stats().Published >= 4 })
	cloud := mqtttest.Dial(t, br.URL())
	events := cloud.Subscribe(prefix + "/events")

	p.Cut()
	eventually(t, "link sees the loss", func() bool { return !l.Stats().Connected })
	p.Reopen()
	checkStream(t, decodeEvents(t, events.WaitUntil(t, reaches(4), wait)), 1, 4)
	if l.Stats().Reconnects != 1 {
		t.Errorf("stats %+v", l.Stats())
	}
}
