package store

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"smartboxd/contract"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// benchEvent is a typical event's data.
var benchEvent = map[string]any{"key_id": "6f1a4656-abfe-4739-a074-9f6d0c1b2e3f", "bin": 3, "fob": "0A1B2C3D4E"}

func BenchmarkCodeHash(b *testing.B) {
	db, _ := openTest(b, Options{NoSync: true})
	b.ReportAllocs()
	for b.Loop() {
		db.CodeHash("24681357")
	}
}

// BenchmarkAppendEvent is one committed (fsync'd) transaction appending one
// event: the cost of every state change the box reports.
func BenchmarkAppendEvent(b *testing.B) {
	db, _ := openTest(b, Options{BoxID: "box-0001"})
	b.ReportAllocs()
	for b.Loop() {
		err := db.Update(func(tx *Tx) error {
			_, err := tx.Append("key.dropped_off", t0, benchEvent)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// openBare opens a plain bbolt file with the options Open uses.
func openBare(b *testing.B) *bolt.DB {
	b.Helper()
	bdb, err := bolt.Open(filepath.Join(b.TempDir(), "bare.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bdb.Close() })
	return bdb
}

// BenchmarkBareUpdate is the baseline for BenchmarkAppendEvent: one
// committed bbolt transaction putting one record of an event's size under
// the bucket's next sequence.
func BenchmarkBareUpdate(b *testing.B) {
	raw, _ := json.Marshal(benchEvent)
	payload, _ := json.Marshal(contract.Event{ID: "0123456789abcdef01234567", BoxID: "box-0001", Seq: 1 << 20,
		Type: "key.dropped_off", At: t0, Data: raw})
	bdb := openBare(b)
	err := bdb.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketOutbox)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		err := bdb.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketOutbox)
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			return bk.Put(be64(seq), payload)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

const benchCodes = 100_000

// BenchmarkReplaceAll100k replaces the whole set with 100,000 access codes
// (random keyed hashes, a third of them time-bound) in one transaction.
func BenchmarkReplaceAll100k(b *testing.B) {
	db, _ := openTest(b, Options{})
	codes := randomCodes(benchCodes, 7)
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Update(func(tx *Tx) error { return tx.ReplaceAll("bench", nil, codes) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareSortedInsert100k is the baseline for BenchmarkReplaceAll100k:
// the same records (access codes, code index, schedule), already encoded
// and sorted, put into fresh buckets in one bbolt transaction.
func BenchmarkBareSortedInsert100k(b *testing.B) {
	var codeRecs, idxRecs, schedRecs []kv
	for _, a := range randomCodes(benchCodes, 7) {
		raw, err := json.Marshal(a)
		if err != nil {
			b.Fatal(err)
		}
		codeRecs = append(codeRecs, kv{[]byte(a.ID), raw})
		idxRecs = append(idxRecs, kv{a.CodeHash, owner(OwnerAccessCode, a.ID)})
		if at := a.NextTransition(); !at.IsZero() {
			schedRecs = append(schedRecs, kv{schedKey(at, a.ID), nil})
		}
	}
	buckets := []struct {
		name []byte
		recs []kv
	}{{bucketCodes, codeRecs}, {bucketCodeIndex, idxRecs}, {bucketSchedule, schedRecs}}
	for _, bk := range buckets {
		slices.SortFunc(bk.recs, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
	}

	bdb := openBare(b)
	b.ReportAllocs()
	for b.Loop() {
		err := bdb.Update(func(tx *bolt.Tx) error {
			for _, bk := range buckets {
				if tx.Bucket(bk.name) != nil {
					if err := tx.DeleteBucket(bk.name); err != nil {
						return err
					}
				}
				dst, err := tx.CreateBucket(bk.name)
				if err != nil {
					return err
				}
				dst.FillPercent = 0.9 // as ReplaceAll
				for _, r := range bk.recs {
					if err := dst.Put(r.k, r.v); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
