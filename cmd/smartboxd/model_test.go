package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// model replays a box's events, in seq order, into the bins, keys, fob
// links and access codes they imply. The crash test holds the daemon's
// reported state against it: whatever the daemon says it holds must be what
// it told the cloud, event by event.
//
// The rules follow the contract and the README: a drop-off checks a key in
// (clearing the bin it was recorded in before), a pickup empties the bin, an
// inventory mismatch makes the bin follow what the reader saw (checking in
// the key that owns a seen fob), an unknown fob sits in its bin with no key.
// Events carry no fob serial given by key.upsert; serials holds those the
// test gave when it created each key.
type model struct {
	bins    map[int]modelBin
	keys    map[string]int    // key id -> bin it is checked in at (0: not here)
	fobs    map[string]string // fob serial -> owning key id
	codes   map[string]bool   // access codes present
	serials map[string]string // key id -> the serial its creating upsert gave it
	maxUses map[string]int    // access code id -> its max_uses (absent: no limit)
	uses    map[string]int    // access code id -> bins it opened
}

// modelBin is the durable part of a bin: the key checked in and the fob seen.
type modelBin struct {
	KeyID string
	Fob   string
}

func newModel(binIDs []int, serials map[string]string) *model {
	m := &model{bins: map[int]modelBin{}, keys: map[string]int{}, fobs: map[string]string{},
		codes: map[string]bool{}, serials: serials, maxUses: map[string]int{}, uses: map[string]int{}}
	for _, id := range binIDs {
		m.bins[id] = modelBin{}
	}
	return m
}

func dataString(e event, field string) string {
	s, _ := e.Data[field].(string)
	return s
}

func dataInt(e event, field string) int {
	f, _ := e.Data[field].(float64)
	return int(f)
}

// apply replays one event. It fails on an event the model cannot follow.
func (m *model) apply(e event) error {
	bin := dataInt(e, "bin")
	if _, ok := e.Data["bin"]; ok {
		if _, known := m.bins[bin]; !known {
			return fmt.Errorf("seq %d %s: no bin %d", e.Seq, e.Type, bin)
		}
	}
	switch e.Type {
	case "key.updated":
		id := dataString(e, "key_id")
		if e.Data["created"] == true {
			m.keys[id] = 0
			if s := m.serials[id]; s != "" {
				m.link(id, s)
			}
		}
	case "key.retired":
		id := dataString(e, "key_id")
		m.link(id, "")
		delete(m.keys, id)
	case "key.unlinked":
		delete(m.fobs, dataString(e, "fob"))
	case "fob.linked":
		m.link(dataString(e, "key_id"), dataString(e, "fob"))
	case "key.dropped_off":
		id := dataString(e, "key_id")
		if _, ok := m.keys[id]; !ok {
			return fmt.Errorf("seq %d: key.dropped_off of unknown key %q", e.Seq, id)
		}
		m.moveKey(id, bin, dataString(e, "fob"))
	case "key.picked_up":
		id := dataString(e, "key_id")
		if at, ok := m.keys[id]; ok && at == bin {
			m.keys[id] = 0
		}
		m.bins[bin] = modelBin{}
	case "fob.removed":
		m.bins[bin] = modelBin{}
	case "fob.unknown":
		m.bins[bin] = modelBin{Fob: dataString(e, "fob")}
	case "inventory.mismatch":
		seen := dataString(e, "seen")
		if seen != "" {
			if owner := m.fobs[seen]; owner != "" {
				if _, ok := m.keys[owner]; ok {
					m.moveKey(owner, bin, seen)
					return nil
				}
			}
		}
		if id := m.bins[bin].KeyID; id != "" {
			if at, ok := m.keys[id]; ok && at == bin {
				m.keys[id] = 0
			}
		}
		m.bins[bin] = modelBin{Fob: seen}
	case "bin.unlocked":
		// A code with a use limit is removed in the transaction of the
		// entry that used it up: it can never open a bin after that.
		id := dataString(e, "access_code_id")
		if id == "" {
			return nil
		}
		if !m.codes[id] {
			return fmt.Errorf("seq %d: bin %d opened by access code %q, which the box had removed", e.Seq, bin, id)
		}
		m.uses[id]++
		if n := m.maxUses[id]; n > 0 && m.uses[id] > n {
			return fmt.Errorf("seq %d: access code %q opened a bin %d times, max_uses %d", e.Seq, id, m.uses[id], n)
		}
	case "access_code.status":
		id := dataString(e, "access_code_id")
		if dataString(e, "status") == "removed" {
			delete(m.codes, id)
			delete(m.maxUses, id)
			delete(m.uses, id)
		} else {
			m.codes[id] = true
			m.maxUses[id] = dataInt(e, "max_uses")
			m.uses[id] = dataInt(e, "uses")
		}
	case "sync.snapshot_applied":
		return fmt.Errorf("seq %d: the model does not follow snapshots", e.Seq)
	}
	return nil
}

// link gives fob serial to key id ("" takes its fob away), as the fob index
// does: a key has one fob.
func (m *model) link(id, serial string) {
	for f, owner := range m.fobs {
		if owner == id {
			delete(m.fobs, f)
		}
	}
	if serial != "" {
		m.fobs[serial] = id
	}
}

// moveKey checks key id in at bin with fob serial.
func (m *model) moveKey(id string, bin int, serial string) {
	if old := m.keys[id]; old != 0 && old != bin && m.bins[old].KeyID == id {
		m.bins[old] = modelBin{}
	}
	if prev := m.bins[bin].KeyID; prev != "" && prev != id {
		if at, ok := m.keys[prev]; ok && at == bin {
			m.keys[prev] = 0
		}
	}
	m.keys[id] = bin
	m.bins[bin] = modelBin{KeyID: id, Fob: serial}
}

// stateDoc is the part of the state document the tests read.
type stateDoc struct {
	Version     uint64 `json:"version"`
	Bins        []binDoc
	Keys        int `json:"keys"`
	AccessCodes int `json:"access_codes"`
	Outbox      struct {
		Depth int `json:"depth"`
	} `json:"outbox"`
	Store struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"store"`
}

type binDoc struct {
	ID    int     `json:"id"`
	State string  `json:"state"`
	KeyID *string `json:"key_id"`
	Fob   *string `json:"fob"`
	Lock  string  `json:"lock"`
	Door  string  `json:"door"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// diff lists how the reported state differs from the model; empty when they
// agree.
func (m *model) diff(s stateDoc) []string {
	var out []string
	seen := map[int]bool{}
	for _, b := range s.Bins {
		seen[b.ID] = true
		want, ok := m.bins[b.ID]
		if !ok {
			out = append(out, fmt.Sprintf("bin %d reported, not modelled", b.ID))
			continue
		}
		got := modelBin{KeyID: deref(b.KeyID), Fob: deref(b.Fob)}
		if got != want {
			out = append(out, fmt.Sprintf("bin %d holds %+v, events say %+v", b.ID, got, want))
		}
		empty := got == modelBin{}
		if b.State != "open" && (b.State == "empty") != empty {
			out = append(out, fmt.Sprintf("bin %d is %q holding %+v", b.ID, b.State, got))
		}
	}
	for id := range m.bins {
		if !seen[id] {
			out = append(out, fmt.Sprintf("bin %d missing from the state", id))
		}
	}
	if s.Keys != len(m.keys) {
		out = append(out, fmt.Sprintf("%d keys reported, events say %d", s.Keys, len(m.keys)))
	}
	for id, n := range m.maxUses {
		if n > 0 && m.uses[id] >= n {
			out = append(out, fmt.Sprintf("access code %s used %d times of %d, yet not removed", id, m.uses[id], n))
		}
	}
	if s.AccessCodes != len(m.codes) {
		out = append(out, fmt.Sprintf("%d access codes reported, events say %d", s.AccessCodes, len(m.codes)))
	}
	slices.Sort(out)
	return out
}

// TestModelReplay keeps the replay model honest on a hand-written history.
func TestModelReplay(t *testing.T) {
	ev := func(seq uint64, typ string, data map[string]any) event {
		return event{Seq: seq, Type: typ, Data: data}
	}
	bins := func(b1, b2 modelBin) []binDoc {
		doc := func(id int, b modelBin) binDoc {
			d := binDoc{ID: id, State: "empty", Lock: "locked"}
			if b != (modelBin{}) {
				d.State = "occupied"
			}
			if b.KeyID != "" {
				d.KeyID = &b.KeyID
			}
			if b.Fob != "" {
				d.Fob = &b.Fob
			}
			return d
		}
		return []binDoc{doc(1, b1), doc(2, b2)}
	}
	history := []event{
		ev(1, "device.started", map[string]any{}),
		ev(2, "key.updated", map[string]any{"key_id": "a", "created": true}),
		ev(3, "key.updated", map[string]any{"key_id": "b", "created": true}),
		ev(4, "bin.unlocked", map[string]any{"bin": 1.0, "reason": "dropoff"}),
		ev(5, "fob.linked", map[string]any{"key_id": "b", "fob": "00000000BB"}),
		ev(6, "key.dropped_off", map[string]any{"key_id": "b", "bin": 1.0, "fob": "00000000BB"}),
		// Key a's fob (from its upsert) turns up in bin 2: the state follows.
		ev(7, "inventory.mismatch", map[string]any{"bin": 2.0, "expected": nil, "seen": "00000000AA"}),
		// Key b's fob moves to bin 2 unseen: b is checked in there, a goes.
		ev(8, "inventory.mismatch", map[string]any{"bin": 2.0, "expected": "00000000AA", "seen": "00000000BB"}),
		ev(9, "inventory.mismatch", map[string]any{"bin": 1.0, "expected": nil, "seen": "00000000CC"}),
		ev(10, "fob.unknown", map[string]any{"bin": 1.0, "fob": "00000000CC"}),
		ev(11, "access_code.status", map[string]any{"access_code_id": "x", "status": "set"}),
		ev(12, "access_code.status", map[string]any{"access_code_id": "y", "status": "set"}),
		ev(13, "access_code.status", map[string]any{"access_code_id": "x", "status": "removing"}),
		ev(14, "access_code.status", map[string]any{"access_code_id": "x", "status": "removed"}),
		ev(15, "key.picked_up", map[string]any{"key_id": "b", "bin": 2.0, "access_code_id": "y", "via": "access_code"}),
	}
	tests := []struct {
		name  string
		upto  int
		state stateDoc
	}{
		{"nothing yet", 1, stateDoc{Bins: bins(modelBin{}, modelBin{})}},
		{"dropped off", 6, stateDoc{Bins: bins(modelBin{"b", "00000000BB"}, modelBin{}), Keys: 2}},
		{"mismatch checks the owner in", 7, stateDoc{Bins: bins(modelBin{"b", "00000000BB"}, modelBin{"a", "00000000AA"}), Keys: 2}},
		{"a key seen elsewhere moves", 8, stateDoc{Bins: bins(modelBin{}, modelBin{"b", "00000000BB"}), Keys: 2}},
		{"unknown fob", 10, stateDoc{Bins: bins(modelBin{Fob: "00000000CC"}, modelBin{"b", "00000000BB"}), Keys: 2}},
		{"codes come and go", 14, stateDoc{Bins: bins(modelBin{Fob: "00000000CC"}, modelBin{"b", "00000000BB"}), Keys: 2, AccessCodes: 1}},
		{"picked up", 15, stateDoc{Bins: bins(modelBin{Fob: "00000000CC"}, modelBin{}), Keys: 2, AccessCodes: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel([]int{1, 2}, map[string]string{"a": "00000000AA"})
			for _, e := range history[:tc.upto] {
				if err := m.apply(e); err != nil {
					t.Fatal(err)
				}
			}
			if d := m.diff(tc.state); len(d) > 0 {
				t.Fatalf("model disagrees with the expected state:\n%s", strings.Join(d, "\n"))
			}
			// And it notices a state that is off by one key.
			wrong := tc.state
			wrong.Keys++
			if len(m.diff(wrong)) == 0 {
				t.Fatal("a wrong key count went unnoticed")
			}
		})
	}
	// A one-time code: used once and removed in that transaction; a state
	// that still counts it disagrees, and a second use is refused.
	once := newModel([]int{1, 2}, nil)
	for _, e := range []event{
		ev(1, "access_code.status", map[string]any{"access_code_id": "o", "status": "set", "max_uses": 1.0, "uses": 0.0}),
		ev(2, "bin.unlocked", map[string]any{"bin": 1.0, "reason": "pickup", "access_code_id": "o"}),
	} {
		if err := once.apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if len(once.diff(stateDoc{Bins: bins(modelBin{}, modelBin{}), AccessCodes: 1})) == 0 {
		t.Fatal("a used-up code still present went unnoticed")
	}
	for _, e := range []event{
		ev(3, "access_code.status", map[string]any{"access_code_id": "o", "status": "removing", "max_uses": 1.0, "uses": 1.0}),
		ev(4, "access_code.status", map[string]any{"access_code_id": "o", "status": "removed", "max_uses": 1.0, "uses": 1.0}),
	} {
		if err := once.apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if d := once.diff(stateDoc{Bins: bins(modelBin{}, modelBin{})}); len(d) > 0 {
		t.Fatalf("after its removal: %v", d)
	}
	if err := once.apply(ev(5, "bin.unlocked", map[string]any{"bin": 1.0, "reason": "pickup", "access_code_id": "o"})); err == nil {
		t.Fatal("a second use of a one-time code was accepted")
	}
	twice := newModel([]int{1}, nil)
	twice.apply(ev(1, "access_code.status", map[string]any{"access_code_id": "t", "status": "set", "max_uses": 1.0, "uses": 0.0}))
	twice.apply(ev(2, "bin.unlocked", map[string]any{"bin": 1.0, "reason": "pickup", "access_code_id": "t"}))
	if err := twice.apply(ev(3, "bin.unlocked", map[string]any{"bin": 1.0, "reason": "pickup", "access_code_id": "t"})); err == nil {
		t.Fatal("two uses of a one-time code before its removal were accepted")
	}

	m := newModel([]int{1}, nil)
	if err := m.apply(ev(1, "key.dropped_off", map[string]any{"key_id": "ghost", "bin": 1.0})); err == nil {
		t.Fatal("a drop-off of a key never created was accepted")
	}
	if err := m.apply(ev(2, "fob.unknown", map[string]any{"bin": 7.0, "fob": "01"})); err == nil {
		t.Fatal("an event naming a bin the box lacks was accepted")
	}
}
