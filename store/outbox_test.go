package store

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"smartboxd/contract"
)

func TestAppendEvent(t *testing.T) {
	db, _ := openTest(t, Options{BoxID: "box-0042"})
	at := time.Date(2026, 3, 1, 13, 14, 15, 123456789, time.FixedZone("CET", 3600))
	var ev contract.Event
	update(t, db, func(tx *Tx) error {
		var err error
		ev, err = tx.Append("bin.unlocked", at, map[string]any{"bin": 3, "reason": "remote"})
		return err
	})

	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(ev.ID) {
		t.Errorf("id = %q, want 24 hex digits", ev.ID)
	}
	if ev.BoxID != "box-0042" || ev.Seq != 1 || ev.Type != "bin.unlocked" {
		t.Errorf("event = %+v", ev)
	}
	if want := time.Date(2026, 3, 1, 12, 14, 15, 123000000, time.UTC); !ev.At.Equal(want) || ev.At.Location() != time.UTC {
		t.Errorf("at = %v, want %v in UTC", ev.At, want)
	}
	if string(ev.Data) != `{"bin":3,"reason":"remote"}` {
		t.Errorf("data = %s", ev.Data)
	}

	// The stored record is the event as returned.
	recs := pending(t, db, 0, 10)
	if len(recs) != 1 {
		t.Fatalf("pending has %d records, want 1", len(recs))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(recs[0].Payload, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "box_id", "seq", "type", "at", "data"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("payload %s lacks %q", recs[0].Payload, k)
		}
	}
	if string(raw["at"]) != `"2026-03-01T12:14:15.123Z"` {
		t.Errorf("payload at = %s", raw["at"])
	}
	got := decodeEvent(t, recs[0].Payload)
	if got.ID != ev.ID || got.Seq != ev.Seq || !got.At.Equal(ev.At) || string(got.Data) != string(ev.Data) {
		t.Errorf("stored %+v, returned %+v", got, ev)
	}
}

func TestAppendUnencodableData(t *testing.T) {
	db, _ := openTest(t, Options{})
	err := db.Update(func(tx *Tx) error {
		_, err := tx.Append("bad", t0, map[string]any{"f": func() {}})
		return err
	})
	if err == nil {
		t.Fatal("Append of unencodable data succeeded")
	}
	if s := stats(t, db); s.LastSeq != 0 || s.Depth != 0 {
		t.Errorf("stats after failed append = %+v", s)
	}
}

func TestSeqsGapless(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir, Options{})
	var got []uint64
	record := func(ev contract.Event, err error) error {
		got = append(got, ev.Seq)
		return err
	}

	// Several appends in one transaction, then one per transaction.
	update(t, db, func(tx *Tx) error {
		for range 3 {
			if err := record(tx.Append("a", t0, nil)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, ev := range appendN(t, db, "b", 2) {
		got = append(got, ev.Seq)
	}
	if want := seqRange(1, 5); !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}

	// Acking everything does not free seqs for reuse.
	if n, err := db.Ack(5); err != nil || n != 5 {
		t.Fatalf("Ack(5) = %d, %v", n, err)
	}
	got = got[:0]
	for _, ev := range appendN(t, db, "c", 2) {
		got = append(got, ev.Seq)
	}
	if err := db.AckSeqs([]uint64{6, 7}); err != nil {
		t.Fatal(err)
	}

	// Nor does a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, dir, Options{})
	if s := stats(t, db); s.LastSeq != 7 || s.Depth != 0 || s.Acked != 7 {
		t.Errorf("stats after reopen = %+v, want last 7, depth 0, acked 7", s)
	}
	for _, ev := range appendN(t, db, "d", 2) {
		got = append(got, ev.Seq)
	}
	if want := seqRange(6, 9); !slices.Equal(got, want) {
		t.Errorf("seqs after acks and reopen %v, want %v", got, want)
	}
}

func TestRolledBackAppend(t *testing.T) {
	db, _ := openTest(t, Options{})
	appendN(t, db, "before", 2)

	errBoom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if _, err := tx.Append("lost", t0, nil); err != nil {
			return err
		}
		if _, err := tx.Append("lost", t0, nil); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}

	if s := stats(t, db); s.LastSeq != 2 || s.Depth != 2 {
		t.Errorf("stats after rollback = %+v, want last 2, depth 2", s)
	}
	recent, err := db.Recent(10)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range recent {
		if ev.Type == "lost" {
			t.Errorf("rolled-back event %d in history", ev.Seq)
		}
	}
	if evs := appendN(t, db, "after", 1); evs[0].Seq != 3 {
		t.Errorf("next seq after rollback = %d, want 3", evs[0].Seq)
	}
	if got := seqs(pending(t, db, 0, 10)); !slices.Equal(got, seqRange(1, 3)) {
		t.Errorf("pending %v, want 1..3", got)
	}
}

func TestPending(t *testing.T) {
	db, _ := openTest(t, Options{})
	evs := appendN(t, db, "e", 10)

	for _, tc := range []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{"all", 0, 100, seqRange(1, 10)},
		{"first three", 0, 3, seqRange(1, 3)},
		{"window", 3, 4, seqRange(4, 7)},
		{"tail shorter than max", 8, 10, seqRange(9, 10)},
		{"after the last", 10, 5, nil},
		{"far after the last", 1000, 5, nil},
		{"max zero", 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := pending(t, db, tc.after, tc.max)
			if got := seqs(recs); !slices.Equal(got, tc.want) {
				t.Fatalf("Pending(%d, %d) = %v, want %v", tc.after, tc.max, got, tc.want)
			}
			for _, r := range recs {
				ev := decodeEvent(t, r.Payload)
				if ev.Seq != r.Seq || ev.ID != evs[r.Seq-1].ID {
					t.Errorf("record %d holds event %+v, appended as %+v", r.Seq, ev, evs[r.Seq-1])
				}
			}
		})
	}

	// Acked events are no longer pending; the window still starts after.
	if _, err := db.Ack(4); err != nil {
		t.Fatal(err)
	}
	if got := seqs(pending(t, db, 0, 100)); !slices.Equal(got, seqRange(5, 10)) {
		t.Errorf("pending after Ack(4) = %v", got)
	}
	if got := seqs(pending(t, db, 2, 2)); !slices.Equal(got, []uint64{5, 6}) {
		t.Errorf("Pending(2, 2) after Ack(4) = %v, want [5 6]", got)
	}
}

func TestAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		acks      []uint64 // successive Ack calls
		wantN     []int
		wantLeft  []uint64
		wantAcked int64 // -1: at least the last seq
	}{
		{"none", []uint64{0}, []int{0}, seqRange(1, 6), 0},
		{"prefix", []uint64{3}, []int{3}, seqRange(4, 6), 3},
		{"all", []uint64{6}, []int{6}, nil, 6},
		{"beyond the last", []uint64{100}, []int{6}, nil, -1},
		{"twice", []uint64{2, 2}, []int{2, 0}, seqRange(3, 6), 2},
		{"stepwise", []uint64{1, 4, 5}, []int{1, 3, 1}, []uint64{6}, 5},
		{"going back", []uint64{4, 2}, []int{4, 0}, seqRange(5, 6), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t, Options{NoSync: true})
			appendN(t, db, "e", 6)
			for i, upto := range tc.acks {
				n, err := db.Ack(upto)
				if err != nil {
					t.Fatalf("Ack(%d): %v", upto, err)
				}
				if n != tc.wantN[i] {
					t.Errorf("Ack(%d) removed %d, want %d", upto, n, tc.wantN[i])
				}
			}
			if got := seqs(pending(t, db, 0, 100)); !slices.Equal(got, tc.wantLeft) {
				t.Errorf("left %v, want %v", got, tc.wantLeft)
			}
			s := stats(t, db)
			if s.Depth != len(tc.wantLeft) || s.Depth != countRecords(t, db, bucketOutbox) {
				t.Errorf("depth %d, want %d (records %d)", s.Depth, len(tc.wantLeft), countRecords(t, db, bucketOutbox))
			}
			if s.LastSeq != 6 {
				t.Errorf("last seq %d, want 6", s.LastSeq)
			}
			if tc.wantAcked >= 0 && s.Acked != uint64(tc.wantAcked) || tc.wantAcked < 0 && s.Acked < s.LastSeq {
				t.Errorf("acked %d, want %d", s.Acked, tc.wantAcked)
			}
		})
	}
}

func TestAckSeqs(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	appendN(t, db, "e", 10)

	steps := []struct {
		seqs      []uint64
		wantLeft  []uint64
		wantAcked uint64
	}{
		{[]uint64{5, 2, 9}, []uint64{1, 3, 4, 6, 7, 8, 10}, 9},
		{[]uint64{2, 5, 42}, []uint64{1, 3, 4, 6, 7, 8, 10}, 9}, // gone or unknown: no effect
		{[]uint64{3, 3, 1}, []uint64{4, 6, 7, 8, 10}, 9},
		{nil, []uint64{4, 6, 7, 8, 10}, 9},
		{[]uint64{10, 8, 7, 6, 4}, nil, 10},
	}
	for i, st := range steps {
		if err := db.AckSeqs(st.seqs); err != nil {
			t.Fatalf("step %d: AckSeqs(%v): %v", i, st.seqs, err)
		}
		if got := seqs(pending(t, db, 0, 100)); !slices.Equal(got, st.wantLeft) {
			t.Errorf("step %d: left %v, want %v", i, got, st.wantLeft)
		}
		s := stats(t, db)
		if s.Depth != len(st.wantLeft) {
			t.Errorf("step %d: depth %d, want %d", i, s.Depth, len(st.wantLeft))
		}
		if s.Acked != st.wantAcked {
			t.Errorf("step %d: acked %d, want %d", i, s.Acked, st.wantAcked)
		}
	}
}

func TestOutboxStats(t *testing.T) {
	db, _ := openTest(t, Options{NoSync: true})
	if s := stats(t, db); s != (OutboxStats{}) {
		t.Errorf("empty outbox stats = %+v", s)
	}

	evs := appendN(t, db, "e", 5) // at t0, t0+1s, ...
	s := stats(t, db)
	if s.Depth != 5 || s.LastSeq != 5 || s.Acked != 0 || !s.OldestAt.Equal(evs[0].At) {
		t.Errorf("stats = %+v, want depth 5, last 5, acked 0, oldest %v", s, evs[0].At)
	}

	if _, err := db.Ack(2); err != nil {
		t.Fatal(err)
	}
	s = stats(t, db)
	if s.Depth != 3 || s.LastSeq != 5 || s.Acked != 2 || !s.OldestAt.Equal(evs[2].At) {
		t.Errorf("stats after Ack(2) = %+v, want depth 3, last 5, acked 2, oldest %v", s, evs[2].At)
	}

	// The in-transaction form reads the same figures.
	view(t, db, func(tx *Tx) error {
		if got := tx.OutboxStats(); got != s {
			t.Errorf("Tx.OutboxStats = %+v, DB.OutboxStats = %+v", got, s)
		}
		return nil
	})

	if _, err := db.Ack(5); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, db); s.Depth != 0 || !s.OldestAt.IsZero() || s.LastSeq != 5 || s.Acked != 5 {
		t.Errorf("stats after acking all = %+v", s)
	}
}

func TestOverflow(t *testing.T) {
	const max, appends = 10, 15
	db, _ := openTest(t, Options{MaxEvents: max, NoSync: true})

	var caused []contract.Event // events whose append overflowed the outbox
	for i := range appends {
		ev := appendN(t, db, "e", 1)[0]
		s := stats(t, db)
		if s.Depth > max {
			t.Fatalf("append %d: depth %d > %d", i+1, s.Depth, max)
		}
		if s.Depth != countRecords(t, db, bucketOutbox) {
			t.Fatalf("append %d: depth %d, records %d", i+1, s.Depth, countRecords(t, db, bucketOutbox))
		}
		if i >= max {
			caused = append(caused, ev)
		}
	}

	s := stats(t, db)
	history, err := db.Recent(1000)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(history)) != s.LastSeq {
		t.Fatalf("history has %d events, last seq %d", len(history), s.LastSeq)
	}
	var dropped uint64
	overflows := 0
	for _, ev := range history {
		if ev.Type != contract.EventOutboxOverflow {
			continue
		}
		overflows++
		var data struct {
			Dropped uint64 `json:"dropped"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("overflow data %s: %v", ev.Data, err)
		}
		if data.Dropped == 0 {
			t.Errorf("overflow event %d drops nothing", ev.Seq)
		}
		dropped += data.Dropped
	}
	if overflows == 0 {
		t.Fatal("no outbox.overflow event")
	}
	if want := s.LastSeq - uint64(s.Depth); dropped != want {
		t.Errorf("overflow events say %d dropped, %d were", dropped, want)
	}

	// The oldest went; the newest are all there, in order.
	if got, want := seqs(pending(t, db, 0, 100)), seqRange(s.LastSeq-uint64(s.Depth)+1, s.LastSeq); !slices.Equal(got, want) {
		t.Errorf("pending %v, want %v", got, want)
	}
	// Each overflow is reported just before the event that caused it.
	for _, ev := range caused {
		prev := history[ev.Seq-2]
		if prev.Type != contract.EventOutboxOverflow || prev.Seq != ev.Seq-1 {
			t.Errorf("event %d overflowed the outbox but is preceded by %s %d", ev.Seq, prev.Type, prev.Seq)
		}
	}
	for _, ev := range history[:max] {
		if ev.Type == contract.EventOutboxOverflow {
			t.Errorf("overflow event %d before the outbox was full", ev.Seq)
		}
	}
}

func TestRecent(t *testing.T) {
	db, _ := openTest(t, Options{History: 5, NoSync: true})
	if evs, err := db.Recent(3); err != nil || len(evs) != 0 {
		t.Fatalf("Recent on empty = %v, %v", evs, err)
	}
	appended := appendN(t, db, "e", 8)
	if _, err := db.Ack(8); err != nil { // acked events stay in the history
		t.Fatal(err)
	}

	for _, tc := range []struct {
		n    int
		want []uint64
	}{
		{0, nil},
		{1, []uint64{8}},
		{3, seqRange(6, 8)},
		{5, seqRange(4, 8)},
		{100, seqRange(4, 8)}, // trimmed to Options.History
	} {
		evs, err := db.Recent(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, ev := range evs {
			got = append(got, ev.Seq)
			if want := appended[ev.Seq-1]; ev.ID != want.ID || ev.Type != want.Type || !ev.At.Equal(want.At) {
				t.Errorf("Recent event %+v, appended %+v", ev, want)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Recent(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if n := countRecords(t, db, bucketHistory); n != 5 {
		t.Errorf("history bucket holds %d records, want 5", n)
	}
}

// TestEventEncodingMatchesJSON: the outbox writes events as encoding/json
// would, for every kind of string the fields can hold.
func TestEventEncodingMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123_000_000, time.UTC)
	for _, ev := range []contract.Event{
		{ID: "a1", BoxID: "box-1", Seq: 1, Type: "bin.unlocked", At: at, Data: json.RawMessage(`{"bin":1}`)},
		{ID: "x", BoxID: `we"ird\box<&>`, Seq: 1 << 40, Type: "t\n", At: at.Truncate(time.Second), Data: json.RawMessage(`{"s":"ü"}`)},
		{ID: "", BoxID: "", Seq: 0, Type: "é", At: time.Time{}, Data: json.RawMessage(`[]`)},
		{ID: "n", BoxID: "b", Seq: 2, Type: "x", At: at, Data: nil},
	} {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeEvent(ev); string(got) != string(want) {
			t.Errorf("encode:\n got %s\nwant %s", got, want)
		}
	}
}

// TestPendingUnreadableRecord: a record of the outbox that cannot be read
// (a corrupt card) does not stop the drain: in its place, under its seq,
// comes an outbox.unreadable event with the same id each time, and the
// records after it come as they were.
func TestPendingUnreadableRecord(t *testing.T) {
	db, _ := openTest(t, Options{})
	evs := appendN(t, db, "e", 3)
	garbage := []byte{0x01, 0xff, 0xff, 0xff}
	if err := db.Update(func(tx *Tx) error { return tx.outbox().Put(be64(2), garbage) }); err != nil {
		t.Fatal(err)
	}
	first := pending(t, db, 0, 10)
	if got := seqs(first); !slices.Equal(got, seqRange(1, 3)) {
		t.Fatalf("Pending = %v, want 1..3", got)
	}
	for _, r := range []Record{first[0], first[2]} {
		if ev := decodeEvent(t, r.Payload); ev.ID != evs[r.Seq-1].ID {
			t.Errorf("record %d holds %+v, appended as %+v", r.Seq, ev, evs[r.Seq-1])
		}
	}
	stand := decodeEvent(t, first[1].Payload)
	var data struct {
		Bytes int    `json:"bytes"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(stand.Data, &data); err != nil {
		t.Fatal(err)
	}
	if stand.Type != contract.EventOutboxUnreadable || stand.Seq != 2 || stand.BoxID != "box-test" || data.Bytes != len(garbage) || data.Error == "" {
		t.Fatalf("in place of the unreadable record: %s", first[1].Payload)
	}
	if stand.ID == evs[1].ID || len(stand.ID) != len(evs[1].ID) {
		t.Errorf("the stand-in's id %q: want one of the same form as %q, not the same", stand.ID, evs[1].ID)
	}
	if again := pending(t, db, 1, 1); string(again[0].Payload) != string(first[1].Payload) {
		t.Errorf("published again it changed: %s, then %s", first[1].Payload, again[0].Payload)
	}
	// The cloud's ack takes it away like any other.
	if n, err := db.Ack(3); err != nil || n != 3 {
		t.Fatalf("Ack(3) = %d, %v", n, err)
	}
	// The history (the console's recent events) reads past it the same way.
	if err := db.Update(func(tx *Tx) error { return tx.history().Put(be64(2), garbage) }); err != nil {
		t.Fatal(err)
	}
	recent, err := db.Recent(10)
	if err != nil || len(recent) != 3 || recent[1].Type != contract.EventOutboxUnreadable || recent[1].ID != stand.ID || recent[2].ID != evs[2].ID {
		t.Fatalf("Recent = %+v, %v", recent, err)
	}
}
