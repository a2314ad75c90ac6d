package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"smartboxd/contract"
)

// Append adds an event to the outbox (and the history) and returns it with
// its id and seq. When the outbox is full, events are dropped and an
// outbox.overflow event saying how many goes before this one: the oldest
// noise first (contract.ClassNoise: rejected codes, console commands, reader
// faults), then the oldest ordinary events, and events that report a bin, a
// key, a code or a login (contract.ClassKept) only when nothing else is left.
func (t *Tx) Append(typ string, at time.Time, data any) (contract.Event, error) {
	depth := getU64(t.meta(), metaOutboxDepth)
	if limit := uint64(t.d.opts.MaxEvents); depth+1 > limit {
		// Room for the overflow event and this one, and a batch more so a
		// long outage leaves few overflow notices.
		drop := min(depth, max(depth+2-limit, limit/100))
		dropped, err := t.dropOldest(drop)
		if err != nil {
			return contract.Event{}, err
		}
		if _, err := t.append(contract.EventOutboxOverflow, at, map[string]uint64{"dropped": dropped}); err != nil {
			return contract.Event{}, err
		}
	}
	return t.append(typ, at, data)
}

func (t *Tx) append(typ string, at time.Time, data any) (contract.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return contract.Event{}, fmt.Errorf("store: encode %s event: %w", typ, err)
	}
	seq, err := t.outbox().NextSequence()
	if err != nil {
		return contract.Event{}, fmt.Errorf("store: outbox sequence: %w", err)
	}
	if err := t.d.raiseSeqFloor(seq); err != nil {
		return contract.Event{}, err
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return contract.Event{}, fmt.Errorf("store: event id: %w", err)
	}
	ev := contract.Event{ID: hex.EncodeToString(id[:]), BoxID: t.d.opts.BoxID, Seq: seq, Type: typ, At: at.UTC().Truncate(time.Millisecond), Data: raw}
	// One encoding, the binary one, written to the outbox and the history.
	payload := encodeStoredEvent(ev)
	if err := t.outbox().Put(be64(seq), payload); err != nil {
		return contract.Event{}, fmt.Errorf("store: append event: %w", err)
	}
	if class := contract.ClassOf(typ); class != contract.ClassKept {
		if err := t.outboxIdx().Put(idxKey(class, seq), nil); err != nil {
			return contract.Event{}, fmt.Errorf("store: index event: %w", err)
		}
	}
	if err := addU64(t.meta(), metaOutboxDepth, 1); err != nil {
		return contract.Event{}, err
	}
	if err := t.history().Put(be64(seq), payload); err != nil {
		return contract.Event{}, fmt.Errorf("store: history: %w", err)
	}
	c := t.history().Cursor()
	for k, _ := c.First(); k != nil && seq-binary.BigEndian.Uint64(k) >= uint64(t.d.opts.History); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return contract.Event{}, fmt.Errorf("store: trim history: %w", err)
		}
	}
	return ev, nil
}

// idxKey is the outbox index key of event seq of class.
func idxKey(class contract.EventClass, seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = byte(class)
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// unindex drops event seq's outbox index entries, of whatever class.
func (t *Tx) unindex(seq uint64) error {
	for _, class := range []contract.EventClass{contract.ClassNoise, contract.ClassOrdinary} {
		if err := t.outboxIdx().Delete(idxKey(class, seq)); err != nil {
			return fmt.Errorf("store: unindex event: %w", err)
		}
	}
	return nil
}

// dropOldest lets n events go: the oldest noise, then the oldest ordinary
// events, then the oldest of the rest.
func (t *Tx) dropOldest(n uint64) (uint64, error) {
	var dropped uint64
	for _, class := range []contract.EventClass{contract.ClassNoise, contract.ClassOrdinary} {
		c := t.outboxIdx().Cursor()
		for k, _ := c.Seek([]byte{byte(class)}); k != nil && k[0] == byte(class) && dropped < n; k, _ = c.Seek([]byte{byte(class)}) {
			seq := k[1:]
			if err := c.Delete(); err != nil {
				return dropped, fmt.Errorf("store: drop events: %w", err)
			}
			if t.outbox().Get(seq) == nil {
				continue // gone already
			}
			if err := t.outbox().Delete(seq); err != nil {
				return dropped, fmt.Errorf("store: drop events: %w", err)
			}
			dropped++
		}
	}
	c := t.outbox().Cursor()
	for k, _ := c.First(); k != nil && dropped < n; k, _ = c.First() {
		seq := binary.BigEndian.Uint64(k)
		if err := c.Delete(); err != nil {
			return dropped, fmt.Errorf("store: drop events: %w", err)
		}
		if err := t.unindex(seq); err != nil { // noise written before the index, say
			return dropped, err
		}
		dropped++
	}
	return dropped, addU64(t.meta(), metaOutboxDepth, -int64(dropped))
}

// Record is an outbox entry ready to publish.
type Record struct {
	Seq     uint64
	Payload []byte // the event's JSON
}

// Pending returns up to max unacked events with seq > after, in seq order.
func (d *DB) Pending(after uint64, max int) ([]Record, error) {
	var out []Record
	err := d.View(func(t *Tx) error {
		c := t.outbox().Cursor()
		for k, v := c.Seek(be64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			payload, err := eventJSON(seq, v)
			if err != nil {
				payload = d.unreadableEvent(seq, v, err)
			}
			out = append(out, Record{Seq: seq, Payload: payload})
		}
		return nil
	})
	return out, err
}

// Ack removes every event with seq <= upto and returns how many went.
func (d *DB) Ack(upto uint64) (int, error) {
	n := 0
	err := d.Update(func(t *Tx) error {
		n = 0
		upto := min(upto, t.outbox().Sequence()) // never ahead of what exists
		c := t.outbox().Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upto; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("store: ack: %w", err)
			}
			n++
		}
		for _, class := range []contract.EventClass{contract.ClassNoise, contract.ClassOrdinary} {
			ic := t.outboxIdx().Cursor()
			for k, _ := ic.Seek([]byte{byte(class)}); k != nil && k[0] == byte(class) && binary.BigEndian.Uint64(k[1:]) <= upto; k, _ = ic.Seek([]byte{byte(class)}) {
				if err := ic.Delete(); err != nil {
					return fmt.Errorf("store: ack: %w", err)
				}
			}
		}
		if upto > getU64(t.meta(), metaAcked) {
			if err := putU64(t.meta(), metaAcked, upto); err != nil {
				return err
			}
		}
		return addU64(t.meta(), metaOutboxDepth, -int64(n))
	})
	return n, err
}

// AckSeqs removes the events with the given seqs (acked one by one, as a
// broker's PUBACKs come).
func (d *DB) AckSeqs(seqs []uint64) error {
	return d.Update(func(t *Tx) error {
		n := 0
		for _, s := range seqs {
			if t.outbox().Get(be64(s)) == nil {
				continue
			}
			if err := t.outbox().Delete(be64(s)); err != nil {
				return fmt.Errorf("store: ack: %w", err)
			}
			if err := t.unindex(s); err != nil {
				return err
			}
			n++
			if s > getU64(t.meta(), metaAcked) {
				if err := putU64(t.meta(), metaAcked, s); err != nil {
					return err
				}
			}
		}
		return addU64(t.meta(), metaOutboxDepth, -int64(n))
	})
}

// OutboxStats describes the outbox.
type OutboxStats struct {
	Depth    int       // events not yet acked
	OldestAt time.Time // when the oldest of them happened (zero if none)
	LastSeq  uint64    // the seq of the newest event ever written
	Acked    uint64    // the highest seq acked
}

// OutboxStats reads the outbox's figures.
func (t *Tx) OutboxStats() OutboxStats {
	s := OutboxStats{
		Depth:   int(getU64(t.meta(), metaOutboxDepth)),
		LastSeq: t.outbox().Sequence(),
		Acked:   getU64(t.meta(), metaAcked),
	}
	if k, v := t.outbox().Cursor().First(); v != nil {
		if ev, err := decodeStoredEvent(binary.BigEndian.Uint64(k), v); err == nil {
			s.OldestAt = ev.At
		}
	}
	return s
}

// OutboxStats reads the outbox's figures in a transaction of its own.
func (d *DB) OutboxStats() (OutboxStats, error) {
	var s OutboxStats
	err := d.View(func(t *Tx) error { s = t.OutboxStats(); return nil })
	return s, err
}

// Recent returns the last n events written (acked or not), oldest first.
func (d *DB) Recent(n int) ([]contract.Event, error) {
	var out []contract.Event
	err := d.View(func(t *Tx) error {
		c := t.history().Cursor()
		var keys, raws [][]byte
		for k, v := c.Last(); k != nil && len(raws) < n; k, v = c.Prev() {
			keys, raws = append(keys, k), append(raws, v)
		}
		for i := len(raws) - 1; i >= 0; i-- {
			seq := binary.BigEndian.Uint64(keys[i])
			ev, err := decodeStoredEvent(seq, raws[i])
			if err != nil {
				ev = t.d.unreadable(seq, raws[i], err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// encode is the event's JSON, as json.Marshal would write it, built
// directly: the data is encoded once, not re-scanned as a RawMessage.
func encodeEvent(ev contract.Event) []byte {
	b := make([]byte, 0, 112+len(ev.BoxID)+len(ev.Type)+len(ev.Data))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"box_id":`...)
	b = appendJSONString(b, ev.BoxID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type)
	b = append(b, `,"at":"`...)
	b = ev.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	if len(ev.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, ev.Data...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // the rare path: escapes exactly as encoding/json
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// unreadable is the event that stands in for the outbox or history record
// v under seq that cannot be read: outbox.unreadable, with an id derived
// from the record so that every publication of it carries the same one.
func (d *DB) unreadable(seq uint64, v []byte, err error) contract.Event {
	sum := sha256.Sum256(append(be64(seq), v...))
	data, _ := json.Marshal(map[string]any{"bytes": len(v), "error": err.Error()})
	return contract.Event{
		ID: hex.EncodeToString(sum[:12]), BoxID: d.opts.BoxID, Seq: seq,
		Type: contract.EventOutboxUnreadable, At: time.Unix(0, 0).UTC(), Data: data,
	}
}

// unreadableEvent is unreadable's JSON, published in the record's place.
func (d *DB) unreadableEvent(seq uint64, v []byte, err error) []byte {
	return encodeEvent(d.unreadable(seq, v, err))
}
