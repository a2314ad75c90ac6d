package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The offline key (contract §8) lives in the meta bucket, in the database
// file (mode 0600) like every code hash and beside the secret it is no
// worse kept than. It is never put in an event, a reply or a log.

// OfflineKey returns the box's offline key, nil when none is set. The
// slice is a copy, valid after the transaction.
func (t *Tx) OfflineKey() []byte {
	return bytes.Clone(t.meta().Get(metaOfflineKey))
}

// PutOfflineKey stores the box's offline key.
func (t *Tx) PutOfflineKey(key []byte) error {
	if err := t.meta().Put(metaOfflineKey, bytes.Clone(key)); err != nil {
		return fmt.Errorf("store: put offline key: %w", err)
	}
	return nil
}

// Offline mark kinds.
const (
	MarkUsed    = "used"    // a once-mode code that opened a bin
	MarkRevoked = "revoked" // a code offline.revoke refused
)

// OfflineMark is what the box keeps of an offline code that must not open
// again: under the code's keyed hash, what happened to it and until when
// it matters (the end of its window; after that the code opens nothing
// anyway).
type OfflineMark struct {
	Kind  string    `json:"kind"`
	Until time.Time `json:"until"`
}

// OfflineMark returns the mark kept under the keyed hash of an offline
// code, if there is one that has not run out at now.
func (t *Tx) OfflineMark(hash []byte, now time.Time) (OfflineMark, bool, error) {
	var m OfflineMark
	ok, err := getJSON(t.offline(), hash, &m)
	if err != nil || !ok || !now.Before(m.Until) {
		return OfflineMark{}, false, err
	}
	return m, true, nil
}

// PutOfflineMark keeps m under the keyed hash of an offline code. A
// revocation is not turned back into a use.
func (t *Tx) PutOfflineMark(hash []byte, m OfflineMark) error {
	var old OfflineMark
	if ok, err := getJSON(t.offline(), hash, &old); err != nil {
		return err
	} else if ok && old.Kind == MarkRevoked && m.Kind != MarkRevoked && !old.Until.Before(m.Until) {
		return nil
	}
	m.Until = m.Until.UTC()
	return putJSON(t.offline(), hash, m)
}

// PruneOfflineMarks deletes up to max marks that ran out at or before
// now, and returns how many it deleted.
func (t *Tx) PruneOfflineMarks(now time.Time, max int) (int, error) {
	var stale [][]byte
	c := t.offline().Cursor()
	for k, v := c.First(); k != nil && len(stale) < max; k, v = c.Next() {
		var m OfflineMark
		if err := json.Unmarshal(v, &m); err != nil || !now.Before(m.Until) {
			stale = append(stale, bytes.Clone(k))
		}
	}
	for _, k := range stale {
		if err := t.offline().Delete(k); err != nil {
			return 0, fmt.Errorf("store: prune offline marks: %w", err)
		}
	}
	return len(stale), nil
}

// OfflineMarks is how many offline marks are kept, run out or not.
func (t *Tx) OfflineMarks() int {
	n := 0
	c := t.offline().Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
