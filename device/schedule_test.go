package device

import (
	"encoding/json"
	"testing"
	"time"

	"smartboxd/contract"
)

// TestShortWindowReportedOnTime: a time-bound code whose window is 4 s long
// is reported set within 1 s of starts_at and removing/removed within 1 s of
// ends_at. The scheduler must wake for the ends_at its own transition to set
// schedules, not sleep its idle minute. The fake clock steps 250 ms at a
// time; the events' times are the fake clock's.
func TestShortWindowReportedOnTime(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	starts, ends := t0.Add(2*time.Second), t0.Add(6*time.Second)
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "w", "code": "4321", "name": "w",
		"type": "time_bound", "starts_at": starts, "ends_at": ends, "key_id": "k", "action": "dropoff"})
	for h.clock.Now().Before(t0.Add(90 * time.Second)) {
		h.advance(250 * time.Millisecond)
	}
	at := map[string]time.Time{}
	for _, ev := range h.events() {
		if ev.Type != contract.EventAccessCodeStatus {
			continue
		}
		st := h.decode(ev)["status"].(string)
		if _, seen := at[st]; !seen {
			at[st] = ev.At
		}
	}
	for _, tc := range []struct {
		status string
		want   time.Time
	}{
		{contract.StatusSetting, starts},
		{contract.StatusSet, starts},
		{contract.StatusRemoving, ends},
		{contract.StatusRemoved, ends},
	} {
		t.Run(tc.status, func(t *testing.T) {
			got, ok := at[tc.status]
			if !ok {
				t.Fatalf("no %s event; statuses %v", tc.status, at)
			}
			if late := got.Sub(tc.want); late < 0 || late > time.Second {
				t.Fatalf("%s reported at %v, %v after %v (want within 1 s)", tc.status, got, late, tc.want)
			}
		})
	}
}

// decode is an event's data as a map.
func (h *harness) decode(ev contract.Event) map[string]any {
	h.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Data, &m); err != nil {
		h.t.Fatalf("%s data: %v", ev.Type, err)
	}
	return m
}
