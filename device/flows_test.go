package device

import (
	"slices"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
)

func TestPickupByAccessCode(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0a1b2c3d4e"})
	bin := h.checkIn("k1", "0A1B2C3D4E")
	eq(t, "bin state", h.binState(bin).State, "occupied")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "ac1", "code": "1234", "name": "guest", "type": "ongoing", "key_id": "k1", "action": "pickup"})

	pulses := len(h.locks.pulses())
	n := h.count()
	h.enter("1234")
	eq(t, "pulses", len(h.locks.pulses()), pulses+1)
	eq(t, "pulsed bin", h.locks.pulses()[pulses], bin)
	u := h.last("bin.unlocked")
	eq(t, "reason", u["reason"].(string), "pickup")
	eq(t, "bin", int(u["bin"].(float64)), bin)
	eq(t, "bin state while open", h.binState(bin).State, "open")
	eq(t, "accepted", h.fb.ok.Load(), int32(2)) // the drop-off and this

	// The fob leaves: the pickup is done.
	h.nofob(bin)
	p := h.last("key.picked_up")
	eq(t, "key", p["key_id"].(string), "k1")
	eq(t, "access code", p["access_code_id"].(string), "ac1")
	eq(t, "via", p["via"].(string), "access_code")
	eq(t, "bin after", h.binState(bin).State, "empty")
	if h.key("k1").Bin != 0 {
		t.Fatal("key still checked in after pickup")
	}
	if got := h.typesSince(n); !slices.Equal(got, []string{"bin.unlocked", "key.picked_up"}) {
		t.Fatalf("events: %v", got)
	}
	// The same code again: the key is gone.
	h.enter("1234")
	eq(t, "reason", h.last("code.rejected")["reason"].(string), contract.CodeKeyNotCheckedIn)
}

func TestDropoffLinksNewFob(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "No fob yet"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": "55555", "name": "cleaner", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	h.enter("55555")
	u := h.last("bin.unlocked")
	eq(t, "reason", u["reason"].(string), "dropoff")
	eq(t, "bin", int(u["bin"].(float64)), 1)
	h.fob(1, "00AABBCCDD")
	eq(t, "linked", h.last("fob.linked")["fob"].(string), "00AABBCCDD")
	d := h.last("key.dropped_off")
	eq(t, "dropped key", d["key_id"].(string), "k1")
	eq(t, "dropped fob", d["fob"].(string), "00AABBCCDD")
	k := h.key("k1")
	eq(t, "key fob", k.Fob, "00AABBCCDD")
	eq(t, "key bin", k.Bin, 1)
	s := h.binState(1)
	eq(t, "state", s.State, "occupied")
	eq(t, "bin key", *s.KeyID, "k1")
}

func TestDropoffChoosesAFreeBin(t *testing.T) {
	h := newHarness(t)
	for i, id := range []string{"a", "b", "c"} {
		h.mustOK("key.upsert", map[string]any{"key_id": id, "name": id, "serial_number": strings.Repeat(string(rune('A'+i)), 8)})
	}
	eq(t, "first", h.checkIn("a", "AAAAAAAA"), 1)
	eq(t, "second", h.checkIn("b", "BBBBBBBB"), 2)
	// A fob the reader sees in bin 3 makes it not free, even before the
	// inventory settles.
	h.fob(3, "FFFF0000")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "dc", "code": "424242", "name": "c", "type": "ongoing", "key_id": "c", "action": "dropoff"})
	pulses := len(h.locks.pulses())
	h.enter("424242")
	eq(t, "reason", h.last("code.rejected")["reason"].(string), contract.CodeNoAvailableBins)
	eq(t, "no pulse", len(h.locks.pulses()), pulses)
}

func TestDropoffOfAnotherKeysFob(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "mine", "name": "mine", "serial_number": "11111111"})
	h.mustOK("key.upsert", map[string]any{"key_id": "other", "name": "other", "serial_number": "22222222"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d", "code": "8080", "name": "d", "type": "ongoing", "key_id": "mine", "action": "dropoff"})
	h.enter("8080")
	h.fob(1, "22222222")
	w := h.last("dropoff.wrong_key")
	eq(t, "expected", w["expected"].(string), "mine")
	eq(t, "found", w["key_id"].(string), "other")
	eq(t, "dropped", h.last("key.dropped_off")["key_id"].(string), "other")
	eq(t, "other is in", h.key("other").Bin, 1)
	eq(t, "mine is not", h.key("mine").Bin, 0)
	if len(h.eventsOf("fob.linked")) != 0 {
		t.Fatal("an owned fob was linked again")
	}
}

func TestDropoffTimeout(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d", "code": "7777", "name": "d", "type": "ongoing", "key_id": "k", "action": "dropoff"})
	h.enter("7777")
	h.advance(59 * time.Second)
	eq(t, "still open", h.binState(1).State, "open")
	h.advance(2 * time.Second)
	eq(t, "timeout bin", int(h.last("dropoff.timeout")["bin"].(float64)), 1)
	eq(t, "bin empty again", h.binState(1).State, "empty")
	eq(t, "key not in", h.key("k").Bin, 0)
}

func TestPickupTimeoutKeepsKey(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "p", "code": "3141", "name": "p", "type": "ongoing", "key_id": "k", "action": "pickup"})
	h.enter("3141")
	h.advance(61 * time.Second)
	eq(t, "timeout", h.last("pickup.timeout")["key_id"].(string), "k")
	eq(t, "still occupied", h.binState(bin).State, "occupied")
	eq(t, "key still in", h.key("k").Bin, bin)
}

func TestVirtualKeyCodes(t *testing.T) {
	h := newHarness(t)
	h.mustFail(contract.CodeCodeDisabled, "key.upsert", map[string]any{"key_id": "v", "name": "virtual", "virtual": true})
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	res := h.mustOK("key.upsert", map[string]any{"key_id": "v", "name": "virtual", "virtual": true})
	code, _ := res["key_code"].(string)
	if len(code) != 8 || validateCode(code) != nil {
		t.Fatalf("generated key code %q", code)
	}
	// Not here yet.
	h.enter(code)
	eq(t, "reason", h.last("code.rejected")["reason"].(string), contract.CodeKeyNotCheckedIn)

	// Drop off: no fob to read, so the bin closing (here: the timeout) checks it in.
	bin := h.checkIn("v", "")
	d := h.last("key.dropped_off")
	if d["fob"] != nil {
		t.Fatalf("virtual drop-off with a fob: %v", d)
	}
	// Disabling key codes while it is checked in is refused.
	h.mustFail(contract.CodeKeyVirtualCheckedIn, "settings.set", map[string]any{"key_codes_enabled": false})

	n := h.count()
	h.enter(code)
	if got := h.typesSince(n); !slices.Equal(got, []string{"bin.unlocked", "key.picked_up"}) {
		t.Fatalf("events: %v", got)
	}
	p := h.last("key.picked_up")
	eq(t, "via", p["via"].(string), "key_code")
	if p["access_code_id"] != nil {
		t.Fatalf("access_code_id %v", p["access_code_id"])
	}
	eq(t, "bin empty", h.binState(bin).State, "empty")

	// With key codes off, the code no longer works.
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": false})
	h.enter(code)
	eq(t, "disabled", h.last("code.rejected")["reason"].(string), contract.CodeCodeDisabled)
}

func TestVirtualDropoffCompletesWhenDoorCloses(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Bins[0].HasDoor = true })
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	h.mustOK("key.upsert", map[string]any{"key_id": "v", "name": "v", "virtual": true, "key_code": "2468"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d", "code": "1357", "name": "d", "type": "ongoing", "key_id": "v", "action": "dropoff"})
	h.enter("1357")
	h.box.DoorChanged(1, true)
	h.box.DoorChanged(1, false)
	h.flush()
	eq(t, "checked in", h.key("v").Bin, 1)
	eq(t, "door", h.binState(1).Door, "closed")
}

func TestRejectedEntries(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LockoutAfter = 100 })
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "p", "code": "9999", "name": "p", "type": "ongoing", "key_id": "k", "action": "pickup"})
	for _, tc := range []struct {
		entry, reason string
	}{
		{"12a4", contract.CodeCodeNotNumeric},
		{"123", contract.CodeCodeInvalidLength},
		{"12345678901234567", contract.CodeCodeInvalidLength},
		{"0000", contract.CodeCodeUnknown},
		{"1234567890123456", contract.CodeCodeUnknown},
		{"9999", contract.CodeKeyNotCheckedIn},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			h.enter(tc.entry)
			eq(t, "reason", h.last("code.rejected")["reason"].(string), tc.reason)
		})
	}
	if len(h.locks.pulses()) != 0 {
		t.Fatalf("a rejected entry pulsed %v", h.locks.pulses())
	}
	eq(t, "rejected feedback", h.fb.bad.Load(), int32(6))
	// No code appears in any event.
	for _, ev := range h.events() {
		for _, c := range []string{"12a4", "0000", "9999", "1234567890123456"} {
			if strings.Contains(string(ev.Data), c) {
				t.Fatalf("event %s carries code %s: %s", ev.Type, c, ev.Data)
			}
		}
	}
}

func TestKeypadLockoutEscalatesAndSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "p", "code": "246813", "name": "p", "type": "ongoing", "key_id": "k", "action": "pickup"})

	for range 5 {
		h.enter("0000")
	}
	lo := h.eventsOf("keypad.locked_out")
	eq(t, "lockouts", len(lo), 1)
	eq(t, "until", lo[0]["until"].(string), t0.Add(30*time.Second).Format(time.RFC3339))
	pulses := len(h.locks.pulses())
	h.enter("246813") // right, but locked out
	eq(t, "reason", h.last("code.rejected")["reason"].(string), contract.CodeKeypadLockedOut)
	eq(t, "no pulse", len(h.locks.pulses()), pulses)

	// A reboot does not reset it.
	h.advance(10 * time.Second)
	h.restart()
	h.enter("246813")
	eq(t, "after restart", h.last("code.rejected")["reason"].(string), contract.CodeKeypadLockedOut)
	h.advance(21 * time.Second)

	// The next lockout lasts twice as long.
	for range 5 {
		h.enter("1111")
	}
	lo = h.eventsOf("keypad.locked_out")
	eq(t, "lockouts", len(lo), 2)
	now := h.clock.Now()
	eq(t, "doubled", lo[1]["until"].(string), now.Add(60*time.Second).Format(time.RFC3339))
	h.advance(59 * time.Second)
	h.enter("246813")
	eq(t, "still locked", h.last("code.rejected")["reason"].(string), contract.CodeKeypadLockedOut)
	h.advance(2 * time.Second)
	if n := len(h.locks.pulses()); n != 0 {
		t.Fatalf("pulses while locked out: %d", n)
	}
	h.enter("246813")
	if got := h.locks.pulses(); !slices.Equal(got, []int{bin}) {
		t.Fatalf("after the lockout: pulses %v, want [%d]", got, bin)
	}
}

func TestLockoutCapsAtMax(t *testing.T) {
	l := lockout{after: 1, base: 30 * time.Second, max: 900 * time.Second}
	now := t0
	var got []time.Duration
	for range 8 {
		_, until := l.fail(now)
		got = append(got, until.Sub(now))
	}
	want := []time.Duration{30, 60, 120, 240, 480, 900, 900, 900}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("lockout %d: %v, want %vs", i+1, got[i], want[i])
		}
	}
}

func TestInventoryFollowsReaders(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCDEF"})
	bin := h.checkIn("k", "ABCDEF")

	// The fob vanishes without a session (a power cut mid-pickup, say).
	h.nofob(bin)
	h.advance(2 * time.Second)
	if len(h.eventsOf("inventory.mismatch")) != 0 {
		t.Fatal("the state followed the reader before the view held")
	}
	h.advance(2 * time.Second)
	m := h.last("inventory.mismatch")
	eq(t, "expected", m["expected"].(string), "ABCDEF")
	if m["seen"] != nil {
		t.Fatalf("seen %v", m["seen"])
	}
	eq(t, "key out", h.key("k").Bin, 0)
	eq(t, "bin empty", h.binState(bin).State, "empty")

	// It turns up in bin 3: the key is there now.
	h.fob(3, "ABCDEF")
	h.advance(4 * time.Second)
	eq(t, "key in 3", h.key("k").Bin, 3)
	eq(t, "bin 3 key", *h.binState(3).KeyID, "k")

	// A fob nobody owns in bin 2.
	h.fob(2, "DEAD00BEEF")
	h.advance(4 * time.Second)
	eq(t, "unknown fob", h.last("fob.unknown")["fob"].(string), "DEAD00BEEF")
	s := h.binState(2)
	eq(t, "occupied", s.State, "occupied")
	if s.KeyID != nil {
		t.Fatalf("bin 2 key %v", *s.KeyID)
	}

	// A flicker shorter than the settle time changes nothing.
	n := h.count()
	h.nofob(3)
	h.advance(time.Second)
	h.fob(3, "ABCDEF")
	h.advance(5 * time.Second)
	eq(t, "no events for a flicker", h.count(), n)
}

func TestReaderFaultSuspendsInventory(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.nofob(bin)
	h.box.ReaderFault(1, errString("port gone"))
	h.flush()
	h.advance(10 * time.Second)
	eq(t, "fault", h.last("reader.fault")["error"].(string), "port gone")
	eq(t, "key still in", h.key("k").Bin, bin)
	h.box.ReaderOK(1)
	h.flush()
	eq(t, "ok", h.last("reader.ok")["reader"].(string), "/dev/r1")
}

type errString string

func (e errString) Error() string { return string(e) }

func TestRemoteOpenAndDoorEvents(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Bins[1].HasDoor = true })
	h.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k", "serial_number": "ABCD"})
	bin := h.checkIn("k", "ABCD")
	h.mustFail(contract.CodeBinNotFound, "bin.open", map[string]any{"bin": 9})
	h.mustOK("bin.open", map[string]any{"bin": bin})
	eq(t, "reason", h.last("bin.unlocked")["reason"].(string), "remote")
	h.nofob(bin)
	p := h.last("key.picked_up")
	eq(t, "via", p["via"].(string), "remote")
	if p["access_code_id"] != nil {
		t.Fatal("remote pickup with an access code")
	}
	// A technician opens an empty bin and puts a known fob in.
	h.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "k2", "serial_number": "BEEF"})
	if err := h.box.OpenBin(t.Context(), 3, "console"); err != nil {
		t.Fatal(err)
	}
	eq(t, "console", h.last("bin.unlocked")["reason"].(string), "console")
	h.fob(3, "BEEF")
	eq(t, "k2 in", h.key("k2").Bin, 3)

	h.box.DoorForced(2)
	h.box.DoorHeldOpen(2)
	h.box.OpenFailed(2)
	h.flush()
	for _, typ := range []string{"bin.forced", "bin.door_held_open", "bin.open_failed"} {
		eq(t, typ, int(h.last(typ)["bin"].(float64)), 2)
	}
	h.box.LockChanged(2, true)
	h.box.DoorChanged(2, true)
	h.flush()
	s := h.binState(2)
	eq(t, "lock", s.Lock, "energised")
	eq(t, "door", s.Door, "open")
}
