package store

import (
	"bytes"
	"testing"
	"time"
)

func TestOfflineKeySurvivesReopen(t *testing.T) {
	db, dir := openTest(t, Options{})
	key := bytes.Repeat([]byte{7}, 32)
	if err := db.View(func(tx *Tx) error {
		if k := tx.OfflineKey(); k != nil {
			t.Errorf("a new box has an offline key: %x", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutOfflineKey(key) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, dir, Options{})
	var got []byte
	db.View(func(tx *Tx) error { got = tx.OfflineKey(); return nil })
	if !bytes.Equal(got, key) {
		t.Fatalf("offline key after reopen %x, want %x", got, key)
	}
}

func TestOfflineMarks(t *testing.T) {
	db, _ := openTest(t, Options{})
	used, revoked, other := db.CodeHash("31000012345678"), db.CodeHash("11000087654321"), db.CodeHash("21000000000000")
	end := t0.Add(2 * time.Hour)
	if err := db.Update(func(tx *Tx) error {
		if err := tx.PutOfflineMark(used, OfflineMark{Kind: MarkUsed, Until: end}); err != nil {
			return err
		}
		if err := tx.PutOfflineMark(revoked, OfflineMark{Kind: MarkRevoked, Until: end.Add(time.Hour)}); err != nil {
			return err
		}
		// A use after a revocation leaves the revocation.
		return tx.PutOfflineMark(revoked, OfflineMark{Kind: MarkUsed, Until: end})
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hash []byte
		at   time.Time
		kind string // "" for no mark
	}{
		{"used, in its window", used, t0, MarkUsed},
		{"used, its last second", used, end.Add(-time.Second), MarkUsed},
		{"used, window over", used, end, ""},
		{"revoked stays revoked", revoked, end, MarkRevoked},
		{"revoked, window over", revoked, end.Add(time.Hour), ""},
		{"never marked", other, t0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db.View(func(tx *Tx) error {
				m, ok, err := tx.OfflineMark(tc.hash, tc.at)
				if err != nil {
					t.Fatal(err)
				}
				if ok != (tc.kind != "") || m.Kind != tc.kind {
					t.Fatalf("mark %+v %v, want kind %q", m, ok, tc.kind)
				}
				return nil
			})
		})
	}
	prune := func(at time.Time) (n, left int) {
		t.Helper()
		if err := db.Update(func(tx *Tx) (err error) {
			n, err = tx.PruneOfflineMarks(at, 100)
			left = tx.OfflineMarks()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n, left
	}
	if n, left := prune(t0); n != 0 || left != 2 {
		t.Fatalf("prune before any window ended: %d pruned, %d left", n, left)
	}
	if n, left := prune(end); n != 1 || left != 1 {
		t.Fatalf("prune at the first end: %d pruned, %d left", n, left)
	}
	if n, left := prune(end.Add(time.Hour)); n != 1 || left != 0 {
		t.Fatalf("prune at the second end: %d pruned, %d left", n, left)
	}
}
