package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"smartboxd/contract"
)

// codecCodes are access codes that exercise every field of the encoding.
func codecCodes() []*AccessCode {
	starts := time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.FixedZone("", 2*3600))
	ends := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	return []*AccessCode{
		{ID: "plain", CodeHash: bytes.Repeat([]byte{7}, 32), Name: "Guest", Type: contract.TypeOngoing,
			Status: contract.StatusSet, CreatedAt: t0, KeyID: "k1", Action: contract.ActionPickup},
		{ID: "every-field", CodeHash: bytes.Repeat([]byte{9}, 32), Name: "Gäst «1»", Type: contract.TypeTimeBound,
			Status: contract.StatusSetting, StartsAt: &starts, EndsAt: &ends, CreatedAt: t0.Add(time.Nanosecond),
			KeyID: "a5e1c7d0-2b4f-4c11-9d2e-0f6b3a9c8e71", Action: contract.ActionDropoff, MaxUses: 3, Uses: 2,
			Schedule: json.RawMessage(`{"tz":"Europe/Oslo","mon":[["08:00","17:00"]]}`),
			Errors:   []Notice{{Code: "code.conflict", Message: "taken", CreatedAt: t0}},
			Warnings: []Notice{{Code: "w1", Message: "", CreatedAt: starts}, {Code: "w2", Message: "two", CreatedAt: t0}}},
		{ID: "unknown-enums", CodeHash: []byte{1}, Type: "one_time", Status: "paused", Action: "swap",
			CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), MaxUses: -1},
		{ID: "zero-time", CodeHash: bytes.Repeat([]byte{3}, 32), Status: contract.StatusRemoving},
	}
}

func codecKeys() []*Key {
	return []*Key{
		{ID: "k1", Name: "Front door", CreatedAt: t0, UpdatedAt: t0},
		{ID: "every-field", Name: "Shed", Description: "two keys on a ring", Fob: "A000000001", Notes: "n",
			PickupNote: "ask at the desk", Virtual: true, CodeHash: bytes.Repeat([]byte{5}, 32), AnyLocation: true,
			Bin: 4, CreatedAt: t0, UpdatedAt: t0.Add(90 * time.Minute).In(time.FixedZone("", -5*3600))},
		{ID: "empty"},
	}
}

// sameRecord compares a decoded record with the one written: times by
// instant and offset (a decoded zone has no name), everything else exactly.
func sameRecord(t *testing.T, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("decoded\n%s\nwant\n%s", g, w)
	}
}

func TestRecordCodecRoundTrip(t *testing.T) {
	for _, a := range codecCodes() {
		t.Run("access code "+a.ID, func(t *testing.T) {
			raw := encodeAccessCode(a)
			if raw[0] != formatV1 {
				t.Fatalf("format byte 0x%02x, want 0x%02x", raw[0], formatV1)
			}
			got, err := decodeAccessCode([]byte(a.ID), raw)
			if err != nil {
				t.Fatal(err)
			}
			sameRecord(t, got, a)
			if !got.CreatedAt.Equal(a.CreatedAt) {
				t.Errorf("created_at %v, want %v", got.CreatedAt, a.CreatedAt)
			}
		})
	}
	for _, k := range codecKeys() {
		t.Run("key "+k.ID, func(t *testing.T) {
			got, err := decodeKey([]byte(k.ID), encodeKey(k))
			if err != nil {
				t.Fatal(err)
			}
			sameRecord(t, got, k)
		})
	}
}

// The binary form is what makes a code check cheap, and the file small:
// it must stay well under the JSON it replaces.
func TestRecordCodecSmallerThanJSON(t *testing.T) {
	a := codecCodes()[0]
	raw, _ := json.Marshal(a)
	if bin := encodeAccessCode(a); len(bin)*2 > len(raw) {
		t.Errorf("binary access code %d bytes, JSON %d", len(bin), len(raw))
	}
}

func TestRecordCodecCorrupt(t *testing.T) {
	good := encodeAccessCode(codecCodes()[1])
	cases := map[string][]byte{
		"empty":           {},
		"unknown format":  append([]byte{0x7f}, good[1:]...),
		"truncated":       good[:len(good)-3],
		"left over":       append(bytes.Clone(good), 0),
		"field too long":  {formatV1, 0xff, 0x01},
		"bad enum":        {formatV1, 0, 0, 200},
		"bad json":        []byte(`{"access_code_id":`),
		"overlong varint": {formatV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			if a, err := decodeAccessCode([]byte("x"), v); !errors.Is(err, ErrBadRecord) {
				t.Errorf("access code: got %+v, %v; want ErrBadRecord", a, err)
			}
			if k, err := decodeKey([]byte("x"), v); !errors.Is(err, ErrBadRecord) {
				t.Errorf("key: got %+v, %v; want ErrBadRecord", k, err)
			}
		})
	}
}

// A database written before the binary form keeps its JSON records: they
// read as they did, and each is written anew in the binary form when it
// next changes.
func TestRecordCodecReadsJSONRecords(t *testing.T) {
	db, dir := openTest(t, Options{})
	codes, keys := codecCodes(), codecKeys()
	// The records exactly as the earlier store wrote them, indexes and all.
	err := db.Bolt().Update(func(tx *bolt.Tx) error {
		for _, k := range keys {
			raw, err := json.Marshal(k)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketKeys).Put([]byte(k.ID), raw); err != nil {
				return err
			}
			if k.Fob != "" {
				if err := tx.Bucket(bucketFobs).Put([]byte(k.Fob), []byte(k.ID)); err != nil {
					return err
				}
			}
		}
		for _, a := range codes {
			raw, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketCodes).Put([]byte(a.ID), raw); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCodeIndex).Put(a.CodeHash, owner(OwnerAccessCode, a.ID)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := putU64(meta, metaKeyCount, uint64(len(keys))); err != nil {
			return err
		}
		return putU64(meta, metaCodeCount, uint64(len(codes)))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, dir, Options{})

	readAll := func(t *testing.T) {
		t.Helper()
		view(t, db, func(tx *Tx) error {
			for _, want := range codes {
				got, err := tx.AccessCode(want.ID)
				if err != nil {
					t.Fatalf("access code %s: %v", want.ID, err)
				}
				sameRecord(t, got, want)
			}
			for _, want := range keys {
				got, err := tx.Key(want.ID)
				if err != nil {
					t.Fatalf("key %s: %v", want.ID, err)
				}
				sameRecord(t, got, want)
			}
			var n int
			if err := tx.ForEachAccessCode(func(*AccessCode) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := tx.ForEachKey(func(*Key) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n != len(codes)+len(keys) {
				t.Errorf("ForEach saw %d records, want %d", n, len(codes)+len(keys))
			}
			return nil
		})
	}
	format := func(name []byte, id string) byte {
		var b byte
		if err := db.Bolt().View(func(tx *bolt.Tx) error {
			b = tx.Bucket(name).Get([]byte(id))[0]
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("read", readAll)
	t.Run("rewritten when next written", func(t *testing.T) {
		update(t, db, func(tx *Tx) error {
			a, err := tx.AccessCode("every-field")
			if err != nil {
				return err
			}
			a.Uses++
			codes[1].Uses++
			if err := tx.PutAccessCode(a); err != nil {
				return err
			}
			k, err := tx.Key("every-field")
			if err != nil {
				return err
			}
			return tx.PutKey(k)
		})
		if f := format(bucketCodes, "every-field"); f != formatV1 {
			t.Errorf("access code written as 0x%02x, want 0x%02x", f, formatV1)
		}
		if f := format(bucketKeys, "every-field"); f != formatV1 {
			t.Errorf("key written as 0x%02x, want 0x%02x", f, formatV1)
		}
		if f := format(bucketCodes, "plain"); f != formatJSON {
			t.Errorf("an untouched record is 0x%02x, want it left as JSON", f)
		}
		readAll(t)
		view(t, db, func(tx *Tx) error {
			if o, ok := tx.CodeOwner(codes[1].CodeHash); !ok || o.ID != "every-field" {
				t.Errorf("code index after the rewrite: %+v, %v", o, ok)
			}
			if id := tx.KeyByFob("A000000001"); id != "every-field" {
				t.Errorf("fob index after the rewrite: %q", id)
			}
			return nil
		})
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, a := range codecCodes() {
		f.Add(encodeAccessCode(a))
		raw, _ := json.Marshal(a)
		f.Add(raw)
	}
	for _, k := range codecKeys() {
		f.Add(encodeKey(k))
	}
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, v []byte) {
		if a, err := decodeAccessCode([]byte("id"), v); err == nil {
			if v[0] != formatV1 {
				return
			}
			// What decodes writes back as a record that decodes the same.
			b, err := decodeAccessCode([]byte("id"), encodeAccessCode(a))
			if err != nil || !reflect.DeepEqual(a, b) {
				t.Errorf("access code %x does not round-trip: %+v, %+v, %v", v, a, b, err)
			}
		} else if !errors.Is(err, ErrBadRecord) {
			t.Errorf("access code error %v is not ErrBadRecord", err)
		}
		if k, err := decodeKey([]byte("id"), v); err == nil {
			if v[0] != formatV1 {
				return
			}
			b, err := decodeKey([]byte("id"), encodeKey(k))
			if err != nil || !reflect.DeepEqual(k, b) {
				t.Errorf("key %x does not round-trip: %+v, %+v, %v", v, k, b, err)
			}
		} else if !errors.Is(err, ErrBadRecord) {
			t.Errorf("key error %v is not ErrBadRecord", err)
		}
	})
}

func codecEvents() []contract.Event {
	return []contract.Event{
		{ID: "0123456789abcdef01234567", BoxID: "box-test", Seq: 7, Type: contract.EventKeyPickedUp,
			At: t0.Add(123 * time.Millisecond), Data: json.RawMessage(`{"key_id":"k","bin":2}`)},
		{ID: "not-hex", BoxID: "", Seq: 8, Type: "vendor.thing", At: time.UnixMilli(-1).UTC(), Data: json.RawMessage(`null`)},
	}
}

// Events read back, and publish, exactly as the JSON the outbox once held.
func TestEventCodecRoundTrip(t *testing.T) {
	for _, ev := range codecEvents() {
		t.Run(ev.Type, func(t *testing.T) {
			v := encodeStoredEvent(ev)
			got, err := decodeStoredEvent(ev.Seq, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Errorf("decoded %+v, want %+v", got, ev)
			}
			payload, err := eventJSON(ev.Seq, v)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(ev)
			if !bytes.Equal(payload, want) {
				t.Errorf("payload %s, want %s", payload, want)
			}
			if len(v) >= len(want) {
				t.Errorf("binary %d bytes, JSON %d", len(v), len(want))
			}
		})
	}
}

// An outbox written before the binary form drains as it was, beside new
// events, and its events show in the history.
func TestEventCodecReadsJSONEvents(t *testing.T) {
	db, dir := openTest(t, Options{})
	old := codecEvents()[0]
	err := db.Bolt().Update(func(tx *bolt.Tx) error {
		raw, err := json.Marshal(old)
		if err != nil {
			return err
		}
		ob := tx.Bucket(bucketOutbox)
		if err := ob.SetSequence(old.Seq); err != nil {
			return err
		}
		if err := ob.Put(be64(old.Seq), raw); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistory).Put(be64(old.Seq), raw); err != nil {
			return err
		}
		return putU64(tx.Bucket(bucketMeta), metaOutboxDepth, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, dir, Options{})
	next := appendN(t, db, contract.EventBinUnlocked, 1)[0]
	recs := pending(t, db, 0, 10)
	if got := seqs(recs); !reflect.DeepEqual(got, []uint64{old.Seq, old.Seq + 1}) {
		t.Fatalf("pending seqs %v", got)
	}
	for i, want := range []contract.Event{old, next} {
		if got := decodeEvent(t, recs[i].Payload); !reflect.DeepEqual(got, want) {
			t.Errorf("pending %d: %+v, want %+v", i, got, want)
		}
	}
	if s := stats(t, db); !s.OldestAt.Equal(old.At) || s.Depth != 2 {
		t.Errorf("stats %+v", s)
	}
	recent, err := db.Recent(10)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recent, []contract.Event{old, next}) {
		t.Errorf("recent %+v", recent)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range codecEvents() {
		f.Add(encodeStoredEvent(ev))
		raw, _ := json.Marshal(ev)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		ev, err := decodeStoredEvent(1, v)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Errorf("error %v is not ErrBadRecord", err)
			}
			// JSON is published as it was stored; a binary value is refused.
			if _, jerr := eventJSON(1, v); jerr == nil && v[0] != formatJSON {
				t.Errorf("eventJSON took what decodeStoredEvent refused: %v", err)
			}
			return
		}
		if v[0] != formatV1 {
			return
		}
		again, err := decodeStoredEvent(1, encodeStoredEvent(ev))
		if err != nil || !reflect.DeepEqual(ev, again) {
			t.Errorf("event %x does not round-trip: %+v, %+v, %v", v, ev, again, err)
		}
	})
}
