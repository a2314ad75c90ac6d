package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// TestCommandErrors checks every seed error code a command can return on a
// box, and that a refused command changes nothing: no event, no record.
func TestCommandErrors(t *testing.T) {
	h := newHarness(t)
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	h.mustOK("key.upsert", map[string]any{"key_id": "in", "name": "checked in", "serial_number": "AAAA1111"})
	h.checkIn("in", "AAAA1111")
	h.mustOK("key.upsert", map[string]any{"key_id": "out", "name": "out", "serial_number": "BBBB2222"})
	h.mustOK("key.upsert", map[string]any{"key_id": "bare", "name": "no fob"})
	h.mustOK("key.upsert", map[string]any{"key_id": "v", "name": "virtual", "virtual": true, "key_code": "13572468"})
	h.mustOK("key.upsert", map[string]any{"key_id": "vin", "name": "virtual in", "virtual": true, "key_code": "86427531"})
	h.checkIn("vin", "")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "ac", "code": "4444", "name": "a", "type": "ongoing", "key_id": "out", "action": "pickup"})
	h.fob(3, "CCCC3333") // an unclaimed fob lying in bin 3

	tooLong := func(n int, r string) string { return strings.Repeat(r, n) }
	cases := []struct {
		name, code, typ string
		data            map[string]any
	}{
		{"no key id", contract.CodeKeyRequired, "key.upsert", map[string]any{"name": "x"}},
		{"empty key id", contract.CodeKeyRequired, "key.upsert", map[string]any{"key_id": "", "name": "x"}},
		{"no name", contract.CodeKeyNameRequired, "key.upsert", map[string]any{"key_id": "new"}},
		{"blank name", contract.CodeKeyNameRequired, "key.upsert", map[string]any{"key_id": "out", "name": "  "}},
		{"description 61", contract.CodeKeyDescriptionMax, "key.upsert", map[string]any{"key_id": "new", "name": "n", "description": tooLong(61, "a")}},
		{"description 61 two-byte", contract.CodeKeyDescriptionMax, "key.upsert", map[string]any{"key_id": "new", "name": "n", "description": tooLong(61, "é")}},
		{"notes 101", contract.CodeKeyNotesMax, "key.upsert", map[string]any{"key_id": "new", "name": "n", "notes": tooLong(101, "ü")}},
		{"pickup note 241", contract.CodeKeyPickupNoteMax, "key.upsert", map[string]any{"key_id": "new", "name": "n", "pickup_note": tooLong(241, "x")}},
		{"serial not hex", contract.CodeKeySerialInvalid, "key.upsert", map[string]any{"key_id": "new", "name": "n", "serial_number": "XYZ123"}},
		{"serial 3", contract.CodeKeySerialInvalid, "key.upsert", map[string]any{"key_id": "new", "name": "n", "serial_number": "ABC"}},
		{"serial 21", contract.CodeKeySerialInvalid, "key.upsert", map[string]any{"key_id": "new", "name": "n", "serial_number": tooLong(21, "1")}},
		{"serial taken", contract.CodeKeySerialTaken, "key.upsert", map[string]any{"key_id": "new", "name": "n", "serial_number": "bbbb2222"}},
		{"refob a checked-in key", contract.CodeKeyAlreadyLinked, "key.upsert", map[string]any{"key_id": "in", "serial_number": "DDDD4444"}},
		{"new fob is in a bin", contract.CodeKeyAlreadyLinked, "key.upsert", map[string]any{"key_id": "out", "serial_number": "CCCC3333"}},
		{"virtual with a fob", contract.CodeKeyFobVirtual, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "serial_number": "EEEE"}},
		{"make a fob key virtual", contract.CodeKeyFobVirtual, "key.upsert", map[string]any{"key_id": "out", "virtual": true}},
		{"key code not numeric", contract.CodeCodeNotNumeric, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "key_code": "12ab"}},
		{"key code short", contract.CodeCodeInvalidLength, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "key_code": "123"}},
		{"key code long", contract.CodeCodeInvalidLength, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "key_code": tooLong(17, "1")}},
		{"key code taken by a key", contract.CodeCodeTaken, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "key_code": "13572468"}},
		{"key code taken by an access code", contract.CodeCodeTaken, "key.upsert", map[string]any{"key_id": "new", "name": "n", "virtual": true, "key_code": "4444"}},
		{"key code on a fob key", contract.CodeKeyNotVirtual, "key.upsert", map[string]any{"key_id": "out", "key_code": "5555"}},
		{"unvirtual a checked-in key", contract.CodeKeyVirtualCheckedIn, "key.upsert", map[string]any{"key_id": "vin", "virtual": false}},
		{"unlink unknown", contract.CodeKeyNotFound, "key.unlink", map[string]any{"key_id": "nope"}},
		{"unlink no key id", contract.CodeKeyRequired, "key.unlink", map[string]any{}},
		{"unlink bare", contract.CodeKeyAlreadyUnlinked, "key.unlink", map[string]any{"key_id": "bare"}},
		{"unlink checked in", contract.CodeKeyAlreadyLinked, "key.unlink", map[string]any{"key_id": "in"}},
		{"retire unknown", contract.CodeKeyNotFound, "key.retire", map[string]any{"key_id": "nope"}},
		{"retire checked in", contract.CodeKeyRetireDenied, "key.retire", map[string]any{"key_id": "in"}},
		{"code for no key", contract.CodeKeyNotFound, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "ongoing", "key_id": "nope", "action": "pickup"}},
		{"code not numeric", contract.CodeCodeNotNumeric, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "12-12", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code 3 digits", contract.CodeCodeInvalidLength, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "121", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code 17 digits", contract.CodeCodeInvalidLength, "access_code.upsert", map[string]any{"access_code_id": "x", "code": tooLong(17, "7"), "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code taken", contract.CodeCodeTaken, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "4444", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code is a key code", contract.CodeCodeTaken, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "86427531", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code without id", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"code": "1212", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"code bad type", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "forever", "key_id": "out", "action": "pickup"}},
		{"code bad action", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "ongoing", "key_id": "out", "action": "steal"}},
		{"ongoing with times", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup", "ends_at": t0.Add(time.Hour)}},
		{"time bound without end", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "time_bound", "key_id": "out", "action": "pickup", "starts_at": t0}},
		{"ends before it starts", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "time_bound", "key_id": "out", "action": "pickup", "starts_at": t0.Add(2 * time.Hour), "ends_at": t0.Add(time.Hour)}},
		{"ended already", contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "x", "code": "1212", "name": "x", "type": "time_bound", "key_id": "out", "action": "pickup", "starts_at": t0.Add(-2 * time.Hour), "ends_at": t0.Add(-time.Hour)}},
		{"new code without code", contract.CodeCodeInvalidLength, "access_code.upsert", map[string]any{"access_code_id": "x", "name": "x", "type": "ongoing", "key_id": "out", "action": "pickup"}},
		{"delete unknown code", contract.CodeAccessCodeNotFound, "access_code.delete", map[string]any{"access_code_id": "nope"}},
		{"open unknown bin", contract.CodeBinNotFound, "bin.open", map[string]any{"bin": 99}},
		{"open without bin", contract.CodeCmdInvalid, "bin.open", map[string]any{}},
		{"wrong type", contract.CodeCmdInvalid, "bin.open", map[string]any{"bin": "one"}},
		{"unknown field", contract.CodeCmdInvalid, "key.upsert", map[string]any{"key_id": "new", "name": "n", "colour": "red"}},
		{"settings without value", contract.CodeCmdInvalid, "settings.set", map[string]any{}},
		{"disable key codes with a virtual key in", contract.CodeKeyVirtualCheckedIn, "settings.set", map[string]any{"key_codes_enabled": false}},
		{"unknown command", contract.CodeCmdUnknown, "key.explode", map[string]any{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.count()
			stateBefore := h.state()
			keysBefore, _ := h.box.Keys()
			h.mustFail(tc.code, tc.typ, tc.data)
			// The refusal is the only trace: no event, no change.
			eq(t, "events", h.count(), before)
			after := h.state()
			eq(t, "keys", after.Keys, stateBefore.Keys)
			eq(t, "access codes", after.AccessCodes, stateBefore.AccessCodes)
			keysAfter, _ := h.box.Keys()
			a, _ := json.Marshal(keysBefore)
			b, _ := json.Marshal(keysAfter)
			if !bytes.Equal(a, b) {
				t.Fatalf("keys changed:\n%s\n%s", a, b)
			}
		})
	}
}

func TestLimitsCountCharacters(t *testing.T) {
	h := newHarness(t)
	// 60 two-byte characters are 120 bytes and still fit.
	r := h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "n", "description": strings.Repeat("é", 60), "notes": strings.Repeat("日", 100), "pickup_note": strings.Repeat("ß", 240)})
	eq(t, "description", r["description"].(string), strings.Repeat("é", 60))
	// 4 and 16 digit codes are both fine.
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "a", "code": "0000", "name": "x", "type": "ongoing", "key_id": "k", "action": "pickup"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "b", "code": strings.Repeat("9", 16), "name": "x", "type": "ongoing", "key_id": "k", "action": "pickup"})
	// Serials are kept upper case.
	r = h.mustOK("key.upsert", map[string]any{"key_id": "f", "name": "f", "serial_number": "0a1b2c3d4e"})
	eq(t, "serial", r["serial_number"].(string), "0A1B2C3D4E")
}

func TestCommandIdempotent(t *testing.T) {
	h := newHarness(t)
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	first := h.execID("same", "key.upsert", map[string]any{"key_id": "v", "name": "v", "virtual": true})
	if !first.OK {
		t.Fatal(first.Error)
	}
	var res map[string]any
	json.Unmarshal(first.Result, &res)
	code := res["key_code"].(string)
	n := h.count()
	second := h.execID("same", "key.upsert", map[string]any{"key_id": "v", "name": "v", "virtual": true})
	eq(t, "second ok", second.OK, true)
	eq(t, "no second effect", h.count(), n)
	// The generated code was sent once and is not kept, not even in the
	// stored reply.
	if bytes.Contains(second.Result, []byte(code)) {
		t.Fatal("the stored reply carries the generated key code")
	}
	h.restart()
	third := h.execID("same", "key.upsert", map[string]any{"key_id": "v", "name": "v", "virtual": true})
	if !bytes.Equal(third.Result, second.Result) {
		t.Fatalf("reply after restart differs:\n%s\n%s", third.Result, second.Result)
	}
	// An error reply is kept too.
	e1 := h.execID("bad", "key.retire", map[string]any{"key_id": "ghost"})
	h.mustOK("key.upsert", map[string]any{"key_id": "ghost", "name": "g"})
	e2 := h.execID("bad", "key.retire", map[string]any{"key_id": "ghost"})
	if e2.OK || e2.Error.Code != e1.Error.Code {
		t.Fatalf("replayed error differs: %+v vs %+v", e1, e2)
	}
	if h.key("ghost") == nil {
		t.Fatal("a replayed command had an effect")
	}
	h.stop()
	raw, err := os.ReadFile(filepath.Join(h.dir, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(code)) {
		t.Fatal("the database file contains the key code")
	}
}

func TestCommandExpired(t *testing.T) {
	h := newHarness(t)
	past := t0.Add(-time.Second)
	r, err := h.box.Execute(t.Context(), contract.Command{ID: "old", Type: "bin.open", Data: []byte(`{"bin":1}`), ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || r.Error.Code != contract.CodeCmdExpired {
		t.Fatalf("reply %+v", r)
	}
	if len(h.locks.pulses()) != 0 {
		t.Fatal("an expired command opened a bin")
	}
}

func TestStateGet(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	r := h.mustOK("state.get", map[string]any{})
	bins := r["bins"].([]any)
	eq(t, "bins", len(bins), 3)
	b := bins[bin-1].(map[string]any)
	eq(t, "state", b["state"].(string), "occupied")
	eq(t, "key", b["key_id"].(string), "k")
	eq(t, "lock", b["lock"].(string), "locked")
	eq(t, "keys", r["keys"].(float64), 1.0)
	if r["outbox"].(map[string]any)["depth"].(float64) < 1 {
		t.Fatal("outbox depth 0 with unacked events")
	}
	v1 := h.state().Version
	h.nofob(bin)
	h.advance(4 * time.Second)
	if v2 := h.state().Version; v2 <= v1 {
		t.Fatalf("version %d did not rise above %d", v2, v1)
	}
	// Versions keep rising across a restart.
	v3 := h.state().Version
	h.restart()
	if v4 := h.state().Version; v4 <= v3 {
		t.Fatalf("version after restart %d <= %d", v4, v3)
	}
}

// FuzzCommandData feeds random data to every command type on one box: no
// panic, every reply is OK or carries a code, and a refused command appends
// no event.
func FuzzCommandData(f *testing.F) {
	types := []string{"key.upsert", "key.unlink", "key.retire", "access_code.upsert", "access_code.delete", "bin.open", "settings.set", "sync.snapshot", "state.get"}
	f.Add(uint8(0), []byte(`{"key_id":"k","name":"n","serial_number":"ABCD"}`))
	f.Add(uint8(3), []byte(`{"access_code_id":"a","code":"1234","name":"n","type":"ongoing","key_id":"k","action":"pickup"}`))
	f.Add(uint8(3), []byte(`{"access_code_id":"t","code":"12345","name":"n","type":"time_bound","starts_at":"2026-11-22T11:00:00Z","ends_at":"2026-11-22T12:00:00Z","key_id":"k","action":"dropoff"}`))
	f.Add(uint8(5), []byte(`{"bin":2}`))
	f.Add(uint8(7), []byte(`{"version":"1","keys":[{"key_id":"k","name":"n"}],"access_codes":[]}`))
	f.Add(uint8(6), []byte(`{"key_codes_enabled":true}`))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := types[int(which)%len(types)]
		seq := func() uint64 {
			s, err := h.db.OutboxStats()
			if err != nil {
				t.Fatal(err)
			}
			return s.LastSeq
		}
		before := seq()
		r, err := h.box.Execute(t.Context(), contract.Command{ID: fmt.Sprintf("f%d-%x", before, data), Type: typ, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK {
			if r.Error == nil || r.Error.Code == "" || r.Error.Code == contract.CodeInternal {
				t.Fatalf("%s %q: reply %+v", typ, data, r)
			}
			if seq() != before {
				t.Fatalf("%s %q: refused but appended events", typ, data)
			}
		}
	})
}
