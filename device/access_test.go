package device

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/offline"
	"smartboxd/store"
)

// accessCode returns the stored access code id, nil when there is none.
func (h *harness) accessCode(id string) *store.AccessCode {
	h.t.Helper()
	var a *store.AccessCode
	if err := h.db.View(func(tx *store.Tx) (err error) { a, err = tx.AccessCode(id); return }); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// reason is the reason of the last code.rejected event.
func (h *harness) reason() string {
	h.t.Helper()
	return h.last(contract.EventCodeRejected)["reason"].(string)
}

// virtualKey makes a virtual key (key codes on), which needs no fob.
func (h *harness) virtualKey(id, code string) {
	h.t.Helper()
	h.mustOK("settings.set", map[string]any{"key_codes_enabled": true})
	h.mustOK("key.upsert", map[string]any{"key_id": id, "name": "Key " + id, "virtual": true, "key_code": code})
}

func TestOneTimeCodeIsRemovedWithItsUse(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	bin := h.checkIn("k1", "")
	res := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "once", "code": "2468", "name": "guest",
		"type": "ongoing", "key_id": "k1", "action": "pickup", "is_one_time_use": true})
	eq(t, "max_uses", res["max_uses"], any(1.0))
	eq(t, "uses", res["uses"], any(0.0))

	n := h.count()
	h.enter("2468")
	eq(t, "bin opened", h.last(contract.EventBinUnlocked)["bin"], any(float64(bin)))
	// The use, the pickup (a virtual key is done at once) and the removal
	// are one transaction: consecutive events.
	if got := h.typesSince(n); !slices.Equal(got, []string{"bin.unlocked", "key.picked_up", "access_code.status", "access_code.status"}) {
		t.Fatalf("events: %v", got)
	}
	st := h.eventsOf(contract.EventAccessCodeStatus)
	for i, want := range []string{contract.StatusRemoving, contract.StatusRemoved} {
		s := st[len(st)-2+i]
		eq(t, "status", s["status"], any(want))
		eq(t, "uses", s["uses"], any(1.0))
	}
	if h.accessCode("once") != nil {
		t.Fatal("a used-up code is still stored")
	}
	// Even with the key back, the code opens nothing again, also after a
	// restart.
	h.checkIn("k1", "")
	h.restart()
	h.enter("2468")
	eq(t, "reason", h.reason(), contract.CodeCodeUnknown)
}

func TestMaxUsesCountsEntriesThatOpen(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "three", "code": "13579", "name": "cleaner",
		"type": "ongoing", "key_id": "k1", "action": "pickup", "max_uses": 2})
	// Not checked in: the entry opens nothing and uses nothing.
	h.enter("13579")
	eq(t, "reason", h.reason(), contract.CodeKeyNotCheckedIn)
	eq(t, "uses after a refusal", h.accessCode("three").Uses, 0)

	h.checkIn("k1", "")
	h.enter("13579")
	eq(t, "uses", h.accessCode("three").Uses, 1)
	// The view says so, and an update keeps the count.
	res := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "three", "name": "cleaner, twice"})
	eq(t, "reported uses", res["uses"], any(1.0))
	h.mustFail(contract.CodeAccessCodeInvalid, "access_code.upsert", map[string]any{"access_code_id": "three", "max_uses": 1})
	eq(t, "limit after a refused update", h.accessCode("three").MaxUses, 2)

	h.checkIn("k1", "")
	h.enter("13579")
	if h.accessCode("three") != nil {
		t.Fatal("the code outlived its second use")
	}
	eq(t, "last status", h.last(contract.EventAccessCodeStatus)["status"], any(contract.StatusRemoved))
}

func TestTwoFastEntriesOneUse(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.checkIn("k1", "")
	h.virtualKey("k2", "33334444")
	h.checkIn("k2", "")
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "once", "code": "97979", "name": "guest",
		"type": "ongoing", "key_id": "k1", "action": "pickup", "max_uses": 1})
	unlocked := len(h.eventsOf(contract.EventBinUnlocked))
	// Both entries are queued before the loop handles either.
	h.box.KeypadEntry("97979")
	h.box.KeypadEntry("97979")
	h.flush()
	eq(t, "bins opened", len(h.eventsOf(contract.EventBinUnlocked)), unlocked+1)
	eq(t, "second entry", h.reason(), contract.CodeCodeUnknown)
}

func TestAccessCodeLimitAndScheduleRefused(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door"})
	base := func(extra map[string]any) map[string]any {
		d := map[string]any{"access_code_id": "ac", "code": "5555", "name": "x", "type": "ongoing", "key_id": "k1", "action": "pickup"}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	week := func(zone string, seg map[string]any) map[string]any {
		return map[string]any{"time_zone": zone, "weekly": []any{seg}}
	}
	seg := map[string]any{"days": []string{"mon"}, "from": "09:00", "to": "17:00"}
	for _, tc := range []struct {
		name  string
		extra map[string]any
		code  string
		field string // what the message names
	}{
		{"max_uses 0", map[string]any{"max_uses": 0}, contract.CodeAccessCodeInvalid, "max_uses"},
		{"max_uses negative", map[string]any{"max_uses": -3}, contract.CodeAccessCodeInvalid, "max_uses"},
		{"max_uses a fraction", map[string]any{"max_uses": 1.5}, contract.CodeCmdInvalid, "max_uses"},
		{"max_uses a string", map[string]any{"max_uses": "1"}, contract.CodeCmdInvalid, "max_uses"},
		{"one-time with max_uses 3", map[string]any{"is_one_time_use": true, "max_uses": 3}, contract.CodeAccessCodeInvalid, "is_one_time_use"},
		{"not one-time with max_uses 1", map[string]any{"is_one_time_use": false, "max_uses": 1}, contract.CodeAccessCodeInvalid, "is_one_time_use"},
		{"unknown zone", map[string]any{"schedule": week("Europe/Atlantis", seg)}, contract.CodeAccessCodeInvalid, "schedule.time_zone"},
		{"from equals to", map[string]any{"schedule": week("Europe/Berlin", map[string]any{"days": []string{"mon"}, "from": "09:00", "to": "09:00"})}, contract.CodeAccessCodeInvalid, "schedule.weekly[0].to"},
		{"not a day", map[string]any{"schedule": week("Europe/Berlin", map[string]any{"days": []string{"mon", "someday"}, "from": "09:00", "to": "17:00"})}, contract.CodeAccessCodeInvalid, "schedule.weekly[0].days[1]"},
		{"a time that is not", map[string]any{"schedule": week("Europe/Berlin", map[string]any{"days": []string{"mon"}, "from": "25:00", "to": "17:00"})}, contract.CodeAccessCodeInvalid, "schedule.weekly[0].from"},
		{"no segments", map[string]any{"schedule": map[string]any{"time_zone": "UTC", "weekly": []any{}}}, contract.CodeAccessCodeInvalid, "schedule.weekly"},
		{"schedule a string", map[string]any{"schedule": "mon 9-5"}, contract.CodeAccessCodeInvalid, "schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, codes := h.count(), h.state().AccessCodes
			r := h.exec("access_code.upsert", base(tc.extra))
			if r.OK || r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.field) {
				t.Fatalf("got %+v, want %s naming %s", r, tc.code, tc.field)
			}
			eq(t, "events", h.count(), n)
			eq(t, "codes", h.state().AccessCodes, codes)
		})
	}
}

// monday is a Monday in winter, 07:00 UTC (08:00 in Berlin).
var monday = time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)

func TestScheduleOpensOnlyInsideItsSegments(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.checkIn("k1", "")
	sched := map[string]any{"time_zone": "Europe/Berlin", "weekly": []any{map[string]any{"days": []string{"mon"}, "from": "09:00", "to": "17:00"}}}
	res := h.mustOK("access_code.upsert", map[string]any{"access_code_id": "office", "code": "900917", "name": "office hours",
		"type": "ongoing", "key_id": "k1", "action": "pickup", "schedule": sched})
	raw, _ := json.Marshal(res["schedule"])
	eq(t, "reported schedule", string(raw), `{"time_zone":"Europe/Berlin","weekly":[{"days":["mon"],"from":"09:00","to":"17:00"}]}`)

	h.advance(monday.Sub(h.clock.Now())) // Monday 08:00 in Berlin
	// Outside, as often as one likes: not a wrong entry, no lockout.
	for range 7 {
		h.enter("900917")
		eq(t, "reason before 09:00", h.reason(), contract.CodeCodeNotActive)
	}
	eq(t, "lockouts", len(h.eventsOf(contract.EventKeypadLockedOut)), 0)

	at := func(clock string, want bool) {
		t.Helper()
		tm, _ := time.Parse(time.RFC3339, clock)
		h.advance(tm.Sub(h.clock.Now()))
		opened := len(h.eventsOf(contract.EventBinUnlocked))
		h.enter("900917")
		got := len(h.eventsOf(contract.EventBinUnlocked)) > opened
		if got != want {
			t.Fatalf("at %s (Berlin %s): opened %v, want %v; last rejection %v", clock, tm.In(berlin(t)).Format("Mon 15:04"), got, want, h.eventsOf(contract.EventCodeRejected)[len(h.eventsOf(contract.EventCodeRejected))-1])
		}
		if got {
			h.checkIn("k1", "") // back for the next entry
		} else {
			eq(t, "reason", h.reason(), contract.CodeCodeNotActive)
		}
	}
	at("2026-11-23T07:59:59Z", false) // 08:59:59 CET
	at("2026-11-23T08:00:00Z", true)  // 09:00 CET
	at("2026-11-23T15:59:00Z", true)  // 16:59 CET
	at("2026-11-23T16:00:00Z", false) // 17:00 CET
	at("2026-11-24T08:30:00Z", false) // Tuesday
	// Summer time: the segment keeps its wall-clock hours.
	at("2027-03-29T06:59:00Z", false) // 08:59 CEST
	at("2027-03-29T07:00:00Z", true)  // 09:00 CEST
	at("2027-03-29T14:59:00Z", true)  // 16:59 CEST
	at("2027-03-29T15:00:00Z", false) // 17:00 CEST

	// Inside the segment, yet the clock is not trusted.
	h.advance(7 * 24 * time.Hour)
	h.synced.Store(false)
	h.enter("900917")
	eq(t, "reason unsynced", h.reason(), contract.CodeClockUnsynced)
	h.synced.Store(true)

	// null takes the schedule away: the code opens on a Sunday.
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "office", "schedule": nil})
	h.advance(6 * 24 * time.Hour)
	opened := len(h.eventsOf(contract.EventBinUnlocked))
	h.enter("900917")
	eq(t, "opened without a schedule", len(h.eventsOf(contract.EventBinUnlocked)), opened+1)
}

func berlin(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestTimeBoundScheduledCode(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.checkIn("k1", "")
	h.advance(monday.Sub(h.clock.Now()))
	// Weekdays 09:00-17:00 in Berlin, for Monday and Tuesday only.
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "tb", "code": "424299", "name": "two days",
		"type": "time_bound", "starts_at": "2026-11-23T00:00:00Z", "ends_at": "2026-11-25T00:00:00Z", "key_id": "k1", "action": "pickup",
		"schedule": map[string]any{"time_zone": "Europe/Berlin", "weekly": []any{map[string]any{"days": []string{"mon", "tue", "wed"}, "from": "09:00", "to": "17:00"}}}})
	h.enter("424299")
	eq(t, "before 09:00", h.reason(), contract.CodeCodeNotActive)
	h.advance(2 * time.Hour) // Monday 10:00
	opened := len(h.eventsOf(contract.EventBinUnlocked))
	h.enter("424299")
	eq(t, "inside both", len(h.eventsOf(contract.EventBinUnlocked)), opened+1)
}

// offlineKey is the key of the offline-code tests.
var offlineKey = bytes.Repeat([]byte{0x5a}, offline.KeySize)

func setOfflineKey(h *harness) {
	h.t.Helper()
	h.mustOK(contract.TypeOfflineSetKey, map[string]any{"key": base64.StdEncoding.EncodeToString(offlineKey)})
}

func offlineCode(t *testing.T, keyID string, mode offline.Mode, class int, start time.Time) string {
	t.Helper()
	code, err := offline.Generate(offlineKey, "box-test", keyID, mode, class, start)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestOfflineSetKey(t *testing.T) {
	h := newHarness(t)
	enc := base64.StdEncoding.EncodeToString(offlineKey)
	for _, tc := range []struct {
		name string
		data map[string]any
		code string
	}{
		{"no key", map[string]any{}, contract.CodeCmdInvalid},
		{"not base64", map[string]any{"key": "not base64!"}, contract.CodeCmdInvalid},
		{"too short", map[string]any{"key": base64.StdEncoding.EncodeToString(offlineKey[:31])}, contract.CodeCmdInvalid},
		{"too long", map[string]any{"key": base64.StdEncoding.EncodeToString(append(offlineKey, 1))}, contract.CodeCmdInvalid},
		{"unpadded", map[string]any{"key": strings.TrimRight(enc, "=")}, contract.CodeCmdInvalid},
		{"a number", map[string]any{"key": 7}, contract.CodeCmdInvalid},
		{"unknown member", map[string]any{"key": enc, "sealed": true}, contract.CodeCmdInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := h.count()
			h.mustFail(tc.code, contract.TypeOfflineSetKey, tc.data)
			eq(t, "events", h.count(), n)
			var k []byte
			h.db.View(func(tx *store.Tx) error { k = tx.OfflineKey(); return nil })
			if k != nil {
				t.Fatal("a refused key was stored")
			}
		})
	}
	res := h.mustOK(contract.TypeOfflineSetKey, map[string]any{"key": enc})
	eq(t, "key_set", res["key_set"], any(true))
	eq(t, "fingerprint", res["fingerprint"], any(fingerprint(offlineKey)))
	eq(t, "event fingerprint", h.last(contract.EventOfflineKeySet)["fingerprint"], any(fingerprint(offlineKey)))
	// The key is in no event and no kept reply.
	for _, ev := range h.events() {
		if bytes.Contains(ev.Data, []byte(enc)) {
			t.Fatalf("event %s carries the key", ev.Type)
		}
	}
	h.db.View(func(tx *store.Tx) error {
		for i := 1; i <= h.cmdN; i++ {
			if r, ok := tx.Reply(fmt.Sprintf("c%d", i)); ok && bytes.Contains(r, []byte(enc)) {
				t.Errorf("reply c%d carries the key", i)
			}
		}
		return nil
	})
}

func TestOfflinePickupAndDropoff(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0A0A0A0A0A"})
	h.mustOK("key.upsert", map[string]any{"key_id": "k2", "name": "Garage", "serial_number": "0B0B0B0B0B"})
	bin := h.checkIn("k1", "0A0A0A0A0A")
	pickup := offlineCode(t, "k1", offline.Pickup, 4, h.clock.Now())
	dropoff := offlineCode(t, "k2", offline.Dropoff, 4, h.clock.Now())

	// No key set: a 14-digit entry is only a wrong code.
	h.enter(pickup)
	eq(t, "without a key", h.reason(), contract.CodeCodeUnknown)

	setOfflineKey(h)
	h.advance(3 * time.Hour) // well inside the 24 hours
	h.enter(pickup)
	eq(t, "pickup bin", h.last(contract.EventBinUnlocked)["bin"], any(float64(bin)))
	h.nofob(bin)
	p := h.last(contract.EventKeyPickedUp)
	eq(t, "key", p["key_id"], any("k1"))
	eq(t, "via", p["via"], any(contract.ViaOffline))
	if v, ok := p["access_code_id"]; !ok || v != nil {
		t.Fatalf("access_code_id %v (present %v), want null", v, ok)
	}

	h.enter(dropoff)
	u := h.last(contract.EventBinUnlocked)
	eq(t, "dropoff reason", u["reason"], any(contract.ReasonDropoff))
	h.fob(int(u["bin"].(float64)), "0B0B0B0B0B")
	d := h.last(contract.EventKeyDroppedOff)
	eq(t, "dropped key", d["key_id"], any("k2"))
	eq(t, "dropped via", d["via"], any(contract.ViaOffline))
	if v, ok := d["access_code_id"]; !ok || v != nil {
		t.Fatalf("access_code_id %v (present %v), want null", v, ok)
	}
	// k2 is here now: its drop-off code has no candidate and is a wrong
	// entry; a pickup code for it would open.
	h.enter(dropoff)
	eq(t, "dropoff of a key here", h.reason(), contract.CodeCodeUnknown)

	// The window ends: the right code is not active, and no wrong entry.
	h.advance(22 * time.Hour)
	h.enter(offlineCode(t, "k2", offline.Pickup, 4, t0))
	eq(t, "after the window", h.reason(), contract.CodeCodeNotActive)
	// The next hour's code is valid from its hour, not before.
	next := offlineCode(t, "k2", offline.Pickup, 0, h.clock.Now().Add(time.Hour))
	h.enter(next)
	eq(t, "next hour", h.reason(), contract.CodeCodeNotActive)
	h.advance(time.Hour)
	opened := len(h.eventsOf(contract.EventBinUnlocked))
	h.enter(next)
	eq(t, "in its hour", len(h.eventsOf(contract.EventBinUnlocked)), opened+1)
	eq(t, "no lockout", len(h.eventsOf(contract.EventKeypadLockedOut)), 0)
}

func TestOfflineOnceAndRevoke(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.virtualKey("k2", "33334444")
	h.checkIn("k1", "")
	h.checkIn("k2", "")
	setOfflineKey(h)
	once := offlineCode(t, "k1", offline.PickupOnce, 2, h.clock.Now())
	h.enter(once)
	eq(t, "first use", h.last(contract.EventKeyPickedUp)["via"], any(contract.ViaOffline))
	h.checkIn("k1", "")
	h.restart() // the mark is durable
	h.enter(once)
	eq(t, "second use", h.reason(), contract.CodeCodeUsedUp)

	// offline.revoke refuses a code before it is used; bad codes are
	// refused and change nothing.
	plain := offlineCode(t, "k2", offline.Pickup, 4, h.clock.Now())
	for _, bad := range []any{"123", "01000000000000", "51000000000000", "1x000000000000", int64(11000000000000), nil} {
		n := h.count()
		h.mustFail(contract.CodeCmdInvalid, contract.TypeOfflineRevoke, map[string]any{"code": bad})
		eq(t, "events after a bad revoke", h.count(), n)
	}
	res := h.mustOK(contract.TypeOfflineRevoke, map[string]any{"code": plain})
	eq(t, "revoked", res["revoked"], any(true))
	for _, ev := range h.events() {
		if bytes.Contains(ev.Data, []byte(plain)) {
			t.Fatalf("event %s carries the revoked code", ev.Type)
		}
	}
	h.enter(plain)
	eq(t, "revoked code", h.reason(), contract.CodeCodeRevoked)
	eq(t, "no lockout", len(h.eventsOf(contract.EventKeypadLockedOut)), 0)

	marks := func() int {
		var n int
		h.db.View(func(tx *store.Tx) error { n = tx.OfflineMarks(); return nil })
		return n
	}
	eq(t, "marks kept", marks(), 2)
	// Past the once code's 4 hours the scheduler lets its mark go; the
	// revoked one (24 hours) stays.
	h.advance(5 * time.Hour)
	h.advance(time.Minute)
	eq(t, "marks after 5 h", marks(), 1)
	h.advance(20 * time.Hour)
	h.advance(time.Minute)
	eq(t, "marks after a day", marks(), 0)
}

func TestWrongOfflineCodesLockTheKeypad(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.checkIn("k1", "")
	setOfflineKey(h)
	good := offlineCode(t, "k1", offline.Pickup, 4, h.clock.Now())
	h.synced.Store(false)
	h.enter(good)
	eq(t, "unsynced", h.reason(), contract.CodeClockUnsynced)
	h.synced.Store(true)
	wrongTag := good[:13] + string('0'+(good[13]-'0'+1)%10)
	for i, bad := range []string{wrongTag, "0" + good[1:], "5" + good[1:], "9" + good[1:], offlineCode(t, "k1", offline.Dropoff, 4, h.clock.Now())} {
		h.enter(bad)
		eq(t, fmt.Sprintf("wrong %d", i), h.reason(), contract.CodeCodeUnknown)
	}
	eq(t, "lockouts", len(h.eventsOf(contract.EventKeypadLockedOut)), 1)
	h.enter(good)
	eq(t, "locked out", h.reason(), contract.CodeKeypadLockedOut)
}

// TestOfflineVectorOpens checks published test vectors end to end: the
// box of the vectors, at the vectors' time, opens for them.
func TestOfflineVectorOpens(t *testing.T) {
	h := newHarnessAt(t, time.Date(2025, 2, 20, 16, 30, 0, 0, time.UTC), func(c *Config) { c.BoxID = "box-0042" })
	h.virtualKey("key-1", "11112222")
	h.virtualKey("k", "33334444")
	h.checkIn("key-1", "")
	h.mustOK(contract.TypeOfflineSetKey, map[string]any{"key": "iM6XpijApFiZnFo0bN9w42am5QKbrEW6bDDF1Uz5E40="})
	h.enter("19000025204743") // key-1, pickup, 672 h from 2025-02-20T16:00:00Z
	eq(t, "pickup", h.last(contract.EventKeyPickedUp)["key_id"], any("key-1"))
	h.enter("41000091082976") // k, drop-off once, 2 h from 2025-02-20T16:00:00Z
	eq(t, "drop-off", h.last(contract.EventBinUnlocked)["reason"], any(contract.ReasonDropoff))
	h.advance(61 * time.Second) // a virtual key is in when its bin's time is up
	eq(t, "dropped", h.last(contract.EventKeyDroppedOff)["key_id"], any("k"))
}

func TestLimitsInStateAndMaxKeys(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxKeys = 2; c.MaxAccessCodes = 7 })
	eq(t, "limits", h.state().Limits, contract.StateLimits{CodeMin: 4, CodeMax: 16, MaxAccessCodes: 7, MaxKeys: 2})
	h.mustOK("key.upsert", map[string]any{"key_id": "a", "name": "A"})
	h.mustOK("key.upsert", map[string]any{"key_id": "b", "name": "B"})
	n := h.count()
	h.mustFail(contract.CodeKeyLimit, "key.upsert", map[string]any{"key_id": "c", "name": "C"})
	eq(t, "events", h.count(), n)
	eq(t, "keys", h.state().Keys, 2)
	h.mustOK("key.upsert", map[string]any{"key_id": "b", "name": "B, renamed"}) // not a new key
	snap := func(ids ...string) map[string]any {
		var keys []any
		for _, id := range ids {
			keys = append(keys, map[string]any{"key_id": id, "name": id})
		}
		return map[string]any{"version": "v1", "keys": keys, "access_codes": []any{}}
	}
	h.mustFail(contract.CodeKeyLimit, "sync.snapshot", snap("x", "y", "z"))
	eq(t, "keys after a refused snapshot", h.state().Keys, 2)
	h.mustOK("sync.snapshot", snap("x", "y"))
	eq(t, "keys after a snapshot", h.state().Keys, 2)

	d := newHarness(t)
	eq(t, "default max_keys", d.state().Limits.MaxKeys, DefaultMaxKeys)
}

func TestSnapshotKeepsUses(t *testing.T) {
	h := newHarness(t)
	h.virtualKey("k1", "11112222")
	h.checkIn("k1", "")
	rec := func(maxUses int) map[string]any {
		return map[string]any{"version": "v", "keys": []any{map[string]any{"key_id": "k1", "name": "k1", "virtual": true}},
			"access_codes": []any{map[string]any{"access_code_id": "two", "code": "860860", "name": "two", "type": "ongoing",
				"key_id": "k1", "action": "pickup", "max_uses": maxUses}}}
	}
	h.mustOK("sync.snapshot", rec(2))
	h.enter("860860")
	h.checkIn("k1", "")
	res := h.mustOK("sync.snapshot", rec(2))
	eq(t, "uses kept", h.accessCode("two").Uses, 1)
	eq(t, "codes", res["access_codes"], any(1.0))
	// A limit the box has already reached: the code is used up, not set.
	res = h.mustOK("sync.snapshot", rec(1))
	eq(t, "codes", res["access_codes"], any(0.0))
	eq(t, "skipped", res["expired"], any(1.0))
	h.enter("860860")
	eq(t, "used up", h.reason(), contract.CodeCodeUnknown)
}

// FuzzOfflineCommandData feeds the offline commands' data readers: they
// take a key or a code or refuse with cmd.invalid, and never repeat what
// they were given.
func FuzzOfflineCommandData(f *testing.F) {
	for _, s := range []string{`{"key":"` + base64.StdEncoding.EncodeToString(offlineKey) + `"}`, `{"key":"QUJD"}`, `{"code":"11000095031223"}`,
		`{"code":"01000095031223"}`, `{"key":7}`, `{}`, `{"code":"١١٠٠٠٠٩٥٠٣١٢٢٣"}`} {
		f.Add([]byte(s))
	}
	b := &Box{} // no identity: a sealed form is code.sealed.invalid
	refused := func(err error) bool {
		code := contract.CodeOf(err)
		return code == contract.CodeCmdInvalid || code == contract.CodeCodeSealedInvalid
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var kd offlineKeyData
		if contract.DecodeData(data, &kd) == nil {
			key, err := b.offlineKeyOf(kd)
			switch {
			case err == nil && len(key) != offline.KeySize:
				t.Fatalf("a key of %d bytes", len(key))
			case err != nil && !refused(err):
				t.Fatalf("key error %v", err)
			case err != nil && kd.Key != nil && len(*kd.Key) > 12 && strings.Contains(err.Error(), *kd.Key):
				t.Fatalf("the error repeats the key: %v", err)
			}
		}
		var cd offlineCodeData
		if contract.DecodeData(data, &cd) == nil {
			p, code, err := b.offlineCodeOf(cd)
			switch {
			case err == nil && (p.String() != code || !p.Mode.Valid()):
				t.Fatalf("code %q read as %+v", code, p)
			case err != nil && !refused(err):
				t.Fatalf("code error %v", err)
			case err != nil && cd.Code != nil && len(*cd.Code) > 12 && strings.Contains(err.Error(), *cd.Code):
				t.Fatalf("the error repeats the code: %v", err)
			}
		}
	})
}
