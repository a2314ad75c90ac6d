package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tombstone is a time-bound access code the schedule removed, kept for a
// while (limits.removed_retention_s) so that a clock that jumped forward
// and comes back inside the code's window can restore it. Like the live
// record it holds only the code's keyed hash, and its code index entry
// lives here too, not in the live index: the code is free for another while
// it is a tombstone.
type Tombstone struct {
	Code      AccessCode `json:"code"`
	RemovedAt time.Time  `json:"removed_at"`
}

func (t *Tx) tombs() *bolt.Bucket    { return t.bucket(bucketTombs) }
func (t *Tx) tombEnds() *bolt.Bucket { return t.bucket(bucketTombEnds) }
func (t *Tx) tombGone() *bolt.Bucket { return t.bucket(bucketTombGone) }

func endsAt(a *AccessCode) time.Time {
	if a.EndsAt == nil {
		return time.Time{}
	}
	return *a.EndsAt
}

// Tombstone returns the tombstone of access code id, or nil.
func (t *Tx) Tombstone(id string) (*Tombstone, error) {
	var ts Tombstone
	ok, err := getJSON(t.tombs(), []byte(id), &ts)
	if !ok || err != nil {
		return nil, err
	}
	return &ts, nil
}

// PutTombstone keeps ts, replacing any tombstone of the same access code.
func (t *Tx) PutTombstone(ts *Tombstone) error {
	if err := t.DeleteTombstone(ts.Code.ID); err != nil {
		return err
	}
	if err := t.tombEnds().Put(schedKey(endsAt(&ts.Code), ts.Code.ID), nil); err != nil {
		return fmt.Errorf("store: index tombstone: %w", err)
	}
	if err := t.tombGone().Put(schedKey(ts.RemovedAt, ts.Code.ID), nil); err != nil {
		return fmt.Errorf("store: index tombstone: %w", err)
	}
	return putJSON(t.tombs(), []byte(ts.Code.ID), ts)
}

// DeleteTombstone drops the tombstone of access code id, if there is one.
func (t *Tx) DeleteTombstone(id string) error {
	ts, err := t.Tombstone(id)
	if err != nil || ts == nil {
		return err
	}
	if err := t.tombEnds().Delete(schedKey(endsAt(&ts.Code), id)); err != nil {
		return fmt.Errorf("store: unindex tombstone: %w", err)
	}
	if err := t.tombGone().Delete(schedKey(ts.RemovedAt, id)); err != nil {
		return fmt.Errorf("store: unindex tombstone: %w", err)
	}
	if err := t.tombs().Delete([]byte(id)); err != nil {
		return fmt.Errorf("store: delete tombstone: %w", err)
	}
	return nil
}

func schedTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63))).UTC()
}

// Restorable returns up to max tombstones whose code's window ends after
// now, earliest end first: codes removed by a clock that was ahead. With a
// clock that never went back there are none, and finding that out reads one
// page.
func (t *Tx) Restorable(now time.Time, max int) ([]*Tombstone, error) {
	var out []*Tombstone
	c := t.tombEnds().Cursor()
	for k, _ := c.Seek(schedKey(now, "")); k != nil && len(out) < max; k, _ = c.Next() {
		if !schedTime(k).After(now) {
			continue
		}
		ts, err := t.Tombstone(string(k[8:]))
		if err != nil {
			return nil, err
		}
		if ts != nil {
			out = append(out, ts)
		}
	}
	return out, nil
}

// PruneTombstones drops up to max tombstones made before cutoff, oldest
// first, and returns how many went.
func (t *Tx) PruneTombstones(cutoff time.Time, max int) (int, error) {
	var ids []string
	c := t.tombGone().Cursor()
	for k, _ := c.First(); k != nil && len(ids) < max && schedTime(k).Before(cutoff); k, _ = c.Next() {
		ids = append(ids, string(k[8:]))
	}
	for _, id := range ids {
		if err := t.DeleteTombstone(id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}
