package mqttlink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/internal/mqtttest"
)

func stateVersion(t testing.TB, m mqtttest.Message) uint64 {
	t.Helper()
	var s contract.State
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		t.Fatalf("state %q: %v", m.Payload, err)
	}
	return s.Version
}

// TestStateThrottled: many changes in a burst produce few state publishes,
// the last one the latest document, with the version rising. The link runs
// on a fake clock, so the throttle interval passes only when the test says;
// its first connect waits nothing (the jitter draws 0).
func TestStateThrottled(t *testing.T) {
	t.Parallel()
	br := mqtttest.Start(t)
	b := startBox(t, t.TempDir())
	clock := clockwork.NewFakeClock()
	cloud := mqtttest.Dial(t, br.URL())
	state := cloud.Subscribe(prefix + "/state")
	startLink(t, b, br.URL(), func(c *Config) { c.Clock = clock; c.AckTimeout = time.Hour; c.Rand = func() float64 { return 0 } })
	first := stateVersion(t, state.WaitFor(t, 1, wait)[0])

	const changes = 100
	b.addKeys(1, changes)
	st, err := b.box.State()
	if err != nil {
		t.Fatal(err)
	}
	latest := st.Version
	if latest < first+changes {
		t.Fatalf("version %d after %d changes from %d", latest, changes, first)
	}
	// Let the interval pass, as often as it takes for the link to catch up.
	advances := 0
	deadline := time.Now().Add(wait)
	for {
		msgs := state.Messages()
		if stateVersion(t, msgs[len(msgs)-1]) == latest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the latest state (version %d) was not published", latest)
		}
		clock.Advance(DefaultStateInterval)
		advances++
		time.Sleep(20 * time.Millisecond)
	}
	msgs := state.Messages()
	if len(msgs) >= changes {
		t.Errorf("%d state publishes for %d changes", len(msgs), changes)
	}
	if len(msgs)-1 > advances+1 {
		t.Errorf("%d publishes after the first with the clock advanced %d times", len(msgs)-1, advances)
	}
	// Versions never go back (a change signalled after a publish that
	// already showed it may publish the same version again).
	var prev uint64
	for i, m := range msgs {
		v := stateVersion(t, m)
		if v < prev {
			t.Errorf("publish %d: version %d after %d", i, v, prev)
		}
		prev = v
	}
	if prev <= first {
		t.Errorf("the version did not rise: %d, first %d", prev, first)
	}
}
