package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jonboulle/clockwork"
	bolt "go.etcd.io/bbolt"

	"smartboxd/contract"
	"smartboxd/store"
)

// The snapshot path: a sync.snapshot replacing every access code, timed
// from Box.Execute to its reply (the JSON decode, validation, one keyed
// hash per code, the sorted writes and the fsync'd commit). The baseline
// writes the very records the daemon wrote, already encoded and sorted,
// into fresh buckets in one fsync'd bbolt transaction. Both replace a full
// set: an untimed first apply fills each database.

// snapshotBuckets are the buckets a snapshot rewrites.
var snapshotBuckets = store.ReplacedBuckets()

type bucketRecs struct {
	name []byte
	recs [][2][]byte
}

// snapshotRecords reads the records a snapshot left in db, in key order.
func snapshotRecords(db *store.DB) ([]bucketRecs, error) {
	var out []bucketRecs
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		for _, name := range snapshotBuckets {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return fmt.Errorf("the store has no %s bucket", name)
			}
			br := bucketRecs{name: []byte(name)}
			if err := b.ForEach(func(k, v []byte) error {
				br.recs = append(br.recs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				return nil
			}); err != nil {
				return err
			}
			out = append(out, br)
		}
		return nil
	})
	return out, err
}

// rawInsert replaces the buckets with recs in one committed transaction.
func rawInsert(db *bolt.DB, buckets []bucketRecs) (time.Duration, error) {
	start := time.Now()
	err := db.Update(func(tx *bolt.Tx) error {
		for _, br := range buckets {
			if tx.Bucket(br.name) != nil {
				if err := tx.DeleteBucket(br.name); err != nil {
					return err
				}
			}
			b, err := tx.CreateBucket(br.name)
			if err != nil {
				return err
			}
			b.FillPercent = 0.9 // as the store's bulk write
			for _, r := range br.recs {
				if err := b.Put(r[0], r[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return time.Since(start), err
}

type snapshotResult struct {
	daemon, baseline samples
	parse            samples // contract.ParseCommand of the whole envelope, for reference
	keypad           samples // a keypad entry's wait for its decision while a snapshot is applied
	payloadBytes     int
	records          int
}

// benchSnapshot applies a snapshot of `codes` access codes reps times,
// interleaved with the raw insert of its records.
func benchSnapshot(ctx context.Context, work string, codes, reps int, logf logFunc) (*snapshotResult, error) {
	dir := filepath.Join(work, "snapshot")
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	b, err := startBox(ctx, db, clockwork.NewFakeClockAt(t0))
	if err != nil {
		return nil, err
	}
	defer b.stop()
	data, err := snapshotData(codes, t0, "snapshot")
	if err != nil {
		return nil, err
	}
	res := &snapshotResult{payloadBytes: len(data)}
	if _, err := b.execute(ctx, "snapshot-fill", "sync.snapshot", data); err != nil {
		return nil, err
	}
	recs, err := snapshotRecords(db)
	if err != nil {
		return nil, err
	}
	for _, br := range recs {
		res.records += len(br.recs)
	}
	bare, err := bolt.Open(filepath.Join(work, "snapshot-bare.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	defer bare.Close()
	if _, err := rawInsert(bare, recs); err != nil {
		return nil, err
	}
	envelope := append(append([]byte(`{"id":"parse","type":"sync.snapshot","data":`), data...), '}')
	for i := range reps {
		logf("snapshot: rep %d of %d", i+1, reps)
		probe := make(chan samples)
		stop := make(chan struct{})
		go func() { probe <- keypadProbe(ctx, b, stop) }()
		start := time.Now()
		_, err := b.execute(ctx, fmt.Sprintf("snapshot-%d", i), "sync.snapshot", data)
		res.daemon = append(res.daemon, time.Since(start))
		close(stop)
		res.keypad = append(res.keypad, <-probe...)
		if err != nil {
			return nil, err
		}
		d, err := rawInsert(bare, recs)
		if err != nil {
			return nil, err
		}
		res.baseline = append(res.baseline, d)
		start = time.Now()
		if _, err := contract.ParseCommand(envelope, contract.DefaultLimits); err != nil {
			return nil, err
		}
		res.parse = append(res.parse, time.Since(start))
	}
	return res, nil
}

// keypadProbe enters an unknown code every 10 ms until stop, and returns
// how long each waited for the decision loop to decide it: what a guest at
// the keypad waits while a snapshot is being applied.
func keypadProbe(ctx context.Context, b *benchBox, stop <-chan struct{}) samples {
	var out samples
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
		start := time.Now()
		b.box.KeypadEntry("98765432")
		if b.flush(ctx) != nil {
			return out
		}
		out = append(out, time.Since(start))
	}
}
