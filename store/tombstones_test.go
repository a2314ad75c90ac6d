package store

import (
	"fmt"
	"testing"
	"time"
)

func TestTombstones(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	tomb := func(id string, ends, removed time.Time) *Tombstone {
		s := ends.Add(-time.Hour)
		return &Tombstone{Code: AccessCode{ID: id, CodeHash: []byte("h-" + id), Type: "time_bound", Status: "set", StartsAt: &s, EndsAt: &ends}, RemovedAt: removed}
	}
	update(t, db, func(tx *Tx) error {
		for i := range 5 {
			ends := t0.Add(time.Duration(i) * time.Hour)
			if err := tx.PutTombstone(tomb(fmt.Sprintf("t%d", i), ends, ends.Add(time.Minute))); err != nil {
				return err
			}
		}
		// Put again: replaces, indexes follow.
		return tx.PutTombstone(tomb("t4", t0.Add(4*time.Hour), t0.Add(5*time.Hour)))
	})
	ids := func(ts []*Tombstone) string {
		s := ""
		for _, x := range ts {
			s += x.Code.ID + " "
		}
		return s
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{t0.Add(10 * time.Hour), ""},
		{t0.Add(4 * time.Hour), ""}, // ends_at is not after now
		{t0.Add(3*time.Hour + time.Second), "t4 "},
		{t0.Add(-time.Minute), "t0 t1 t2 t3 t4 "},
	} {
		t.Run(tc.now.Format(time.TimeOnly), func(t *testing.T) {
			view(t, db, func(tx *Tx) error {
				got, err := tx.Restorable(tc.now, 100)
				if err != nil || ids(got) != tc.want {
					t.Fatalf("Restorable(%v) = %q, %v; want %q", tc.now, ids(got), err, tc.want)
				}
				return nil
			})
		})
	}
	// Pruning goes by when the code was removed: t4 was removed last.
	update(t, db, func(tx *Tx) error {
		n, err := tx.PruneTombstones(t0.Add(4*time.Hour+2*time.Minute), 100)
		if err != nil || n != 4 {
			t.Fatalf("pruned %d, %v; want 4", n, err)
		}
		return nil
	})
	// Writing a live code of the same id drops its tombstone.
	update(t, db, func(tx *Tx) error {
		return tx.PutAccessCode(&AccessCode{ID: "t4", CodeHash: []byte("new"), Type: "ongoing"})
	})
	for _, b := range [][]byte{bucketTombs, bucketTombEnds, bucketTombGone} {
		if n := countRecords(t, db, b); n != 0 {
			t.Errorf("%s holds %d records", b, n)
		}
	}
}
