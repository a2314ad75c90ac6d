package store

import (
	"bytes"
	"fmt"
	"slices"
)

type kv struct{ k, v []byte }

// ReplaceAll replaces every key and access code with the given ones, and
// records the snapshot version. The records must already be valid and free
// of conflicts. Writes go in key order, bucket by bucket, since bbolt splits
// nodes only at commit and random-order inserts into one transaction grow
// quadratically.
func (t *Tx) ReplaceAll(version string, keys []*Key, codes []*AccessCode) error {
	var keyRecs, fobRecs, codeRecs, idxRecs, schedRecs []kv
	for _, k := range keys {
		keyRecs = append(keyRecs, kv{[]byte(k.ID), encodeKey(k)})
		if k.Fob != "" {
			fobRecs = append(fobRecs, kv{[]byte(k.Fob), []byte(k.ID)})
		}
		if len(k.CodeHash) > 0 {
			idxRecs = append(idxRecs, kv{k.CodeHash, owner(OwnerKey, k.ID)})
		}
	}
	for _, a := range codes {
		codeRecs = append(codeRecs, kv{[]byte(a.ID), encodeAccessCode(a)})
		idxRecs = append(idxRecs, kv{a.CodeHash, owner(OwnerAccessCode, a.ID)})
		if at := a.NextTransition(); !at.IsZero() {
			schedRecs = append(schedRecs, kv{schedKey(at, a.ID), nil})
		}
	}
	for i, recs := range [][]kv{keyRecs, fobRecs, codeRecs, idxRecs, schedRecs} {
		if err := t.refill(replaced[i], recs); err != nil {
			return err
		}
	}
	if err := putU64(t.meta(), metaKeyCount, uint64(len(keys))); err != nil {
		return err
	}
	if err := putU64(t.meta(), metaCodeCount, uint64(len(codes))); err != nil {
		return err
	}
	return t.meta().Put(metaSnapshot, []byte(version))
}

// refill drops bucket name and writes recs into a new one, sorted, with a
// high fill percent since the keys arrive in order.
func (t *Tx) refill(name []byte, recs []kv) error {
	if err := t.tx.DeleteBucket(name); err != nil {
		return fmt.Errorf("store: replace %s: %w", name, err)
	}
	b, err := t.tx.CreateBucket(name)
	if err != nil {
		return fmt.Errorf("store: replace %s: %w", name, err)
	}
	t.forget(name)
	b.FillPercent = 0.9
	slices.SortFunc(recs, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
	for _, r := range recs {
		if err := b.Put(r.k, r.v); err != nil {
			return fmt.Errorf("store: replace %s: %w", name, err)
		}
	}
	return nil
}
