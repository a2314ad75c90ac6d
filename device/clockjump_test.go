package device

import (
	"testing"
	"time"

	"smartboxd/contract"
)

// TestClockJumpRestoresRemovedCode: the clock jumps 30 days ahead (a bad
// RTC, an unauthenticated NTP step) and the schedule removes a time-bound
// code; when the clock comes back inside the code's window the code is
// restored, reported with status set and the restored_after_clock_jump
// warning, and opens again. A tombstone past its retention is let go.
func TestClockJumpRestoresRemovedCode(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	h.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2"})
	window := map[string]any{"access_code_id": "tb", "code": "8642", "name": "tb", "type": "time_bound",
		"starts_at": t0.Add(-time.Hour), "ends_at": t0.Add(3 * time.Hour), "key_id": "k", "action": "dropoff"}
	h.mustOK("access_code.upsert", window)
	h.enter("8642")
	eq(t, "opens before the jump", h.last(contract.EventBinUnlocked)["reason"].(string), contract.ReasonDropoff)
	h.advance(61 * time.Second) // the drop-off times out

	h.advance(30 * 24 * time.Hour)
	h.advance(time.Minute) // the scheduler's idle wake-up
	eq(t, "removed by the jump", h.last(contract.EventAccessCodeStatus)["status"].(string), contract.StatusRemoved)
	eq(t, "codes after the jump", h.state().AccessCodes, 0)
	h.enter("8642")
	eq(t, "refused after the jump", h.last(contract.EventCodeRejected)["reason"].(string), contract.CodeCodeUnknown)

	// The clock comes back (to 30 minutes after the first drop-off).
	h.clock.Advance(-(30*24*time.Hour + time.Minute))
	h.flush()
	h.advance(time.Minute)
	st := h.last(contract.EventAccessCodeStatus)
	eq(t, "status back", st["status"].(string), contract.StatusSet)
	warnings := st["warnings"].([]any)
	if len(warnings) != 1 || warnings[0].(map[string]any)["warning_code"] != contract.CodeRestoredAfterClockJump {
		t.Fatalf("restored code's warnings: %v", warnings)
	}
	eq(t, "codes after the return", h.state().AccessCodes, 1)
	h.enter("8642")
	evs := h.eventsOf(contract.EventBinUnlocked)
	eq(t, "opens again", len(evs), 2)

	// It ends at its own ends_at as before, and is kept a while again;
	// past the retention the tombstone goes: no more restoring.
	h.advance(4 * time.Hour)
	eq(t, "removed at its end", h.last(contract.EventAccessCodeStatus)["status"].(string), contract.StatusRemoved)
	h.advance(8 * 24 * time.Hour)
	h.advance(time.Minute)
	h.clock.Advance(-(8*24*time.Hour + 4*time.Hour))
	h.flush()
	h.advance(time.Minute)
	eq(t, "not restored past the retention", h.state().AccessCodes, 0)
}

// TestTombstoneYieldsToNewerState: a removed code whose id the cloud has
// given a new code, or whose code another code now has, or that the cloud
// deleted, is not restored when the clock comes back.
func TestTombstoneYieldsToNewerState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(h *harness)
		codes int
	}{
		{"the id reused", func(h *harness) {
			h.mustOK("access_code.upsert", map[string]any{"access_code_id": "tb", "code": "1111", "name": "new", "type": "ongoing", "key_id": "k", "action": "dropoff"})
		}, 1},
		{"the code taken", func(h *harness) {
			h.mustOK("access_code.upsert", map[string]any{"access_code_id": "other", "code": "8642", "name": "other", "type": "ongoing", "key_id": "k", "action": "dropoff"})
		}, 1},
		{"deleted by the cloud", func(h *harness) {
			r := h.mustOK("access_code.delete", map[string]any{"access_code_id": "tb"})
			eq(t, "delete reports", r["status"].(string), contract.StatusRemoved)
			h.mustFail(contract.CodeAccessCodeNotFound, "access_code.delete", map[string]any{"access_code_id": "tb"})
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
			h.mustOK("access_code.upsert", map[string]any{"access_code_id": "tb", "code": "8642", "name": "tb", "type": "time_bound",
				"starts_at": t0.Add(-time.Hour), "ends_at": t0.Add(3 * time.Hour), "key_id": "k", "action": "dropoff"})
			h.advance(30 * 24 * time.Hour)
			h.advance(time.Minute)
			eq(t, "removed", h.state().AccessCodes, 0)
			tc.after(h)
			h.clock.Advance(-30 * 24 * time.Hour)
			h.flush()
			h.advance(time.Minute)
			eq(t, "codes", h.state().AccessCodes, tc.codes)
			for _, m := range h.eventsOf(contract.EventAccessCodeStatus) {
				if ws, _ := m["warnings"].([]any); len(ws) > 0 && ws[0].(map[string]any)["warning_code"] == contract.CodeRestoredAfterClockJump {
					t.Fatalf("restored: %v", m)
				}
			}
		})
	}
}
