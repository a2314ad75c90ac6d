package mqttlink

import (
	"encoding/json"
	"testing"

	"smartboxd/internal/mqtttest"
)

// sessionOf reads the online flag and session of a status message.
func sessionOf(t testing.TB, m mqtttest.Message) (online bool, session uint64) {
	t.Helper()
	var s struct {
		Online  bool   `json:"online"`
		Session uint64 `json:"session"`
	}
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		t.Fatalf("status %q: %v", m.Payload, err)
	}
	return s.Online, s.Session
}

// hasStatus is a Recorder predicate: a status with this online flag and
// session has arrived.
func hasStatus(t testing.TB, online bool, session uint64) func([]mqtttest.Message) bool {
	return func(msgs []mqtttest.Message) bool {
		for _, m := range msgs {
			if o, s := sessionOf(t, m); o == online && s == session {
				return true
			}
		}
		return false
	}
}

// TestFailover: a link with two brokers moves to the second when the
// first is lost and back when the second is killed. Each connection has a
// session number one above the last, the lost connection's will carries
// its own number, and every event reaches the cloud on one broker or the
// other and is acked there: nothing is lost.
func TestFailover(t *testing.T) {
	t.Parallel()
	b1, b2 := mqtttest.Start(t), mqtttest.Start(t)
	p := startProxy(t, b1.Addr()) // losing b1 is cutting the relay
	b := startBox(t, t.TempDir())
	c1, c2 := mqtttest.Dial(t, b1.URL()), mqtttest.Dial(t, b2.URL())
	status1, status2 := c1.Subscribe(prefix+"/status"), c2.Subscribe(prefix+"/status")
	events1, events2 := c1.Subscribe(prefix+"/events"), c2.Subscribe(prefix+"/events")
	l := startLink(t, b, "", func(c *Config) { c.Broker, c.Brokers = "", []string{p.URL(), b2.URL()} })

	// The first broker answers: session 1 there.
	status1.WaitUntil(t, hasStatus(t, true, 1), wait)
	l.waitSubscribed(1)
	b.addKeys(1, 5)
	events1.WaitUntil(t, reaches(6), wait)
	ack(t, c1, 6)
	eventually(t, "acked on b1", func() bool { return b.outbox().Acked == 6 })
	b.addKeys(10, 5) // 7..11, published to b1, never acked there
	events1.WaitUntil(t, reaches(11), wait)

	// b1 is lost: its will says session 1 is over; the link is on b2.
	p.Cut()
	status1.WaitUntil(t, hasStatus(t, false, 1), wait)
	status2.WaitUntil(t, hasStatus(t, true, 2), wait)
	if s := l.Stats(); s.Broker != b2.URL() || s.Session != 2 {
		t.Errorf("stats after the loss of b1: %+v", s)
	}
	l.waitSubscribed(2)
	b.addKeys(20, 5) // 12..16
	// b2 gets everything not acked, from 7 on.
	checkStream(t, decodeEvents(t, events2.WaitUntil(t, reaches(16), wait)), 7, 16)
	ack(t, c2, 16)
	eventually(t, "acked on b2", func() bool { return b.outbox().Acked == 16 })

	// b2 dies (no will: the broker itself is gone); b1 is back.
	p.Reopen()
	b2.Kill()
	status1.WaitUntil(t, hasStatus(t, true, 3), wait)
	l.waitSubscribed(3)
	b.addKeys(30, 3) // 17..19
	events1.WaitUntil(t, reaches(19), wait)
	ack(t, c1, 19)
	eventually(t, "every event acked", func() bool { o := b.outbox(); return o.Depth == 0 && o.Acked == 19 })

	// Every seq reached the cloud with one id, whichever broker carried it.
	ids := map[uint64]string{}
	for _, e := range decodeEvents(t, append(events1.Messages(), events2.Messages()...)) {
		if id, seen := ids[e.Seq]; seen && id != e.ID {
			t.Errorf("seq %d with ids %s and %s", e.Seq, id, e.ID)
		}
		ids[e.Seq] = e.ID
	}
	for seq := uint64(1); seq <= 19; seq++ {
		if ids[seq] == "" {
			t.Errorf("seq %d never reached the cloud", seq)
		}
	}
	// The sessions rose by one per connection, on the broker of each.
	var seen []uint64
	for _, m := range append(status1.Messages(), status2.Messages()...) {
		if online, s := sessionOf(t, m); online {
			seen = append(seen, s)
		}
	}
	for _, want := range []uint64{1, 2, 3} {
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no online status of session %d among %v", want, seen)
		}
	}
	if l.Stats().Reconnects != 2 {
		t.Errorf("stats %+v, want 2 reconnects", l.Stats())
	}
}

// TestSessionKeptAcrossRestart: a new link on the same store goes on
// numbering sessions from where the last one stopped, and its planned
// stop's "online":false carries its own session.
func TestSessionKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	dir := t.TempDir()
	b := startBox(t, dir)
	cloud := mqtttest.Dial(t, br.URL())
	status := cloud.Subscribe(prefix + "/status")
	l := startLink(t, b, br.URL())
	status.WaitUntil(t, hasStatus(t, true, 1), wait)
	l.stop()
	status.WaitUntil(t, hasStatus(t, false, 1), wait)
	b.stop()

	b = startBox(t, dir)
	startLink(t, b, br.URL())
	status.WaitUntil(t, hasStatus(t, true, 2), wait)
}
