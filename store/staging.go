package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A large snapshot is staged: its records are written, a chunk per
// transaction, into buckets under bucketStage that mirror the replaced ones,
// and CommitStage then swaps them for the live buckets in one small
// transaction. Until then the live records are untouched, so the snapshot
// stays all-or-nothing across crashes; a stage left by a crash is dropped by
// the next BeginStage or DropStage.
var (
	bucketStage = []byte("stage")
	stageKeys   = []byte("n_keys")
	stageCodes  = []byte("n_codes")
	metaRunning = []byte("running")
)

// ErrNoStage is returned by the staging calls when no stage was begun.
var ErrNoStage = errors.New("store: no snapshot is staged")

func (t *Tx) stage() *bolt.Bucket { return t.tx.Bucket(bucketStage) }

// staged returns the stage's bucket name. The access codes and the code
// index are written in key order (see StageEncoded, StageCodeIndex), so
// their pages are filled as they split; bbolt keeps a fill percent only
// for the transaction that set it.
func (t *Tx) staged(name []byte) *bolt.Bucket {
	s := t.stage()
	if s == nil {
		return nil
	}
	b := s.Bucket(name)
	if b != nil && (bytes.Equal(name, bucketCodes) || bytes.Equal(name, bucketCodeIndex)) {
		b.FillPercent = appendFill
	}
	return b
}

// BeginStage drops any earlier stage and begins an empty one.
func (t *Tx) BeginStage() error {
	if err := t.DropStage(); err != nil {
		return err
	}
	s, err := t.tx.CreateBucket(bucketStage)
	if err != nil {
		return fmt.Errorf("store: begin stage: %w", err)
	}
	for _, name := range replaced {
		if _, err := s.CreateBucket(name); err != nil {
			return fmt.Errorf("store: begin stage: %w", err)
		}
	}
	return nil
}

// DropStage drops the stage, if there is one.
func (t *Tx) DropStage() error {
	if err := t.tx.DeleteBucket(bucketStage); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("store: drop stage: %w", err)
	}
	return nil
}

// Staging reports whether a stage was begun and not yet committed or
// dropped.
func (t *Tx) Staging() bool { return t.stage() != nil }

// StageKey writes k into the stage with its fob index entry; its key-code
// index entry goes in with StageCodeIndex. Like ReplaceAll, it does not
// check conflicts: the caller has.
func (t *Tx) StageKey(k *Key) error {
	s := t.stage()
	if s == nil {
		return ErrNoStage
	}
	if s.Bucket(bucketKeys).Get([]byte(k.ID)) == nil {
		if err := addU64(s, stageKeys, 1); err != nil {
			return err
		}
	}
	if k.Fob != "" {
		if err := s.Bucket(bucketFobs).Put([]byte(k.Fob), []byte(k.ID)); err != nil {
			return fmt.Errorf("store: stage fob: %w", err)
		}
	}
	return putRecord(s.Bucket(bucketKeys), []byte(k.ID), encodeKey(k))
}

// StageAccessCode writes a into the stage with its schedule entry; its code
// index entry goes in with StageCodeIndex.
func (t *Tx) StageAccessCode(a *AccessCode) error {
	return t.StageEncoded(EncodeAccessCode(a))
}

// EncodedAccessCode is an access code in its stored form, ready to stage:
// a snapshot keeps its codes so while it reads them (about half the size
// of the structs), then stages them in id order.
type EncodedAccessCode struct {
	id, value []byte
	next      time.Time // the code's next transition, zero for none
}

// EncodeAccessCode encodes a for StageEncoded.
func EncodeAccessCode(a *AccessCode) EncodedAccessCode {
	return EncodedAccessCode{id: []byte(a.ID), value: encodeAccessCode(a), next: a.NextTransition()}
}

// ID is the encoded code's id.
func (e EncodedAccessCode) ID() []byte { return e.id }

// Size is how many bytes the encoded code holds.
func (e EncodedAccessCode) Size() int { return len(e.id) + len(e.value) }

// StageEncoded writes an encoded access code into the stage with its
// schedule entry. Codes staged in id order fill the stage's pages to the
// brim (in random order they would be left half empty).
func (t *Tx) StageEncoded(e EncodedAccessCode) error {
	codes := t.staged(bucketCodes)
	if codes == nil {
		return ErrNoStage
	}
	if codes.Get(e.id) == nil {
		if err := addU64(t.stage(), stageCodes, 1); err != nil {
			return err
		}
	}
	if !e.next.IsZero() {
		if err := t.staged(bucketSchedule).Put(schedKey(e.next, string(e.id)), nil); err != nil {
			return fmt.Errorf("store: stage schedule: %w", err)
		}
	}
	return putRecord(codes, e.id, e.value)
}

// StageCodeIndex indexes a staged record's code under its keyed hash.
// Hashes are random: written in sorted order, a chunk at a time, they
// append to the index instead of touching every page of it.
func (t *Tx) StageCodeIndex(hash []byte, o CodeOwner) error {
	b := t.staged(bucketCodeIndex)
	if b == nil {
		return ErrNoStage
	}
	if err := b.Put(hash, owner(o.Kind, o.ID)); err != nil {
		return fmt.Errorf("store: stage code index: %w", err)
	}
	return nil
}

// StagedCounts are how many keys and access codes the stage holds.
func (t *Tx) StagedCounts() (keys, codes int) {
	s := t.stage()
	if s == nil {
		return 0, 0
	}
	return int(getU64(s, stageKeys)), int(getU64(s, stageCodes))
}

// CommitStage makes the staged records the live ones, replacing every key
// and access code, and records the snapshot version: a few bucket moves,
// however large the stage. The staged records must have been committed by
// an earlier transaction: bbolt moves a bucket as last committed, without
// what this transaction wrote into it.
func (t *Tx) CommitStage(version string) error {
	s := t.stage()
	if s == nil {
		return ErrNoStage
	}
	keys, codes := t.StagedCounts()
	for _, name := range replaced {
		if err := t.tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("store: commit stage: %w", err)
		}
		if err := t.tx.MoveBucket(name, s, nil); err != nil {
			return fmt.Errorf("store: commit stage %s: %w", name, err)
		}
		t.forget(name)
	}
	if err := t.DropStage(); err != nil {
		return err
	}
	if err := putU64(t.meta(), metaKeyCount, uint64(keys)); err != nil {
		return err
	}
	if err := putU64(t.meta(), metaCodeCount, uint64(codes)); err != nil {
		return err
	}
	return t.meta().Put(metaSnapshot, []byte(version))
}

// Running is the id of the long command marked running, "" for none.
func (t *Tx) Running() string { return string(t.meta().Get(metaRunning)) }

// SetRunning marks command id as running ("" clears the mark). A command
// found marked after a restart was cut short by it.
func (t *Tx) SetRunning(id string) error {
	if id == "" {
		return t.meta().Delete(metaRunning)
	}
	return t.meta().Put(metaRunning, []byte(id))
}
