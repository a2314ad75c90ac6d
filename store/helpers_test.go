package store

import (
	"encoding/json"
	"fmt"
	"smartboxd/contract"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// t0 is the fixed wall time the tests stamp events with.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openTest opens a store in a fresh directory. The store is checked for
// consistency and closed when the test ends.
func openTest(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, dir, opts), dir
}

// openAt opens the store in dir; the caller may close it early (a second
// Close is harmless), otherwise it is checked and closed at cleanup.
func openAt(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	if opts.BoxID == "" {
		opts.BoxID = "box-test"
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if db.Bolt().Path() != "" { // bbolt clears the path on Close
			checkConsistent(t, db)
		}
		db.Close()
	})
	return db
}

// checkConsistent runs bbolt's consistency check over the whole file.
func checkConsistent(t testing.TB, db *DB) {
	t.Helper()
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("%d consistency errors, first: %w", len(errs), errs[0])
		}
		return nil
	})
	if err != nil {
		t.Errorf("bbolt check: %v", err)
	}
}

func update(t testing.TB, db *DB, fn func(tx *Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t testing.TB, db *DB, fn func(tx *Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// appendN appends n events of type typ, one transaction each, and returns
// them as Append returned them.
func appendN(t testing.TB, db *DB, typ string, n int) []contract.Event {
	t.Helper()
	out := make([]contract.Event, 0, n)
	for i := range n {
		update(t, db, func(tx *Tx) error {
			ev, err := tx.Append(typ, t0.Add(time.Duration(i)*time.Second), map[string]int{"i": i})
			out = append(out, ev)
			return err
		})
	}
	return out
}

func stats(t testing.TB, db *DB) OutboxStats {
	t.Helper()
	s, err := db.OutboxStats()
	if err != nil {
		t.Fatalf("outbox stats: %v", err)
	}
	return s
}

func pending(t testing.TB, db *DB, after uint64, max int) []Record {
	t.Helper()
	recs, err := db.Pending(after, max)
	if err != nil {
		t.Fatalf("pending(%d, %d): %v", after, max, err)
	}
	return recs
}

// seqs lists the records' seqs.
func seqs(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// seqRange is lo, lo+1, ..., hi (nil when hi < lo).
func seqRange(lo, hi uint64) []uint64 {
	var out []uint64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

func decodeEvent(t testing.TB, payload []byte) contract.Event {
	t.Helper()
	var ev contract.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("decode event %q: %v", payload, err)
	}
	return ev
}

// countRecords counts the keys of bucket name, read directly.
func countRecords(t testing.TB, db *DB, name []byte) int {
	t.Helper()
	n := 0
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		n = tx.Bucket(name).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatalf("count %s: %v", name, err)
	}
	return n
}
