package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"smartboxd/contract"
)

func TestKeyRoundTrip(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	k := &Key{ID: "key-1", Name: "Front door", Description: "blue tag", Fob: "0A1B2C3D4E",
		Notes: "n", PickupNote: "p", AnyLocation: true, Bin: 3,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}
	v := &Key{ID: "key-2", Name: "Van", Virtual: true, CodeHash: db.CodeHash("8642"), CreatedAt: t0, UpdatedAt: t0}
	update(t, db, func(tx *Tx) error {
		if err := tx.PutKey(k); err != nil {
			return err
		}
		return tx.PutKey(v)
	})
	view(t, db, func(tx *Tx) error {
		for _, want := range []*Key{k, v} {
			got, err := tx.Key(want.ID)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Key(%q) = %+v, want %+v", want.ID, got, want)
			}
		}
		if got, err := tx.Key("nope"); got != nil || err != nil {
			t.Errorf("Key(missing) = %v, %v", got, err)
		}
		var ids []string
		err := tx.ForEachKey(func(k *Key) error { ids = append(ids, k.ID); return nil })
		if err != nil || !slices.Equal(ids, []string{"key-1", "key-2"}) {
			t.Errorf("ForEachKey ids %v, %v", ids, err)
		}
		errStop := errors.New("stop")
		if err := tx.ForEachKey(func(*Key) error { return errStop }); !errors.Is(err, errStop) {
			t.Errorf("ForEachKey did not pass fn's error on: %v", err)
		}
		return nil
	})
}

func TestFobIndex(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	put := func(k Key) {
		t.Helper()
		update(t, db, func(tx *Tx) error { return tx.PutKey(&k) })
	}
	del := func(id string) {
		t.Helper()
		update(t, db, func(tx *Tx) error { return tx.DeleteKey(id) })
	}
	// check asserts who owns each fob and how many keys there are.
	check := func(step string, owners map[string]string, count int) {
		t.Helper()
		view(t, db, func(tx *Tx) error {
			for fob, want := range owners {
				if got := tx.KeyByFob(fob); got != want {
					t.Errorf("%s: KeyByFob(%s) = %q, want %q", step, fob, got, want)
				}
			}
			if got := tx.KeyCount(); got != count {
				t.Errorf("%s: KeyCount = %d, want %d", step, got, count)
			}
			return nil
		})
		if n := countRecords(t, db, bucketKeys); n != count {
			t.Errorf("%s: %d key records, want %d", step, n, count)
		}
	}

	put(Key{ID: "a", Name: "A", Fob: "AAAA01"})
	check("put a", map[string]string{"AAAA01": "a"}, 1)

	put(Key{ID: "a", Name: "A renamed", Fob: "AAAA01"})
	check("rename a", map[string]string{"AAAA01": "a"}, 1)

	put(Key{ID: "a", Name: "A", Fob: "AAAA02"})
	check("change a's fob", map[string]string{"AAAA01": "", "AAAA02": "a"}, 1)

	put(Key{ID: "a", Name: "A"})
	check("clear a's fob", map[string]string{"AAAA01": "", "AAAA02": ""}, 1)

	put(Key{ID: "a", Name: "A", Fob: "AAAA01"})
	put(Key{ID: "b", Name: "B", Fob: "BBBB01"})
	check("put b", map[string]string{"AAAA01": "a", "BBBB01": "b"}, 2)

	del("b")
	check("delete b", map[string]string{"AAAA01": "a", "BBBB01": ""}, 1)

	del("b")
	del("never")
	check("delete missing", map[string]string{"AAAA01": "a"}, 1)

	// The index entry of a fob that has since gone to another key is that
	// key's: a change or delete of the former owner leaves it alone.
	put(Key{ID: "c", Name: "C", Fob: "AAAA01"})
	put(Key{ID: "a", Name: "A", Fob: "AAAA03"})
	check("a moves off a fob c holds", map[string]string{"AAAA01": "c", "AAAA03": "a"}, 2)
	put(Key{ID: "d", Name: "D", Fob: "AAAA03"})
	del("a")
	check("delete a whose fob d holds", map[string]string{"AAAA03": "d", "AAAA01": "c"}, 2)

	if n := countRecords(t, db, bucketFobs); n != 2 {
		t.Errorf("fob index holds %d entries, want 2", n)
	}
}

func TestKeyCodeIndex(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	h1, h2 := db.CodeHash("1357"), db.CodeHash("2468")
	owned := func(step string, hash []byte, want CodeOwner, wantOK bool) {
		t.Helper()
		view(t, db, func(tx *Tx) error {
			got, ok := tx.CodeOwner(hash)
			if ok != wantOK || got != want {
				t.Errorf("%s: CodeOwner = %+v, %v; want %+v, %v", step, got, ok, want, wantOK)
			}
			return nil
		})
	}

	update(t, db, func(tx *Tx) error { return tx.PutKey(&Key{ID: "v", Virtual: true, CodeHash: h1}) })
	owned("put", h1, CodeOwner{Kind: OwnerKey, ID: "v"}, true)

	update(t, db, func(tx *Tx) error { return tx.PutKey(&Key{ID: "v", Virtual: true, CodeHash: h2}) })
	owned("change code: old", h1, CodeOwner{}, false)
	owned("change code: new", h2, CodeOwner{Kind: OwnerKey, ID: "v"}, true)

	update(t, db, func(tx *Tx) error { return tx.DeleteKey("v") })
	owned("delete", h2, CodeOwner{}, false)
	if n := countRecords(t, db, bucketCodeIndex); n != 0 {
		t.Errorf("code index holds %d entries after delete", n)
	}
}

// timeBound makes a time-bound access code.
func timeBound(db *DB, id, code, status string, starts, ends time.Time) *AccessCode {
	return &AccessCode{ID: id, CodeHash: db.CodeHash(code), Name: id, Type: contract.TypeTimeBound,
		Status: status, StartsAt: &starts, EndsAt: &ends, CreatedAt: t0, Action: contract.ActionPickup, KeyID: "k"}
}

func due(t testing.TB, db *DB, now time.Time, max int) ([]ScheduleEntry, time.Time) {
	t.Helper()
	var entries []ScheduleEntry
	var next time.Time
	view(t, db, func(tx *Tx) error {
		entries, next = tx.Due(now, max)
		return nil
	})
	return entries, next
}

func TestAccessCodeIndexAndSchedule(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	starts, ends := t0.Add(time.Hour), t0.Add(48*time.Hour)
	put := func(a *AccessCode) {
		t.Helper()
		update(t, db, func(tx *Tx) error { return tx.PutAccessCode(a) })
	}
	owner := func(code string) (CodeOwner, bool) {
		var o CodeOwner
		var ok bool
		view(t, db, func(tx *Tx) error { o, ok = tx.CodeOwner(db.CodeHash(code)); return nil })
		return o, ok
	}
	// checkSchedule asserts the schedule holds exactly want, for code "ac".
	checkSchedule := func(step string, want ...time.Time) {
		t.Helper()
		entries, next := due(t, db, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 100)
		var got []time.Time
		for _, e := range entries {
			if e.ID != "ac" {
				t.Errorf("%s: schedule entry for %q", step, e.ID)
			}
			got = append(got, e.At)
		}
		if !slices.EqualFunc(got, want, time.Time.Equal) || !next.IsZero() {
			t.Errorf("%s: schedule %v (next %v), want %v", step, got, next, want)
		}
	}

	a := timeBound(db, "ac", "11223344", contract.StatusUnset, starts, ends)
	put(a)
	if o, ok := owner("11223344"); !ok || o != (CodeOwner{Kind: OwnerAccessCode, ID: "ac"}) {
		t.Errorf("CodeOwner = %+v, %v", o, ok)
	}
	checkSchedule("unset", starts)
	if entries, next := due(t, db, starts.Add(-time.Nanosecond), 10); len(entries) != 0 || !next.Equal(starts) {
		t.Errorf("just before starts_at: due %v, next %v", entries, next)
	}
	if entries, next := due(t, db, starts, 10); len(entries) != 1 || !entries[0].At.Equal(starts) || !next.IsZero() {
		t.Errorf("at starts_at: due %v, next %v", entries, next)
	}

	// unset -> set: the schedule moves from starts_at to ends_at.
	a.Status = contract.StatusSet
	put(a)
	checkSchedule("set", ends)
	if entries, next := due(t, db, ends.Add(-time.Nanosecond), 10); len(entries) != 0 || !next.Equal(ends) {
		t.Errorf("set, before ends_at: due %v, next %v", entries, next)
	}

	// A new code replaces the old one in the index.
	a.CodeHash = db.CodeHash("55667788")
	put(a)
	if _, ok := owner("11223344"); ok {
		t.Error("old code still indexed after the code changed")
	}
	if o, ok := owner("55667788"); !ok || o.ID != "ac" {
		t.Errorf("new code: CodeOwner = %+v, %v", o, ok)
	}
	checkSchedule("code changed", ends)

	// An ongoing code has no transitions.
	a.Type = contract.TypeOngoing
	put(a)
	checkSchedule("ongoing")

	a.Type, a.Status = contract.TypeTimeBound, contract.StatusUnset
	put(a)
	checkSchedule("time-bound again", starts)

	update(t, db, func(tx *Tx) error { return tx.DeleteAccessCode("ac") })
	if _, ok := owner("55667788"); ok {
		t.Error("code still indexed after delete")
	}
	checkSchedule("deleted")
	view(t, db, func(tx *Tx) error {
		if got, err := tx.AccessCode("ac"); got != nil || err != nil {
			t.Errorf("AccessCode after delete = %+v, %v", got, err)
		}
		return nil
	})
	for _, b := range [][]byte{bucketCodes, bucketCodeIndex, bucketSchedule} {
		if n := countRecords(t, db, b); n != 0 {
			t.Errorf("%s holds %d records after delete", b, n)
		}
	}
}

func TestAccessCodeRoundTrip(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	a := timeBound(db, "ac-1", "9081726354", contract.StatusSet, t0, t0.Add(time.Hour))
	a.Errors = []Notice{{Code: "e", Message: "m", CreatedAt: t0}}
	a.Warnings = []Notice{{Code: "w", Message: "m2", CreatedAt: t0}}
	update(t, db, func(tx *Tx) error { return tx.PutAccessCode(a) })
	view(t, db, func(tx *Tx) error {
		got, err := tx.AccessCode("ac-1")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("AccessCode = %+v, want %+v", got, a)
		}
		var n int
		if err := tx.ForEachAccessCode(func(*AccessCode) error { n++; return nil }); err != nil || n != 1 {
			t.Errorf("ForEachAccessCode visited %d, %v", n, err)
		}
		return nil
	})
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ops       func(tx *Tx, db *DB) error
		keys, acs int
	}{
		{"empty", func(*Tx, *DB) error { return nil }, 0, 0},
		{"put", func(tx *Tx, db *DB) error {
			return errors.Join(
				tx.PutKey(&Key{ID: "k1"}), tx.PutKey(&Key{ID: "k2"}),
				tx.PutAccessCode(timeBound(db, "a1", "1111", contract.StatusUnset, t0, t0)))
		}, 2, 1},
		{"update does not count twice", func(tx *Tx, db *DB) error {
			return errors.Join(
				tx.PutKey(&Key{ID: "k1"}), tx.PutKey(&Key{ID: "k1", Name: "again"}),
				tx.PutAccessCode(timeBound(db, "a1", "1111", contract.StatusUnset, t0, t0)),
				tx.PutAccessCode(timeBound(db, "a1", "2222", contract.StatusSet, t0, t0)))
		}, 1, 1},
		{"delete", func(tx *Tx, db *DB) error {
			return errors.Join(
				tx.PutKey(&Key{ID: "k1"}), tx.PutKey(&Key{ID: "k2"}), tx.DeleteKey("k1"),
				tx.PutAccessCode(timeBound(db, "a1", "1111", contract.StatusUnset, t0, t0)),
				tx.PutAccessCode(timeBound(db, "a2", "2222", contract.StatusUnset, t0, t0)),
				tx.DeleteAccessCode("a2"))
		}, 1, 1},
		{"delete missing does not go below zero", func(tx *Tx, db *DB) error {
			return errors.Join(tx.DeleteKey("k1"), tx.DeleteAccessCode("a1"))
		}, 0, 0},
		{"delete all", func(tx *Tx, db *DB) error {
			return errors.Join(
				tx.PutKey(&Key{ID: "k1"}), tx.DeleteKey("k1"), tx.DeleteKey("k1"),
				tx.PutAccessCode(timeBound(db, "a1", "1111", contract.StatusUnset, t0, t0)),
				tx.DeleteAccessCode("a1"), tx.DeleteAccessCode("a1"))
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t, Options{NoSync: true})
			update(t, db, func(tx *Tx) error { return tc.ops(tx, db) })
			view(t, db, func(tx *Tx) error {
				if tx.KeyCount() != tc.keys || tx.AccessCodeCount() != tc.acs {
					t.Errorf("counts %d keys, %d codes; want %d, %d", tx.KeyCount(), tx.AccessCodeCount(), tc.keys, tc.acs)
				}
				return nil
			})
			if n := countRecords(t, db, bucketKeys); n != tc.keys {
				t.Errorf("%d key records, want %d", n, tc.keys)
			}
			if n := countRecords(t, db, bucketCodes); n != tc.acs {
				t.Errorf("%d access code records, want %d", n, tc.acs)
			}
		})
	}
}

func TestDueOrdering(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	// Transition times across the epoch and far ahead, inserted shuffled.
	times := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1).UTC(),
		time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2150, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var want []ScheduleEntry
	for i, at := range times {
		want = append(want, ScheduleEntry{At: at, ID: fmt.Sprintf("ac-%02d", i)})
	}
	// Two codes due at the same moment come in id order.
	want = slices.Insert(want, 6, ScheduleEntry{At: times[5], ID: "ac-05b"})

	shuffled := slices.Clone(want)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	update(t, db, func(tx *Tx) error {
		for i, e := range shuffled {
			if err := tx.PutAccessCode(timeBound(db, e.ID, fmt.Sprint(1000+i), contract.StatusUnset, e.At, e.At.Add(time.Hour))); err != nil {
				return err
			}
		}
		return nil
	})

	eq := func(a, b ScheduleEntry) bool { return a.ID == b.ID && a.At.Equal(b.At) }
	for _, tc := range []struct {
		name     string
		now      time.Time
		max      int
		wantN    int       // how many of want are due
		wantNext time.Time // zero: none after them
	}{
		{"all", time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), 100, len(want), time.Time{}},
		{"before the first", times[0].Add(-time.Nanosecond), 100, 0, times[0]},
		{"at the first", times[0], 100, 1, times[1]},
		{"just before the epoch", times[2], 100, 3, times[3]},
		{"at the epoch", times[3], 100, 4, times[4]},
		{"now, ties included", times[5], 100, 7, times[6]},
		{"max caps", times[8], 2, 2, times[2]},
		{"before 2100", times[7].Add(-time.Nanosecond), 100, 8, times[7]},
		{"after 2100", times[8], 100, 10, times[9]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next := due(t, db, tc.now, tc.max)
			if !slices.EqualFunc(got, want[:tc.wantN], eq) {
				t.Errorf("Due = %v\nwant %v", got, want[:tc.wantN])
			}
			if !next.Equal(tc.wantNext) {
				t.Errorf("next = %v, want %v", next, tc.wantNext)
			}
		})
	}

	// Unschedule drops one entry and no other.
	update(t, db, func(tx *Tx) error { return tx.Unschedule(want[3]) })
	got, _ := due(t, db, times[5], 100)
	if wantLeft := slices.Delete(slices.Clone(want[:7]), 3, 4); !slices.EqualFunc(got, wantLeft, eq) {
		t.Errorf("after Unschedule: %v, want %v", got, wantLeft)
	}
}

func TestReplaceAll(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	starts, ends := t0.Add(time.Hour), t0.Add(2*time.Hour)
	update(t, db, func(tx *Tx) error {
		return errors.Join(
			tx.PutKey(&Key{ID: "old-1", Fob: "0101"}),
			tx.PutKey(&Key{ID: "shared", Fob: "0202"}),
			tx.PutKey(&Key{ID: "old-v", Virtual: true, CodeHash: db.CodeHash("7777")}),
			tx.PutAccessCode(timeBound(db, "old-ac", "1111", contract.StatusUnset, starts, ends)),
			tx.PutAccessCode(timeBound(db, "shared-ac", "2222", contract.StatusUnset, starts, ends)),
		)
	})

	newKeys := []*Key{
		{ID: "shared", Name: "kept, new fob", Fob: "0303"},
		{ID: "new-v", Virtual: true, CodeHash: db.CodeHash("8888")},
		{ID: "new-2", Fob: "0404"},
	}
	newCodes := []*AccessCode{
		timeBound(db, "shared-ac", "3333", contract.StatusSet, starts, ends),
		{ID: "new-ac", CodeHash: db.CodeHash("4444"), Type: contract.TypeOngoing, Status: contract.StatusSet, Action: contract.ActionDropoff},
	}

	// A snapshot whose transaction fails changes nothing.
	errLater := errors.New("later step failed")
	err := db.Update(func(tx *Tx) error {
		if err := tx.ReplaceAll("v-bad", newKeys, newCodes); err != nil {
			return err
		}
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatalf("Update = %v", err)
	}
	view(t, db, func(tx *Tx) error {
		if tx.KeyByFob("0101") != "old-1" || tx.KeyCount() != 3 || tx.AccessCodeCount() != 2 || tx.SnapshotVersion() != "" {
			t.Errorf("rolled-back snapshot left traces: fob 0101 -> %q, %d keys, %d codes, version %q",
				tx.KeyByFob("0101"), tx.KeyCount(), tx.AccessCodeCount(), tx.SnapshotVersion())
		}
		return nil
	})

	update(t, db, func(tx *Tx) error { return tx.ReplaceAll("v-7", newKeys, newCodes) })
	view(t, db, func(tx *Tx) error {
		if v := tx.SnapshotVersion(); v != "v-7" {
			t.Errorf("SnapshotVersion = %q", v)
		}
		if tx.KeyCount() != 3 || tx.AccessCodeCount() != 2 {
			t.Errorf("counts %d keys, %d codes; want 3, 2", tx.KeyCount(), tx.AccessCodeCount())
		}
		for _, id := range []string{"old-1", "old-v"} {
			if k, _ := tx.Key(id); k != nil {
				t.Errorf("old key %q survived", id)
			}
		}
		if k, _ := tx.Key("shared"); k == nil || k.Name != "kept, new fob" {
			t.Errorf("Key(shared) = %+v", k)
		}
		if a, _ := tx.AccessCode("old-ac"); a != nil {
			t.Error("old access code survived")
		}
		for fob, want := range map[string]string{"0101": "", "0202": "", "0303": "shared", "0404": "new-2"} {
			if got := tx.KeyByFob(fob); got != want {
				t.Errorf("KeyByFob(%s) = %q, want %q", fob, got, want)
			}
		}
		for code, want := range map[string]CodeOwner{
			"1111": {}, "2222": {}, "7777": {},
			"3333": {Kind: OwnerAccessCode, ID: "shared-ac"},
			"4444": {Kind: OwnerAccessCode, ID: "new-ac"},
			"8888": {Kind: OwnerKey, ID: "new-v"},
		} {
			if got, _ := tx.CodeOwner(db.CodeHash(code)); got != want {
				t.Errorf("CodeOwner(%s) = %+v, want %+v", code, got, want)
			}
		}
		// shared-ac is now set: only its end is scheduled.
		entries, next := tx.Due(ends, 10)
		if len(entries) != 1 || entries[0].ID != "shared-ac" || !entries[0].At.Equal(ends) || !next.IsZero() {
			t.Errorf("schedule after snapshot: %v, next %v", entries, next)
		}
		return nil
	})

	// Writes after a snapshot keep the indexes (the Tx's buckets were swapped).
	update(t, db, func(tx *Tx) error {
		if err := tx.ReplaceAll("v-8", newKeys, newCodes); err != nil {
			return err
		}
		return tx.PutKey(&Key{ID: "new-2", Fob: "0505"})
	})
	view(t, db, func(tx *Tx) error {
		if tx.KeyByFob("0404") != "" || tx.KeyByFob("0505") != "new-2" || tx.KeyCount() != 3 {
			t.Errorf("put after ReplaceAll in the same transaction: 0404 -> %q, 0505 -> %q, %d keys",
				tx.KeyByFob("0404"), tx.KeyByFob("0505"), tx.KeyCount())
		}
		return nil
	})

	// An empty snapshot clears everything.
	update(t, db, func(tx *Tx) error { return tx.ReplaceAll("v-9", nil, nil) })
	view(t, db, func(tx *Tx) error {
		if tx.KeyCount() != 0 || tx.AccessCodeCount() != 0 || tx.SnapshotVersion() != "v-9" {
			t.Errorf("after empty snapshot: %d keys, %d codes, version %q", tx.KeyCount(), tx.AccessCodeCount(), tx.SnapshotVersion())
		}
		return nil
	})
	for _, b := range [][]byte{bucketKeys, bucketFobs, bucketCodes, bucketCodeIndex, bucketSchedule} {
		if n := countRecords(t, db, b); n != 0 {
			t.Errorf("%s holds %d records after an empty snapshot", b, n)
		}
	}
}

// randomCodes makes n access codes with random 32-byte hashes, one in
// three time-bound.
func randomCodes(n int, seed uint64) []*AccessCode {
	r := rand.New(rand.NewPCG(seed, seed))
	codes := make([]*AccessCode, n)
	for i := range codes {
		h := make([]byte, 0, 32)
		for range 4 {
			h = binary.LittleEndian.AppendUint64(h, r.Uint64())
		}
		a := &AccessCode{ID: fmt.Sprintf("ac-%08d", i), CodeHash: h, Name: "guest",
			Type: contract.TypeOngoing, Status: contract.StatusSet, CreatedAt: t0, KeyID: "key-1", Action: contract.ActionPickup}
		if i%3 == 0 {
			starts := t0.Add(time.Duration(r.IntN(1e6)) * time.Second)
			ends := starts.Add(time.Hour)
			a.Type, a.Status, a.StartsAt, a.EndsAt = contract.TypeTimeBound, contract.StatusUnset, &starts, &ends
		}
		codes[i] = a
	}
	// Hand them over in random order, as a cloud might.
	r.Shuffle(n, func(i, j int) { codes[i], codes[j] = codes[j], codes[i] })
	return codes
}

func TestReplaceAllLarge(t *testing.T) {
	const n = 50_000
	db, _ := openTest(t, Options{NoSync: true})
	codes := randomCodes(n, 42)
	update(t, db, func(tx *Tx) error {
		return tx.ReplaceAll("big", []*Key{{ID: "key-1", Fob: "ABCD01"}}, codes)
	})

	view(t, db, func(tx *Tx) error {
		if tx.AccessCodeCount() != n || tx.KeyCount() != 1 {
			t.Errorf("counts %d codes, %d keys", tx.AccessCodeCount(), tx.KeyCount())
		}
		for i := 0; i < n; i += 997 {
			a := codes[i]
			if o, ok := tx.CodeOwner(a.CodeHash); !ok || o != (CodeOwner{Kind: OwnerAccessCode, ID: a.ID}) {
				t.Errorf("CodeOwner(%x) = %+v, %v; want %s", a.CodeHash, o, ok, a.ID)
			}
			got, err := tx.AccessCode(a.ID)
			if err != nil || got == nil || !bytes.Equal(got.CodeHash, a.CodeHash) {
				t.Errorf("AccessCode(%s) = %+v, %v", a.ID, got, err)
			}
		}
		entries, _ := tx.Due(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), n)
		if want := (n + 2) / 3; len(entries) != want {
			t.Errorf("%d schedule entries, want %d", len(entries), want)
		}
		if !slices.IsSortedFunc(entries, func(a, b ScheduleEntry) int { return a.At.Compare(b.At) }) {
			t.Error("schedule out of order")
		}
		return nil
	})
	if got := countRecords(t, db, bucketCodeIndex); got != n {
		t.Errorf("code index holds %d entries, want %d", got, n)
	}
}

func TestDueOutOfRange(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	date := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	set := timeBound(db, "forever", "1111", contract.StatusSet, date(2020), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	far := timeBound(db, "far", "2222", contract.StatusUnset, date(3000), date(3001))
	ancient := timeBound(db, "ancient", "3333", contract.StatusUnset, date(1600), date(1601))
	near := timeBound(db, "near", "4444", contract.StatusUnset, date(1900), date(1901))
	late := timeBound(db, "late", "5555", contract.StatusUnset, date(2262), date(2263))
	update(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutAccessCode(set), tx.PutAccessCode(far), tx.PutAccessCode(ancient),
			tx.PutAccessCode(near), tx.PutAccessCode(late))
	})

	// Nothing past 2262 comes due now, however far past it is.
	if entries, next := due(t, db, t0, 10); len(entries) != 2 || entries[0].ID != "ancient" || entries[1].ID != "near" || !next.Equal(date(2262)) {
		t.Errorf("Due(now) = %v, next %v; want ancient, near, next 2262", entries, next)
	}
	// Order is kept across the ends of the span.
	entries, next := due(t, db, date(10000), 10)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	if want := []string{"ancient", "near", "late", "far", "forever"}; !slices.Equal(ids, want) || !next.IsZero() {
		t.Errorf("Due(10000) = %v, next %v; want %v", ids, next, want)
	}

	// The entries Due reports can be unscheduled, and updates and deletes
	// find the entries of out-of-span times.
	update(t, db, func(tx *Tx) error {
		set.EndsAt = ptr(date(2030))
		return errors.Join(tx.Unschedule(entries[0]), tx.DeleteAccessCode("far"), tx.PutAccessCode(set))
	})
	entries, _ = due(t, db, date(10000), 10)
	ids = ids[:0]
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	if want := []string{"near", "forever", "late"}; !slices.Equal(ids, want) {
		t.Errorf("after unschedule, delete, update: %v, want %v", ids, want)
	}
}

func ptr[T any](v T) *T { return &v }
