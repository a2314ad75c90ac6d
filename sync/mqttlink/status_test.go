package mqttlink

import (
	"encoding/json"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/internal/mqtttest"
)

// TestStatusAndStateRetained: the link announces itself online and its
// state, both retained, so a subscriber that comes later still gets them;
// a planned stop leaves a retained "online":false with its time.
func TestStatusAndStateRetained(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	l := startLink(t, b, br.URL())
	l.waitConnected()
	// The link has published its state once another subscriber saw it;
	// only then can a later subscriber's copy be the retained one.
	mqtttest.Dial(t, br.URL()).Subscribe(prefix+"/state").WaitFor(t, 1, wait)

	late := mqtttest.Dial(t, br.URL())
	status := late.Subscribe(prefix + "/status")
	state := late.Subscribe(prefix + "/state")
	sm := status.WaitFor(t, 1, wait)[0]
	if !sm.Retained {
		t.Errorf("status not retained: %+v", sm)
	}
	s := statusOf(t, sm)
	if s["online"] != true || s["version"] != "1.2.3" || s["boot_id"] != "boot-1" {
		t.Errorf("online status %v", s)
	}
	if at, err := time.Parse(time.RFC3339, s["at"].(string)); err != nil || time.Since(at) > time.Hour {
		t.Errorf("online status at %v: %v", s["at"], err)
	}

	stm := state.WaitFor(t, 1, wait)[0]
	if !stm.Retained {
		t.Errorf("state not retained")
	}
	var doc contract.State
	if err := json.Unmarshal(stm.Payload, &doc); err != nil {
		t.Fatalf("state %q: %v", stm.Payload, err)
	}
	if len(doc.Bins) != 3 || doc.Version == 0 {
		t.Errorf("state document %+v", doc)
	}

	l.stop()
	msgs := status.WaitUntil(t, isOnline(false), wait)
	off := statusOf(t, msgs[len(msgs)-1])
	if off["version"] != "1.2.3" || off["boot_id"] != "boot-1" || off["at"] == nil {
		t.Errorf("offline status %v", off)
	}
	// What the broker keeps is the offline status.
	later := mqtttest.Dial(t, br.URL()).Subscribe(prefix + "/status")
	kept := later.WaitFor(t, 1, wait)[0]
	if !kept.Retained || statusOf(t, kept)["online"] != false {
		t.Errorf("retained status after the stop: %+v %s", kept, kept.Payload)
	}
	if l.Stats().Connected {
		t.Errorf("stats say connected after the stop")
	}
}

// TestLastWill: when the link's connection dies without a DISCONNECT (the
// box lost power or its network), the broker publishes the will: a retained
// "online":false. The death is simulated by a TCP relay between the link
// and the broker that the test resets; the relay then refuses the link's
// reconnects.
func TestLastWill(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	cloud := mqtttest.Dial(t, br.URL())
	status := cloud.Subscribe(prefix + "/status")
	p := startProxy(t, br.Addr())
	l := startLink(t, b, p.URL())
	status.WaitUntil(t, isOnline(true), wait)

	p.Cut()
	msgs := status.WaitUntil(t, isOnline(false), wait)
	will := statusOf(t, msgs[len(msgs)-1])
	if will["version"] != "1.2.3" || will["boot_id"] != "boot-1" {
		t.Errorf("will %v", will)
	}
	if _, has := will["at"]; has {
		t.Errorf("the will carries a time, but it was written at connect: %v", will)
	}
	kept := mqtttest.Dial(t, br.URL()).Subscribe(prefix+"/status").WaitFor(t, 1, wait)[0]
	if !kept.Retained || statusOf(t, kept)["online"] != false {
		t.Errorf("retained status after the death: %s", kept.Payload)
	}
	eventually(t, "link sees the loss", func() bool { return !l.Stats().Connected && l.Stats().LastError != "" })
	// The link keeps trying and still stops cleanly while disconnected.
	l.stop()
}

// TestStartsOffline: with no broker listening, Run does not fail; the link
// retries, and connects once a broker is there.
func TestStartsOffline(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	br.Stop()
	b := startBox(t, t.TempDir())
	l := startLink(t, b, br.URL())
	eventually(t, "connection failure noted", func() bool { return l.Stats().LastError != "" })
	if len(l.logs.lines("mqtt broker unreachable", br.URL())) == 0 {
		t.Errorf("no log line about the unreachable broker:\n%s", l.logs)
	}
	select {
	case err := <-l.done:
		t.Fatalf("Run returned while the broker was away: %v", err)
	default:
	}
	br.Restart()
	l.waitConnected()
	cloud := mqtttest.Dial(t, br.URL())
	cloud.Subscribe(prefix+"/status").WaitUntil(t, isOnline(true), wait)
}
