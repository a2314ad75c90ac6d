package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestStoredReplyFingerprint: a reply keeps the fingerprint and time it was
// stored with, and a reply written in the older bare form still reads.
func TestStoredReplyFingerprint(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	fp := bytes.Repeat([]byte{0xab}, 32)
	update(t, db, func(tx *Tx) error {
		if err := tx.PutStoredReply("new", StoredReply{Reply: []byte(`{"id":"new","ok":true}`), Fingerprint: fp, At: t0}); err != nil {
			return err
		}
		// The form older boxes wrote: the bare reply.
		return tx.replies().Put([]byte("old"), []byte(`{"id":"old","ok":true}`))
	})
	view(t, db, func(tx *Tx) error {
		for _, tc := range []struct {
			id    string
			reply string
			fp    []byte
			at    time.Time
		}{
			{"new", `{"id":"new","ok":true}`, fp, t0},
			{"old", `{"id":"old","ok":true}`, nil, time.Time{}},
		} {
			t.Run(tc.id, func(t *testing.T) {
				r, ok := tx.StoredReply(tc.id)
				if !ok || string(r.Reply) != tc.reply || !bytes.Equal(r.Fingerprint, tc.fp) || !r.At.Equal(tc.at) {
					t.Fatalf("StoredReply(%s) = %q %x %v, %v", tc.id, r.Reply, r.Fingerprint, r.At, ok)
				}
				if got, _ := tx.Reply(tc.id); string(got) != tc.reply {
					t.Fatalf("Reply(%s) = %q", tc.id, got)
				}
			})
		}
		return nil
	})
}

// TestYoungRepliesSurviveVolume: replies younger than a day are not let go
// for volume below ReplyYoungKept, even past a small Options.Replies; once
// older they are, down to the bound.
func TestYoungRepliesSurviveVolume(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true, Replies: 10})
	put := func(id string, at time.Time) {
		t.Helper()
		update(t, db, func(tx *Tx) error { return tx.PutStoredReply(id, StoredReply{Reply: []byte("{}"), At: at}) })
	}
	kept := func() int { return countRecords(t, db, bucketReplies) }
	for i := range 50 {
		put(fmt.Sprintf("young-%d", i), t0.Add(time.Duration(i)*time.Minute))
	}
	if n := kept(); n != 50 {
		t.Fatalf("%d of 50 young replies kept, bound 10", n)
	}
	// A day on, the first ones are old: the volume bound applies to them.
	put("later", t0.Add(ReplyYoungAge+5*time.Minute+30*time.Second))
	// young-0..young-5 are older than a day now: they go; the rest stay.
	if n := kept(); n != 51-6 {
		t.Fatalf("%d replies kept a day later, want %d", n, 51-6)
	}
	view(t, db, func(tx *Tx) error {
		for i, want := range map[int]bool{0: false, 5: false, 6: true, 49: true} {
			if _, ok := tx.Reply(fmt.Sprintf("young-%d", i)); ok != want {
				t.Errorf("young-%d kept %v, want %v", i, ok, want)
			}
		}
		return nil
	})
}

// TestRepliesHardBound: past ReplyYoungKept even young replies go, oldest
// first; at the bound none does.
func TestRepliesHardBound(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 replies")
	}
	db, _ := openTest(t, Options{NoSync: true})
	update(t, db, func(tx *Tx) error {
		for i := range ReplyYoungKept {
			if err := tx.PutStoredReply(fmt.Sprintf("r%06d", i), StoredReply{Reply: []byte("{}"), At: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	first := func() bool {
		var ok bool
		view(t, db, func(tx *Tx) error { _, ok = tx.Reply("r000000"); return nil })
		return ok
	}
	if !first() {
		t.Fatalf("the first of %d young replies was let go", ReplyYoungKept)
	}
	update(t, db, func(tx *Tx) error { return tx.PutStoredReply("one-more", StoredReply{Reply: []byte("{}"), At: t0}) })
	if first() {
		t.Fatalf("reply %d kept: the oldest should go", ReplyYoungKept+1)
	}
	if n := countRecords(t, db, bucketReplies); n != ReplyYoungKept {
		t.Fatalf("%d replies kept, want %d", n, ReplyYoungKept)
	}
}

// TestLockoutOlderRecordLoads: a lockout record written before wrong entries
// carried their times still loads, with its count and level.
func TestLockoutOlderRecordLoads(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	update(t, db, func(tx *Tx) error {
		return tx.meta().Put(metaLockout, []byte(`{"failures":3,"level":2,"until":"2026-03-01T12:01:00Z","remaining":60000000000}`))
	})
	view(t, db, func(tx *Tx) error {
		l, err := tx.Lockout(false)
		if err != nil || l.Failures != 3 || l.Level != 2 || l.Remaining != time.Minute || len(l.Fails) != 0 || !l.Since.IsZero() {
			t.Fatalf("older record: %+v, %v", l, err)
		}
		return nil
	})
}
