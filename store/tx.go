package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"smartboxd/contract"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction with typed access to the box's records. Its methods
// keep the fob index, the code index, the schedule and the counters in step
// with the records they index.
type Tx struct {
	tx *bolt.Tx
	d  *DB
	// buckets opened so far: each is looked up on first use, since a
	// decision touches only a few of them.
	open map[string]*bolt.Bucket
}

func (t *Tx) bucket(name []byte) *bolt.Bucket {
	if b, ok := t.open[string(name)]; ok {
		return b
	}
	b := t.tx.Bucket(name)
	if t.open == nil {
		t.open = make(map[string]*bolt.Bucket, 4)
	}
	t.open[string(name)] = b
	return b
}

// appendOnly returns a bucket whose keys only ever grow (a sequence): its
// pages are filled to the brim as they split, since nothing is inserted
// before the last key. bbolt's default, half full, would leave the outbox
// file twice the size of its events.
func (t *Tx) appendOnly(name []byte) *bolt.Bucket {
	b := t.bucket(name)
	if b != nil {
		b.FillPercent = appendFill
	}
	return b
}

// appendFill is the fill percent of the append-only buckets, and of the
// stage's buckets written in key order: full, since nothing lands before
// the last key.
const appendFill = 1.0

// forget drops a cached bucket that was deleted and made anew.
func (t *Tx) forget(name []byte) { delete(t.open, string(name)) }

func (t *Tx) meta() *bolt.Bucket      { return t.bucket(bucketMeta) }
func (t *Tx) bins() *bolt.Bucket      { return t.bucket(bucketBins) }
func (t *Tx) keys() *bolt.Bucket      { return t.bucket(bucketKeys) }
func (t *Tx) fobs() *bolt.Bucket      { return t.bucket(bucketFobs) }
func (t *Tx) codes() *bolt.Bucket     { return t.bucket(bucketCodes) }
func (t *Tx) codeIdx() *bolt.Bucket   { return t.bucket(bucketCodeIndex) }
func (t *Tx) sched() *bolt.Bucket     { return t.bucket(bucketSchedule) }
func (t *Tx) outbox() *bolt.Bucket    { return t.appendOnly(bucketOutbox) }
func (t *Tx) history() *bolt.Bucket   { return t.appendOnly(bucketHistory) }
func (t *Tx) replies() *bolt.Bucket   { return t.bucket(bucketReplies) }
func (t *Tx) replyLog() *bolt.Bucket  { return t.bucket(bucketReplyLog) }
func (t *Tx) offline() *bolt.Bucket   { return t.bucket(bucketOffline) }
func (t *Tx) outboxIdx() *bolt.Bucket { return t.appendOnly(bucketOutboxIdx) } // a sequence per class

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("store: decode %s/%s: %w", "record", k, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", k, err)
	}
	if err := b.Put(k, raw); err != nil {
		return fmt.Errorf("store: put %s: %w", k, err)
	}
	return nil
}

func binKey(id int) []byte { return be64(uint64(id)) }

// Bin returns bin id's record; a bin never written is empty.
func (t *Tx) Bin(id int) (Bin, error) {
	b := Bin{ID: id}
	_, err := getJSON(t.bins(), binKey(id), &b)
	b.ID = id
	return b, err
}

// PutBin writes a bin's record.
func (t *Tx) PutBin(b Bin) error { return putJSON(t.bins(), binKey(b.ID), b) }

// Key returns the key with id, or nil when there is none.
func (t *Tx) Key(id string) (*Key, error) {
	v := t.keys().Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeKey([]byte(id), v)
}

// KeyByFob returns the id of the key that owns serial, or "".
func (t *Tx) KeyByFob(serial string) string {
	return string(t.fobs().Get([]byte(serial)))
}

// PutKey writes k, moving its fob and key-code index entries when they
// changed. It does not check ownership conflicts: the caller has.
func (t *Tx) PutKey(k *Key) error {
	old, err := t.Key(k.ID)
	if err != nil {
		return err
	}
	if old == nil {
		if err := addU64(t.meta(), metaKeyCount, 1); err != nil {
			return err
		}
	} else {
		if err := t.unindexKey(old, k); err != nil {
			return err
		}
	}
	if k.Fob != "" && (old == nil || old.Fob != k.Fob) {
		if err := t.fobs().Put([]byte(k.Fob), []byte(k.ID)); err != nil {
			return fmt.Errorf("store: index fob: %w", err)
		}
	}
	if len(k.CodeHash) > 0 && (old == nil || !bytes.Equal(old.CodeHash, k.CodeHash)) {
		if err := t.codeIdx().Put(k.CodeHash, owner(OwnerKey, k.ID)); err != nil {
			return fmt.Errorf("store: index key code: %w", err)
		}
	}
	return putRecord(t.keys(), []byte(k.ID), encodeKey(k))
}

// putRecord writes an encoded access code or key.
func putRecord(b *bolt.Bucket, k, v []byte) error {
	if err := b.Put(k, v); err != nil {
		return fmt.Errorf("store: put %s: %w", k, err)
	}
	return nil
}

// unindexKey drops old's index entries that next (nil: deleting) no longer has.
func (t *Tx) unindexKey(old, next *Key) error {
	if old.Fob != "" && (next == nil || next.Fob != old.Fob) && t.KeyByFob(old.Fob) == old.ID {
		if err := t.fobs().Delete([]byte(old.Fob)); err != nil {
			return fmt.Errorf("store: unindex fob: %w", err)
		}
	}
	if len(old.CodeHash) > 0 && (next == nil || !bytes.Equal(next.CodeHash, old.CodeHash)) {
		if o, ok := t.CodeOwner(old.CodeHash); ok && o.Kind == OwnerKey && o.ID == old.ID {
			if err := t.codeIdx().Delete(old.CodeHash); err != nil {
				return fmt.Errorf("store: unindex key code: %w", err)
			}
		}
	}
	return nil
}

// DeleteKey removes a key and its index entries.
func (t *Tx) DeleteKey(id string) error {
	old, err := t.Key(id)
	if err != nil || old == nil {
		return err
	}
	if err := t.unindexKey(old, nil); err != nil {
		return err
	}
	if err := addU64(t.meta(), metaKeyCount, -1); err != nil {
		return err
	}
	return t.keys().Delete([]byte(id))
}

// ForEachKey calls fn for every key in id order until fn returns an error.
func (t *Tx) ForEachKey(fn func(*Key) error) error {
	return t.keys().ForEach(func(id, v []byte) error {
		k, err := decodeKey(id, v)
		if err != nil {
			return err
		}
		return fn(k)
	})
}

// KeyCount is how many keys are stored.
func (t *Tx) KeyCount() int { return int(getU64(t.meta(), metaKeyCount)) }

// AccessCodeCount is how many access codes are stored.
func (t *Tx) AccessCodeCount() int { return int(getU64(t.meta(), metaCodeCount)) }

func owner(kind byte, id string) []byte {
	return append([]byte{kind}, id...)
}

// CodeOwner returns what hash is the code of, if anything.
func (t *Tx) CodeOwner(hash []byte) (CodeOwner, bool) {
	v := t.codeIdx().Get(hash)
	if len(v) < 1 {
		return CodeOwner{}, false
	}
	return CodeOwner{Kind: v[0], ID: string(v[1:])}, true
}

// AccessCode returns the access code with id, or nil.
func (t *Tx) AccessCode(id string) (*AccessCode, error) {
	v := t.codes().Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeAccessCode([]byte(id), v)
}

// Schedule keys hold Unix nanoseconds, which reach from 1677 to 2262. A time
// outside that span is kept at its nearer end (UnixNano would wrap it round
// to a wrong time, a year-9999 end coming due at once); since every time in
// the span keeps its exact key, the order stays right.
var (
	schedMin = time.Unix(0, math.MinInt64)
	schedMax = time.Unix(0, math.MaxInt64)
)

func schedKey(at time.Time, id string) []byte {
	if at.Before(schedMin) {
		at = schedMin
	} else if at.After(schedMax) {
		at = schedMax
	}
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano())^(1<<63))
	return append(k, id...)
}

// PutAccessCode writes a, moving its code index and schedule entries. A
// tombstone of the same id goes: the code written wins over one removed.
func (t *Tx) PutAccessCode(a *AccessCode) error {
	old, err := t.AccessCode(a.ID)
	if err != nil {
		return err
	}
	if err := t.DeleteTombstone(a.ID); err != nil {
		return err
	}
	if old == nil {
		if err := addU64(t.meta(), metaCodeCount, 1); err != nil {
			return err
		}
	} else if err := t.unindexCode(old); err != nil {
		return err
	}
	if err := t.codeIdx().Put(a.CodeHash, owner(OwnerAccessCode, a.ID)); err != nil {
		return fmt.Errorf("store: index code: %w", err)
	}
	if at := a.NextTransition(); !at.IsZero() {
		if err := t.sched().Put(schedKey(at, a.ID), nil); err != nil {
			return fmt.Errorf("store: schedule: %w", err)
		}
	}
	return putRecord(t.codes(), []byte(a.ID), encodeAccessCode(a))
}

func (t *Tx) unindexCode(old *AccessCode) error {
	if o, ok := t.CodeOwner(old.CodeHash); ok && o.Kind == OwnerAccessCode && o.ID == old.ID {
		if err := t.codeIdx().Delete(old.CodeHash); err != nil {
			return fmt.Errorf("store: unindex code: %w", err)
		}
	}
	if at := old.NextTransition(); !at.IsZero() {
		if err := t.sched().Delete(schedKey(at, old.ID)); err != nil {
			return fmt.Errorf("store: unschedule: %w", err)
		}
	}
	return nil
}

// DeleteAccessCode removes an access code with its index and schedule entries.
func (t *Tx) DeleteAccessCode(id string) error {
	old, err := t.AccessCode(id)
	if err != nil || old == nil {
		return err
	}
	if err := t.unindexCode(old); err != nil {
		return err
	}
	if err := addU64(t.meta(), metaCodeCount, -1); err != nil {
		return err
	}
	return t.codes().Delete([]byte(id))
}

// ForEachAccessCode calls fn for every access code in id order.
func (t *Tx) ForEachAccessCode(fn func(*AccessCode) error) error {
	return t.codes().ForEach(func(id, v []byte) error {
		a, err := decodeAccessCode(id, v)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

// ScheduleEntry is one pending access-code transition.
type ScheduleEntry struct {
	At time.Time
	ID string
}

// Due returns up to max transitions due at or before now, earliest first,
// and the time of the first one after them (zero when there is none). A
// transition outside 1677-2262 is reported at that span's nearer end.
func (t *Tx) Due(now time.Time, max int) (due []ScheduleEntry, next time.Time) {
	c := t.sched().Cursor()
	limit := schedKey(now, "")
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		at := time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63))).UTC()
		if bytes.Compare(k[:8], limit[:8]) > 0 || len(due) >= max {
			return due, at
		}
		due = append(due, ScheduleEntry{At: at, ID: string(k[8:])})
	}
	return due, time.Time{}
}

// Unschedule drops a schedule entry.
func (t *Tx) Unschedule(e ScheduleEntry) error {
	if err := t.sched().Delete(schedKey(e.At, e.ID)); err != nil {
		return fmt.Errorf("store: unschedule: %w", err)
	}
	return nil
}

// Settings returns the box settings.
func (t *Tx) Settings() (contract.Settings, error) {
	var s contract.Settings
	_, err := getJSON(t.meta(), metaSettings, &s)
	return s, err
}

// PutSettings writes the box settings.
func (t *Tx) PutSettings(s contract.Settings) error { return putJSON(t.meta(), metaSettings, s) }

// Lockout returns the keypad's lockout state, or the console's with console.
func (t *Tx) Lockout(console bool) (Lockout, error) {
	var l Lockout
	_, err := getJSON(t.meta(), lockoutKey(console), &l)
	return l, err
}

// PutLockout writes the keypad's (or the console's) lockout state.
func (t *Tx) PutLockout(console bool, l Lockout) error {
	return putJSON(t.meta(), lockoutKey(console), l)
}

func lockoutKey(console bool) []byte {
	if console {
		return metaConsoleLock
	}
	return metaLockout
}

// SnapshotVersion is the version of the last snapshot applied.
func (t *Tx) SnapshotVersion() string { return string(t.meta().Get(metaSnapshot)) }

// StoredReply is a command's reply as kept for a repeated command id.
type StoredReply struct {
	Reply []byte
	// Fingerprint identifies the command the reply answers (its type and
	// data, see contract.Fingerprint), so a different command under the
	// same id is told apart; nil for a reply kept without one.
	Fingerprint []byte
	At          time.Time // when it was stored; zero when unknown
}

// Reply values: a reply stored by PutStoredReply starts with replyTag, then
// the time it was stored (be64 Unix nanoseconds, 0 unknown), the length of
// the fingerprint (one byte) and the fingerprint, then the reply. A value
// without the tag (written before fingerprints were kept) is the bare reply:
// replies are JSON objects, never starting with that byte.
const replyTag = 0x01

func encodeReply(r StoredReply) []byte {
	b := make([]byte, 0, 10+len(r.Fingerprint)+len(r.Reply))
	b = append(b, replyTag)
	var nanos uint64
	if !r.At.IsZero() {
		nanos = uint64(r.At.UnixNano())
	}
	b = binary.BigEndian.AppendUint64(b, nanos)
	b = append(b, byte(len(r.Fingerprint)))
	b = append(b, r.Fingerprint...)
	return append(b, r.Reply...)
}

// decodeReply reads a reply value; the slices it returns point into v.
func decodeReply(v []byte) StoredReply {
	if len(v) < 10 || v[0] != replyTag || len(v) < 10+int(v[9]) {
		return StoredReply{Reply: v}
	}
	var r StoredReply
	if nanos := binary.BigEndian.Uint64(v[1:9]); nanos != 0 {
		r.At = time.Unix(0, int64(nanos)).UTC()
	}
	if n := int(v[9]); n > 0 {
		r.Fingerprint = v[10 : 10+n]
	}
	r.Reply = v[10+int(v[9]):]
	return r
}

// Reply returns the stored reply to command id, if there is one.
func (t *Tx) Reply(id string) ([]byte, bool) {
	r, ok := t.StoredReply(id)
	return r.Reply, ok
}

// StoredReply returns the reply kept for command id, if there is one.
func (t *Tx) StoredReply(id string) (StoredReply, bool) {
	v := t.replies().Get([]byte(id))
	if v == nil {
		return StoredReply{}, false
	}
	r := decodeReply(v)
	r.Reply, r.Fingerprint = bytes.Clone(r.Reply), bytes.Clone(r.Fingerprint)
	return r, true
}

// PutReply stores the reply to command id without a fingerprint or a time
// (see PutStoredReply).
func (t *Tx) PutReply(id string, reply []byte) error {
	return t.PutStoredReply(id, StoredReply{Reply: reply})
}

// PutStoredReply stores the reply to command id. Replies are let go oldest
// first, by volume and age: past Options.Replies entries the oldest goes,
// but one younger than ReplyYoungAge (by r.At) only while more than
// ReplyYoungKept are stored, so a burst of commands cannot push out the
// replies of the last day that a redelivery may still need.
func (t *Tx) PutStoredReply(id string, r StoredReply) error {
	if len(r.Fingerprint) > 255 {
		return fmt.Errorf("store: reply fingerprint of %d bytes", len(r.Fingerprint))
	}
	if t.replies().Get([]byte(id)) == nil {
		n, err := t.replyLog().NextSequence()
		if err != nil {
			return fmt.Errorf("store: reply log: %w", err)
		}
		if err := t.replyLog().Put(be64(n), []byte(id)); err != nil {
			return fmt.Errorf("store: reply log: %w", err)
		}
		if err := t.trimReplies(n, r.At); err != nil {
			return err
		}
	}
	if err := t.replies().Put([]byte(id), encodeReply(r)); err != nil {
		return fmt.Errorf("store: put reply: %w", err)
	}
	return nil
}

// Counters returns the stored replay window of signing key kid (nil when
// none): its counters are kept with the effects of the commands they
// signed, in the same transaction.
func (t *Tx) Counters(kid string) []byte {
	return bytes.Clone(t.bucket(bucketCounters).Get([]byte(kid)))
}

// PutCounters stores the replay window of signing key kid.
func (t *Tx) PutCounters(kid string, window []byte) error {
	if err := t.bucket(bucketCounters).Put([]byte(kid), window); err != nil {
		return fmt.Errorf("store: put counters: %w", err)
	}
	return nil
}

// trimReplies lets the oldest replies go, newest being the reply log's
// last key and now the time of the reply being stored.
func (t *Tx) trimReplies(newest uint64, now time.Time) error {
	// Reply log keys are consecutive: the oldest is the first.
	c := t.replyLog().Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		count := newest - binary.BigEndian.Uint64(k) + 1
		if count <= uint64(t.d.opts.Replies) {
			return nil
		}
		if count <= ReplyYoungKept {
			old := decodeReply(t.replies().Get(v))
			if !old.At.IsZero() && !now.IsZero() && now.Sub(old.At) < ReplyYoungAge {
				return nil // the oldest is young: so are the rest
			}
		}
		if err := t.replies().Delete(v); err != nil {
			return fmt.Errorf("store: trim replies: %w", err)
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("store: trim replies: %w", err)
		}
	}
	return nil
}
