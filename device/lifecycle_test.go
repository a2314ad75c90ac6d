package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// statuses returns the status of every access_code.status event for id.
func (h *harness) statuses(id string) []string {
	var out []string
	for _, m := range h.eventsOf("access_code.status") {
		if m["access_code_id"] == id {
			out = append(out, m["status"].(string))
		}
	}
	return out
}

func TestTimeBoundLifecycle(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	r := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "tb", "code": "60606", "name": "weekend",
		"type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(3 * time.Hour), "key_id": "k", "action": "pickup"})
	eq(t, "status", r["status"].(string), "unset")
	if _, has := r["code"]; has {
		t.Fatal("the access code object carries the code")
	}
	h.enter("60606")
	eq(t, "early", h.last("code.rejected")["reason"].(string), contract.CodeCodeNotActive)

	h.advance(time.Hour)
	if got := h.statuses("tb"); !slices.Equal(got, []string{"unset", "setting", "set"}) {
		t.Fatalf("statuses %v", got)
	}
	if w := h.last("access_code.status")["warnings"].([]any); len(w) != 0 {
		t.Fatalf("on-time set with warnings %v", w)
	}
	h.enter("60606")
	eq(t, "opened", h.last("bin.unlocked")["bin"].(float64), float64(bin))
	h.advance(61 * time.Second) // the pickup times out; the key stays

	h.advance(2 * time.Hour)
	if got := h.statuses("tb"); !slices.Equal(got, []string{"unset", "setting", "set", "removing", "removed"}) {
		t.Fatalf("statuses %v", got)
	}
	eq(t, "codes left", h.state().AccessCodes, 0)
	h.enter("60606")
	eq(t, "gone", h.last("code.rejected")["reason"].(string), contract.CodeCodeUnknown)
}

func TestLateTransitionsCarryWarnings(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "late", "code": "1111", "name": "x",
		"type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(5 * time.Hour), "key_id": "k", "action": "dropoff"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "missed", "code": "2222", "name": "y",
		"type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(2 * time.Hour), "key_id": "k", "action": "dropoff"})
	// The box is off for three hours.
	h.stop()
	h.clock.Advance(3 * time.Hour)
	h.start()
	if got := h.statuses("late"); !slices.Equal(got, []string{"unset", "setting", "set"}) {
		t.Fatalf("late statuses %v", got)
	}
	set := h.last("access_code.status")
	for _, m := range h.eventsOf("access_code.status") {
		if m["access_code_id"] == "late" && m["status"] == "set" {
			set = m
		}
	}
	w := set["warnings"].([]any)
	if len(w) != 1 || w[0].(map[string]any)["warning_code"] != contract.CodeDelayInSetting {
		t.Fatalf("warnings %v", w)
	}
	if got := h.statuses("missed"); !slices.Equal(got, []string{"unset", "removing", "removed"}) {
		t.Fatalf("missed statuses %v", got)
	}
	eq(t, "codes", h.state().AccessCodes, 1)
}

func TestClockUnsyncedRefusesTimeBoundOnly(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	h.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2", "serial_number": "BCDE"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "tb", "code": "1212", "name": "x",
		"type": "time_bound", "starts_at": t0.Add(-time.Minute), "ends_at": t0.Add(time.Hour), "key_id": "k", "action": "dropoff"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "on", "code": "3434", "name": "y", "type": "ongoing", "key_id": "k2", "action": "dropoff"})
	h.synced.Store(false)
	h.enter("1212")
	eq(t, "unsynced", h.last("code.rejected")["reason"].(string), contract.CodeClockUnsynced)
	eq(t, "state says so", h.state().Clock.Synced, false)
	h.enter("3434")
	eq(t, "ongoing still works", h.last("bin.unlocked")["reason"].(string), "dropoff")
	h.synced.Store(true)
	h.fob(1, "BCDE")
	h.enter("1212")
	eq(t, "synced again", len(h.eventsOf("bin.unlocked")), 2)
}

func TestFullBoxReportsFailedToSet(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxAccessCodes = 1 })
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "a", "code": "1111", "name": "a", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	r := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "b", "code": "2222", "name": "b", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	errs := r["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["error_code"] != contract.CodeFailedToSetOnDevice {
		t.Fatalf("errors %v", errs)
	}
	eq(t, "status event", h.last("access_code.status")["access_code_id"].(string), "b")
	eq(t, "stored", h.state().AccessCodes, 1)
	h.enter("2222")
	eq(t, "not stored", h.last("code.rejected")["reason"].(string), contract.CodeCodeUnknown)
}

func TestAccessCodeUpdateAndDelete(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "a", "code": "1111", "name": "a", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	// A new code replaces the old one; the name can change alone.
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "a", "code": "2222"})
	r := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "a", "name": "renamed"})
	eq(t, "name", r["name"].(string), "renamed")
	h.enter("1111")
	eq(t, "old code", h.last("code.rejected")["reason"].(string), contract.CodeCodeUnknown)
	// The old code is free for another access code.
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "b", "code": "1111", "name": "b", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	r = h.mustOK("access_code.delete", map[string]any{"access_code_id": "a"})
	eq(t, "removed", r["status"].(string), "removed")
	if got := h.statuses("a"); !slices.Equal(got[len(got)-2:], []string{"removing", "removed"}) {
		t.Fatalf("statuses %v", got)
	}
	h.enter("2222")
	eq(t, "deleted", h.last("code.rejected")["reason"].(string), contract.CodeCodeUnknown)
	h.enter("1111")
	eq(t, "b works", h.last("bin.unlocked")["reason"].(string), "dropoff")
}

func TestSnapshot(t *testing.T) {
	h := newHarness(t)
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	h.mustOK("key.upsert", map[string]any{"key_id": "here", "name": "here", "serial_number": "ABCD"})
	bin := h.checkIn("here", "ABCD")
	h.mustOK("key.upsert", map[string]any{"key_id": "old", "name": "old"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "oldcode", "code": "1111", "name": "x", "type": "ongoing", "key_id": "old", "action": "dropoff"})

	snap := map[string]any{
		"version": 7,
		"keys": []any{
			map[string]any{"key_id": "a", "name": "A", "serial_number": "AAAA"},
			map[string]any{"key_id": "v", "name": "V", "virtual": true},
		},
		"access_codes": []any{
			map[string]any{"access_code_id": "p", "code": "2222", "name": "p", "type": "ongoing", "key_id": "a", "action": "dropoff"},
			map[string]any{"access_code_id": "e", "code": "3333", "name": "e", "type": "time_bound", "starts_at": t0.Add(-2 * time.Hour), "ends_at": t0.Add(-time.Hour), "key_id": "a", "action": "pickup"},
			map[string]any{"access_code_id": "f", "code": "4444", "name": "f", "type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(2 * time.Hour), "key_id": "here", "action": "pickup"},
		},
	}
	// One bad record anywhere refuses the whole snapshot, and names it.
	bad := map[string]any{"version": 8, "keys": snap["keys"], "access_codes": append(slices.Clone(snap["access_codes"].([]any)),
		map[string]any{"access_code_id": "dup", "code": "2222", "name": "dup", "type": "ongoing", "key_id": "a", "action": "pickup"})}
	before := h.count()
	r := h.exec("sync.snapshot", bad)
	if r.OK || r.Error.Code != contract.CodeCodeTaken || !strings.Contains(r.Error.Message, "access_codes[3] (dup)") {
		t.Fatalf("bad snapshot reply %+v", r)
	}
	eq(t, "nothing written", h.count(), before)
	eq(t, "old key kept", h.key("old") != nil, true)

	res := h.mustOK("sync.snapshot", snap)
	eq(t, "keys", res["keys"].(float64), 3.0) // a, v, and "here" kept
	eq(t, "codes", res["access_codes"].(float64), 2.0)
	eq(t, "expired", res["expired"].(float64), 1.0)
	if kept := res["kept_checked_in"].([]any); len(kept) != 1 || kept[0] != "here" {
		t.Fatalf("kept %v", kept)
	}
	gen := res["generated_key_codes"].(map[string]any)["v"].(string)
	if validateCode(gen) != nil {
		t.Fatalf("generated %q", gen)
	}
	eq(t, "old key gone", h.key("old") == nil, true)
	eq(t, "here still in", h.key("here").Bin, bin)
	h.enter("1111")
	eq(t, "old code gone", h.last("code.rejected")["reason"].(string), contract.CodeCodeUnknown)
	h.enter("2222")
	eq(t, "new code works", h.last("bin.unlocked")["reason"].(string), "dropoff")
	eq(t, "summary event", h.last("sync.snapshot_applied")["version"].(string), "7")
	// The scheduler knows the snapshot's codes.
	h.advance(61 * time.Second)
	h.advance(time.Hour)
	if got := h.statuses("f"); !slices.Equal(got, []string{"setting", "set"}) {
		t.Fatalf("snapshot code statuses %v", got)
	}
}

func TestSnapshotOfManyCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("large snapshot")
	}
	h := newHarness(t)
	const n = 20_000
	codes := make([]any, n)
	for i := range n {
		codes[i] = map[string]any{"access_code_id": fmt.Sprintf("ac-%06d", i), "code": fmt.Sprintf("%08d", i*7919%100_000_000), "name": "n", "type": "ongoing", "key_id": "k", "action": "dropoff"}
	}
	res := h.mustOK("sync.snapshot", map[string]any{"version": "big", "keys": []any{map[string]any{"key_id": "k", "name": "k"}}, "access_codes": codes})
	eq(t, "codes", res["access_codes"].(float64), float64(n))
	eq(t, "state", h.state().AccessCodes, n)
	h.enter(fmt.Sprintf("%08d", 12345*7919%100_000_000))
	eq(t, "a code from the middle works", h.last("bin.unlocked")["reason"].(string), "dropoff")
}

// TestCrashMidFlowIsConsistent abandons the box in the middle of a pickup
// (the loop never finishes the session), reopens the database and checks
// that state and outbox agree, and that the readers then settle the truth.
func TestCrashMidFlowIsConsistent(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "p", "code": "8642", "name": "p", "type": "ongoing", "key_id": "k", "action": "pickup"})
	h.enter("8642")
	h.restart() // the session dies with the loop

	evs := h.events()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: gap or reuse", ev.Seq, i)
		}
	}
	eq(t, "last before restart", evs[len(evs)-2].Type, "bin.unlocked")
	eq(t, "restart", evs[len(evs)-1].Type, "device.started")
	eq(t, "key still in", h.key("k").Bin, bin)
	eq(t, "bin occupied", h.binState(bin).State, "occupied")
	// The fob went with the guest while the box was down.
	h.nofob(bin)
	h.advance(4 * time.Second)
	eq(t, "mismatch", h.last("inventory.mismatch")["expected"].(string), "ABCD")
	eq(t, "key out", h.key("k").Bin, 0)
	evs = h.events()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d after recovery", ev.Seq, i)
		}
	}
}

// TestNoOpenWithoutRecord closes the database under a running box: a right
// code must then open nothing, since the decision cannot be recorded.
func TestNoOpenWithoutRecord(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d", "code": "5050", "name": "d", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	h.db.Close()
	h.enter("5050")
	if p := h.locks.pulses(); len(p) != 0 {
		t.Fatalf("opened %v without recording it", p)
	}
	eq(t, "rejected feedback", h.fb.bad.Load(), int32(1))
	r := h.exec("bin.open", map[string]any{"bin": 1})
	if r.OK || r.Error.Code != contract.CodeStoreUnavailable {
		t.Fatalf("reply %+v", r)
	}
	// The state document says the database refuses writes.
	if st := h.box.storeState(); st.OK || st.Error == "" {
		t.Fatalf("store state %+v after failed writes", st)
	}
	if p := h.locks.pulses(); len(p) != 0 {
		t.Fatalf("remote open %v without recording it", p)
	}
}

func TestCodesNeverStoredInPlainText(t *testing.T) {
	h := newHarness(t)
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	codes := []string{"73915", "2846193", "5550123499", "8120394857261034"}
	for i, c := range codes {
		h.mustOK("access_code.upsert", map[string]any{"access_code_id": fmt.Sprint(i), "code": c, "name": "x", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	}
	h.mustOK("key.upsert", map[string]any{"key_id": "v", "name": "v", "virtual": true, "key_code": "40404040"})
	for _, c := range append(codes, "40404040", "99999") {
		h.enter(c)
	}
	h.stop()
	raw, err := os.ReadFile(filepath.Join(h.dir, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(codes, "40404040", "99999") {
		if bytes.Contains(raw, []byte(c)) {
			t.Fatalf("code %s is in the database file", c)
		}
	}
	info, err := os.Stat(filepath.Join(h.dir, store.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "secret mode", info.Mode().Perm(), os.FileMode(0o600))
	h.start()
	all, _ := json.Marshal(h.events())
	for _, c := range codes {
		if bytes.Contains(all, []byte(c)) {
			t.Fatalf("code %s in an event", c)
		}
	}
}

// refusingStore is a real store whose writes can be made to fail, as on a
// full disk: reads still work.
type refusingStore struct {
	*store.DB
	refuse atomic.Bool
}

func (r *refusingStore) Update(fn func(*store.Tx) error) error {
	if r.refuse.Load() {
		return errString("write smartbox.db: no space left on device")
	}
	return r.DB.Update(fn)
}

// TestStateGetWhileWritesFail: with the database refusing writes, a right
// code opens nothing, and state.get still answers, saying so.
func TestStateGetWhileWritesFail(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs := &refusingStore{DB: db}
	locks := &fakeLocks{}
	box, err := New(Config{Bins: []BinSpec{{ID: 1}}, Store: rs, Locks: locks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go box.Run(ctx)
	exec := func(id, typ, data string) contract.Reply {
		t.Helper()
		r, err := box.Execute(ctx, contract.Command{ID: id, Type: typ, Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := exec("k", "key.upsert", `{"key_id":"k","name":"k"}`); !r.OK {
		t.Fatal(r.Error)
	}
	if r := exec("a", "access_code.upsert", `{"access_code_id":"a","code":"2468","name":"a","type":"ongoing","key_id":"k","action":"dropoff"}`); !r.OK {
		t.Fatal(r.Error)
	}
	rs.refuse.Store(true)
	box.KeypadEntry("2468")
	box.Flush(ctx)
	if p := locks.pulses(); len(p) != 0 {
		t.Fatalf("opened %v without recording it", p)
	}
	r := exec("s1", "state.get", `{}`)
	if !r.OK {
		t.Fatalf("state.get while writes fail: %+v", r.Error)
	}
	var st contract.State
	if err := json.Unmarshal(r.Result, &st); err != nil {
		t.Fatal(err)
	}
	if st.Store.OK || !strings.Contains(st.Store.Error, "no space left") {
		t.Fatalf("state store %+v", st.Store)
	}
	if st.Keys != 1 || st.AccessCodes != 1 {
		t.Fatalf("state %+v", st)
	}
	// A command with an effect is refused, and changes nothing.
	if r := exec("o", "bin.open", `{"bin":1}`); r.OK || r.Error.Code != contract.CodeStoreUnavailable {
		t.Fatalf("bin.open: %+v", r)
	}
	rs.refuse.Store(false)
	box.KeypadEntry("2468")
	box.Flush(ctx)
	if p := locks.pulses(); len(p) != 1 {
		t.Fatalf("after recovery: pulses %v", p)
	}
	if st, _ := box.State(); !st.Store.OK {
		t.Fatalf("store still faulted after a write worked: %+v", st.Store)
	}
}

// TestSchedulerBatches: more codes come due at one moment than one
// transaction takes; every one is set, in batches, and then removed.
func TestSchedulerBatches(t *testing.T) {
	h := newHarness(t)
	const n = 3*scheduleBatch + 7
	codes := make([]any, n)
	for i := range n {
		codes[i] = map[string]any{"access_code_id": fmt.Sprintf("tb-%05d", i), "code": fmt.Sprintf("%07d", i), "name": "n",
			"type": "time_bound", "starts_at": t0.Add(time.Hour), "ends_at": t0.Add(2 * time.Hour), "key_id": "k", "action": "dropoff"}
	}
	h.mustOK("sync.snapshot", map[string]any{"version": 1, "keys": []any{map[string]any{"key_id": "k", "name": "k"}}, "access_codes": codes})
	h.advance(time.Hour)
	count := func(status string) int {
		c := 0
		for _, m := range h.eventsOf("access_code.status") {
			if m["status"] == status {
				c++
			}
		}
		return c
	}
	eq(t, "set", count("set"), n)
	eq(t, "still stored", h.state().AccessCodes, n)
	h.enter(fmt.Sprintf("%07d", n-1))
	eq(t, "the last one works", h.last("bin.unlocked")["reason"].(string), "dropoff")
	h.advance(time.Hour)
	eq(t, "removed", count("removed"), n)
	eq(t, "none left", h.state().AccessCodes, 0)
}
