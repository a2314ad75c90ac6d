package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"

	"smartboxd/contract"
	"smartboxd/store"
)

// The keypad paths. An entry is timed from Box.KeypadEntry to two points:
// the decision taken (the box's write transaction begins: the code was
// looked up and the rules applied on a read transaction before it), and the
// decision committed (the box's Feedback call, which the loop makes
// after the transaction commits and, for a right code, after the lock pulse
// was started). Each cycle enters a wrong code, the cycle key's drop-off
// code, a wrong code and its pickup code, each followed by one baseline
// operation, so the two sides share the machine's noise.
//
// The code check runs on a store opened with NoSync: the decision against a
// bare HMAC and Get, and the decision committed without the disk flush
// against a bare commit. The durable decision runs on the same data with
// fsync, against a bare fsync'd commit.

// t0 is the benchmark box's (fake) time.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// codeIndexBucket is where the store keeps keyed code hashes; the baseline
// copies it so it looks up the very same keys.
var codeIndexBucket = []byte(store.BucketCodeIndex)

var outboxBucket = []byte("outbox")

// bareDB is the baseline: a plain bbolt file with the daemon's code index.
type bareDB struct {
	db     *bolt.DB
	secret []byte
}

// newBareDB makes a bbolt file at path holding a copy of src's code index,
// written sorted as the store writes it, and an empty outbox bucket.
func newBareDB(path string, src *store.DB, secret []byte, noSync bool) (*bareDB, error) {
	var recs [][2][]byte
	err := src.Bolt().View(func(tx *bolt.Tx) error {
		b := tx.Bucket(codeIndexBucket)
		if b == nil {
			return fmt.Errorf("the store has no %s bucket", codeIndexBucket)
		}
		return b.ForEach(func(k, v []byte) error {
			recs = append(recs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoSync: noSync})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(codeIndexBucket)
		if err != nil {
			return err
		}
		b.FillPercent = 0.9
		for _, r := range recs {
			if err := b.Put(r[0], r[1]); err != nil {
				return err
			}
		}
		_, err = tx.CreateBucketIfNotExists(outboxBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &bareDB{db: db, secret: secret}, nil
}

// lookup is one HMAC-SHA256 of the code and one Get, in a read transaction.
func (x *bareDB) lookup(code string, want bool) (time.Duration, error) {
	start := time.Now()
	var found bool
	err := x.db.View(func(tx *bolt.Tx) error {
		m := hmac.New(sha256.New, x.secret)
		m.Write([]byte(code))
		found = tx.Bucket(codeIndexBucket).Get(m.Sum(nil)) != nil
		return nil
	})
	d := time.Since(start)
	if err == nil && found != want {
		err = fmt.Errorf("baseline lookup of a %s code found %v", map[bool]string{true: "stored", false: "wrong"}[want], found)
	}
	return d, err
}

// put is one committed bbolt Update putting payload under the outbox's next
// sequence.
func (x *bareDB) put(payload []byte) (time.Duration, error) {
	start := time.Now()
	err := x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(outboxBucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		return b.Put(k[:], payload)
	})
	return time.Since(start), err
}

// enter submits code at the keypad and returns how long the box took to
// take its decision (its recording transaction began) and to tell the
// keypad (the transaction committed), checking that it decided as expected.
func (b *benchBox) enter(ctx context.Context, code string, wantAccepted bool) (staged, decided time.Duration, err error) {
	_, _, n0 := b.fb.last()
	start := time.Now()
	b.box.KeypadEntry(code)
	if err := b.flush(ctx); err != nil {
		return 0, 0, err
	}
	at, accepted, n := b.fb.last()
	if n != n0+1 {
		return 0, 0, fmt.Errorf("keypad entry: %d decisions, want 1", n-n0)
	}
	if accepted != wantAccepted {
		return 0, 0, fmt.Errorf("keypad entry: accepted %v, want %v", accepted, wantAccepted)
	}
	st := b.st.lastStaged()
	if st.Before(start) || st.After(at) {
		return 0, 0, fmt.Errorf("keypad entry: no transaction between the entry and its decision")
	}
	return st.Sub(start), at.Sub(start), nil
}

// entrySamples are the keypad decisions of one run and their baselines.
type entrySamples struct {
	wrong, right             samples // entry to the keypad told: the decision committed
	wrongStaged, rightStaged samples // entry to the decision taken, before its commit
	baseWrong, baseR         samples // the baseline operation after each
}

// runEntries runs cycles of (wrong, drop-off, wrong, pickup) entries, each
// followed by base(code, stored).
func runEntries(ctx context.Context, b *benchBox, clock *clockwork.FakeClock, codes, cycles int,
	base func(code string, stored bool) (time.Duration, error)) (*entrySamples, error) {
	s := &entrySamples{}
	step := func(code string, right bool) error {
		st, d, err := b.enter(ctx, code, right)
		if err != nil {
			return err
		}
		bd, err := base(code, right)
		if err != nil {
			return err
		}
		if right {
			s.right, s.rightStaged, s.baseR = append(s.right, d), append(s.rightStaged, st), append(s.baseR, bd)
		} else {
			s.wrong, s.wrongStaged, s.baseWrong = append(s.wrong, d), append(s.wrongStaged, st), append(s.baseWrong, bd)
		}
		return nil
	}
	wrong := codes
	for range cycles {
		if err := step(codeOf(wrong), false); err != nil {
			return nil, fmt.Errorf("wrong code: %w", err)
		}
		if err := step(codeOf(0), true); err != nil {
			return nil, fmt.Errorf("drop-off code: %w", err)
		}
		// The bin has no reader: the drop-off completes at its timeout.
		clock.Advance(time.Second + time.Millisecond)
		if err := b.flush(ctx); err != nil {
			return nil, err
		}
		if err := step(codeOf(wrong+1), false); err != nil {
			return nil, fmt.Errorf("wrong code: %w", err)
		}
		if err := step(codeOf(1), true); err != nil {
			return nil, fmt.Errorf("pickup code: %w", err)
		}
		wrong += 2
	}
	return s, nil
}

// entryResult is what the keypad benchmarks report.
type entryResult struct {
	check, durable *entrySamples
	commitFloor    samples // a bare bbolt Update of one record, without fsync
}

// benchEntries measures the code check (NoSync) and the durable decision
// (fsync) on one box holding `codes` access codes.
func benchEntries(ctx context.Context, work string, codes, checkCycles, durableCycles int, logf logFunc) (*entryResult, error) {
	dir := filepath.Join(work, "keypad")
	clock := clockwork.NewFakeClockAt(t0)
	snap, err := snapshotData(codes, t0, "keypad")
	if err != nil {
		return nil, err
	}
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID, NoSync: true})
	if err != nil {
		return nil, err
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	secret, err := os.ReadFile(filepath.Join(dir, store.SecretFile))
	if err != nil {
		return nil, err
	}
	b, err := startBox(ctx, db, clock)
	if err != nil {
		return nil, err
	}
	if _, err := b.execute(ctx, "keypad-snapshot", "sync.snapshot", snap); err != nil {
		b.stop()
		return nil, err
	}
	bare, err := newBareDB(filepath.Join(work, "keypad-bare.db"), db, secret, false)
	if err != nil {
		b.stop()
		return nil, err
	}
	defer bare.db.Close()

	payload, err := rejectedEventSize()
	if err != nil {
		b.stop()
		return nil, err
	}
	logf("code check: %d cycles of 4 entries", checkCycles)
	res := &entryResult{}
	// Besides the lookup, each step times a bare commit without fsync: the
	// least any decision that is recorded costs.
	bare.db.NoSync = true
	res.check, err = runEntries(ctx, b, clock, codes, checkCycles, func(code string, stored bool) (time.Duration, error) {
		d, err := bare.lookup(code, stored)
		if err != nil {
			return 0, err
		}
		f, err := bare.put(payload)
		res.commitFloor = append(res.commitFloor, f)
		return d, err
	})
	bare.db.NoSync = false
	if serr := b.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("code check: %w", err)
	}

	// The same database, durable: reopened with fsync on every commit.
	if err := db.Close(); err != nil {
		return nil, err
	}
	db = nil
	ddb, err := store.Open(dir, store.Options{BoxID: benchBoxID})
	if err != nil {
		return nil, err
	}
	db = ddb
	if b, err = startBox(ctx, db, clock); err != nil {
		return nil, err
	}
	logf("durable decision: %d cycles of 4 entries", durableCycles)
	res.durable, err = runEntries(ctx, b, clock, codes+4*checkCycles, durableCycles,
		func(string, bool) (time.Duration, error) { return bare.put(payload) })
	if serr := b.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("durable decision: %w", err)
	}
	return res, nil
}

// rejectedEventSize is a record the size of a code.rejected event as the
// outbox stores it.
func rejectedEventSize() ([]byte, error) {
	data, _ := json.Marshal(map[string]string{"reason": "code.unknown"})
	return json.Marshal(contract.Event{ID: "0123456789abcdef01234567", BoxID: benchBoxID, Seq: 123456,
		Type: "code.rejected", At: t0, Data: data})
}
