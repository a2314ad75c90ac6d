package device

import (
	"context"
	"encoding/json"
	"testing"

	"smartboxd/contract"
	"smartboxd/store"
)

// TestCommandIDConflict: a command id the box has answered, reused by a
// different command (another type, or the same type with other data), gets
// cmd.conflict and does nothing; the same command again gets its first
// reply. A state.get must not poison the id of a later upsert.
func TestCommandIDConflict(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	first := h.execID("cloud-42", "state.get", nil)
	if !first.OK {
		t.Fatalf("state.get: %+v", first.Error)
	}
	upsert := map[string]any{"access_code_id": "a", "code": "5555", "name": "a", "type": "ongoing", "key_id": "k", "action": "dropoff"}
	for _, tc := range []struct {
		name string
		id   string
		typ  string
		data any
	}{
		{"another type", "cloud-42", "access_code.upsert", upsert},
		{"the same type, other data", "cloud-43", "key.upsert", map[string]any{"key_id": "k", "name": "renamed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.id == "cloud-43" {
				h.mustOK("key.upsert", map[string]any{"key_id": "x", "name": "x"}) // a command of its own
				if r := h.execID("cloud-43", "key.upsert", map[string]any{"key_id": "k", "name": "k"}); !r.OK {
					t.Fatalf("first use of cloud-43: %+v", r.Error)
				}
			}
			n := h.count()
			r := h.execID(tc.id, tc.typ, tc.data)
			if r.OK || r.Error == nil || r.Error.Code != contract.CodeCmdConflict || r.ID != tc.id {
				t.Fatalf("reused id: got %+v, want %s", r, contract.CodeCmdConflict)
			}
			eq(t, "events", h.count(), n)
			eq(t, "codes", h.state().AccessCodes, 0)
			eq(t, "name", h.key("k").Name, "k")
		})
	}
	// The same command again gets the first reply, also after a restart.
	h.restart()
	again := h.execID("cloud-42", "state.get", nil)
	if !again.OK || string(again.Result) != string(first.Result) {
		t.Fatalf("state.get repeated: %+v, want the first reply", again)
	}
	// The conflict left the id's reply as it was: the upsert still conflicts.
	if r := h.execID("cloud-42", "access_code.upsert", upsert); r.OK || r.Error.Code != contract.CodeCmdConflict {
		t.Fatalf("after a restart: %+v", r)
	}
}

// TestReplyWithoutFingerprint: a reply an older daemon kept (no
// fingerprint) still answers a repeat of its id, with no second effect.
func TestReplyWithoutFingerprint(t *testing.T) {
	h := newHarness(t)
	old := contract.Reply{ID: "legacy", OK: true, Result: json.RawMessage(`{"old":true}`)}
	if err := h.db.Update(func(tx *store.Tx) error { return tx.PutReply("legacy", old.Encode()) }); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"key_id": "k", "name": "k"})
	r, err := h.box.Execute(context.Background(), contract.Command{ID: "legacy", Type: "key.upsert", Data: raw})
	if err != nil || !r.OK || string(r.Result) != `{"old":true}` {
		t.Fatalf("legacy reply: %+v, %v", r, err)
	}
	if h.key("k") != nil {
		t.Fatal("a repeated id had an effect")
	}
}
