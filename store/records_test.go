package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"smartboxd/contract"
)

func TestReplies(t *testing.T) {
	db, _ := openTest(t, Options{Replies: 3, NoSync: true})
	reply := func(id string) []byte { return []byte(`{"id":"` + id + `","ok":true}`) }
	put := func(id string, body []byte) {
		t.Helper()
		update(t, db, func(tx *Tx) error { return tx.PutReply(id, body) })
	}
	// check asserts which replies are kept and what they hold.
	check := func(step string, want map[string][]byte) {
		t.Helper()
		view(t, db, func(tx *Tx) error {
			for id, body := range want {
				got, ok := tx.Reply(id)
				if body == nil && ok {
					t.Errorf("%s: reply %s kept, want it trimmed", step, id)
				}
				if body != nil && (!ok || !bytes.Equal(got, body)) {
					t.Errorf("%s: Reply(%s) = %q, %v; want %q", step, id, got, ok, body)
				}
			}
			return nil
		})
		if n := countRecords(t, db, bucketReplies); n > 3 {
			t.Errorf("%s: %d replies stored, bound 3", step, n)
		}
		if n, m := countRecords(t, db, bucketReplies), countRecords(t, db, bucketReplyLog); n != m {
			t.Errorf("%s: %d replies, %d reply log entries", step, n, m)
		}
	}

	view(t, db, func(tx *Tx) error {
		if got, ok := tx.Reply("never"); ok || got != nil {
			t.Errorf("Reply(never) = %q, %v", got, ok)
		}
		return nil
	})

	for i := 1; i <= 5; i++ {
		put(fmt.Sprintf("r%d", i), reply(fmt.Sprintf("r%d", i)))
	}
	check("five into three", map[string][]byte{"r1": nil, "r2": nil, "r3": reply("r3"), "r4": reply("r4"), "r5": reply("r5")})

	// Overwriting a kept reply does not count as a new one: nothing is trimmed.
	put("r5", []byte(`{"id":"r5","ok":false}`))
	put("r3", []byte(`{"id":"r3","ok":false}`))
	check("overwrite", map[string][]byte{"r3": []byte(`{"id":"r3","ok":false}`), "r4": reply("r4"), "r5": []byte(`{"id":"r5","ok":false}`)})

	// A new reply pushes out the oldest written, overwritten or not.
	put("r6", reply("r6"))
	check("one more", map[string][]byte{"r3": nil, "r4": reply("r4"), "r5": []byte(`{"id":"r5","ok":false}`), "r6": reply("r6")})

	// A trimmed id stored again is new again.
	put("r1", reply("r1 again"))
	check("trimmed id again", map[string][]byte{"r1": reply("r1 again"), "r4": nil, "r5": []byte(`{"id":"r5","ok":false}`), "r6": reply("r6")})
}

func TestRepliesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{Replies: 2})
	update(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutReply("a", []byte("A")), tx.PutReply("b", []byte("B")))
	})
	db.Close()
	db = openAt(t, dir, Options{Replies: 2})
	update(t, db, func(tx *Tx) error { return tx.PutReply("c", []byte("C")) })
	view(t, db, func(tx *Tx) error {
		if _, ok := tx.Reply("a"); ok {
			t.Error("oldest reply kept past the bound after a reopen")
		}
		for _, id := range []string{"b", "c"} {
			if _, ok := tx.Reply(id); !ok {
				t.Errorf("reply %s lost", id)
			}
		}
		return nil
	})
}

func TestLockoutRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{})
	view(t, db, func(tx *Tx) error {
		for _, console := range []bool{false, true} {
			if l, err := tx.Lockout(console); err != nil || !reflect.DeepEqual(l, Lockout{}) {
				t.Errorf("Lockout(%v) before any write = %+v, %v", console, l, err)
			}
		}
		return nil
	})

	keypad := Lockout{Failures: 2, Level: 3, Until: t0.Add(90 * time.Second), Remaining: 90 * time.Second,
		Fails: []time.Time{t0.Add(-time.Minute), t0}, Since: t0}
	console := Lockout{Failures: 4}
	update(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutLockout(false, keypad), tx.PutLockout(true, console))
	})
	db.Close()

	db = openAt(t, dir, Options{})
	view(t, db, func(tx *Tx) error {
		for _, tc := range []struct {
			console bool
			want    Lockout
		}{{false, keypad}, {true, console}} {
			got, err := tx.Lockout(tc.console)
			if err != nil {
				return err
			}
			if got.Failures != tc.want.Failures || got.Level != tc.want.Level ||
				!got.Until.Equal(tc.want.Until) || got.Remaining != tc.want.Remaining ||
				!got.Since.Equal(tc.want.Since) || len(got.Fails) != len(tc.want.Fails) {
				t.Errorf("Lockout(%v) = %+v, want %+v", tc.console, got, tc.want)
			}
		}
		return nil
	})
}

func TestSettingsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{})
	view(t, db, func(tx *Tx) error {
		if s, err := tx.Settings(); err != nil || s.KeyCodesEnabled {
			t.Errorf("default settings = %+v, %v", s, err)
		}
		return nil
	})
	for _, want := range []bool{true, false, true} {
		update(t, db, func(tx *Tx) error { return tx.PutSettings(contract.Settings{KeyCodesEnabled: want}) })
		db.Close()
		db = openAt(t, dir, Options{})
		view(t, db, func(tx *Tx) error {
			if s, err := tx.Settings(); err != nil || s.KeyCodesEnabled != want {
				t.Errorf("settings after reopen = %+v, %v; want key codes %v", s, err, want)
			}
			return nil
		})
	}
}

func TestBinRoundTrip(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	view(t, db, func(tx *Tx) error {
		b, err := tx.Bin(4)
		if err != nil || b != (Bin{ID: 4}) || !b.Empty() {
			t.Errorf("unwritten Bin(4) = %+v, %v", b, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutBin(Bin{ID: 4, KeyID: "k", Fob: "0A1B2C3D4E"}), tx.PutBin(Bin{ID: 5, Fob: "FFFF"}))
	})
	view(t, db, func(tx *Tx) error {
		for _, want := range []Bin{{ID: 4, KeyID: "k", Fob: "0A1B2C3D4E"}, {ID: 5, Fob: "FFFF"}, {ID: 6}} {
			got, err := tx.Bin(want.ID)
			if err != nil || got != want {
				t.Errorf("Bin(%d) = %+v, %v; want %+v", want.ID, got, err, want)
			}
			if got.Empty() != (want.KeyID == "" && want.Fob == "") {
				t.Errorf("Bin(%d).Empty() = %v", want.ID, got.Empty())
			}
		}
		return nil
	})
}

// TestBytesAreCopies holds on to slices returned by the store while later
// transactions rewrite the records they came from and grow the file, then
// closes the database, which unmaps the file: a slice pointing into the map
// would change or fault when read.
func TestBytesAreCopies(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true, History: 10})
	// Enough bytes that neither bucket is stored inline in its parent (bbolt
	// copies an unaligned inline bucket to the heap, which would hide a
	// missing copy here).
	want := []byte(`{"id":"cmd-1","ok":true,"result":{"s":"` + strings.Repeat("r", 2000) + `"}}`)
	evs := appendN(t, db, "e", 40)
	update(t, db, func(tx *Tx) error { return tx.PutReply("cmd-1", want) })

	var reply []byte
	view(t, db, func(tx *Tx) error {
		var ok bool
		if reply, ok = tx.Reply("cmd-1"); !ok {
			t.Fatal("reply not found")
		}
		return nil
	})
	recs := pending(t, db, 0, 100)
	if len(recs) != len(evs) {
		t.Fatalf("%d pending, want %d", len(recs), len(evs))
	}
	snapshot := make([][]byte, len(recs))
	for i, r := range recs {
		snapshot[i] = bytes.Clone(r.Payload)
	}

	// Rewrite the records those slices came from, and write some megabytes.
	update(t, db, func(tx *Tx) error { return tx.PutReply("cmd-1", bytes.Repeat([]byte("x"), len(want))) })
	if _, err := db.Ack(uint64(len(evs))); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("y"), 64<<10)
	for i := range 64 {
		update(t, db, func(tx *Tx) error {
			if err := tx.PutReply(fmt.Sprintf("big-%d", i), big); err != nil {
				return err
			}
			_, err := tx.Append("filler", t0, map[string]int{"i": i})
			return err
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reading unmapped memory faults; make that a panic this test reports.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	read := func(what string, got, want []byte) {
		t.Helper()
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s points into the closed file: %v", what, r)
			}
		}()
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed after its transaction: now %.40q", what, got)
		}
	}
	read("reply", reply, want)
	for i, r := range recs {
		read(fmt.Sprintf("pending payload %d", r.Seq), r.Payload, snapshot[i])
		if !bytes.Contains(snapshot[i], []byte(evs[i].ID)) {
			t.Errorf("pending payload %d does not hold event %s", r.Seq, evs[i].ID)
		}
	}
}
