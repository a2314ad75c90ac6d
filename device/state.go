package device

import (
	"errors"
	"time"

	"smartboxd/store"
)

// presence is what a bin's reader last said.
type presence struct {
	known bool   // the reader has reported since it started or recovered
	fob   string // "" when it sees none
}

// bin is the loop's view of one bin.
type bin struct {
	spec      BinSpec
	rec       store.Bin // durable: what is in it
	sess      *session  // the bin is open and waiting
	seen      presence
	settle    *timer // the reader disagrees with rec; the state follows when this fires
	settleFob string // what the reader saw when settle was armed
	energised bool
	door      string // open | closed | unknown
}

func (b *bin) state() string {
	switch {
	case b.sess != nil:
		return "open"
	case b.rec.Empty():
		return "empty"
	}
	return "occupied"
}

// BinState is one bin in the state document.
type BinState struct {
	ID    int     `json:"id"`
	State string  `json:"state"`
	KeyID *string `json:"key_id"`
	Fob   *string `json:"fob"`
	Lock  string  `json:"lock"`
	Door  string  `json:"door"`
}

// State is the reported state document of the contract.
type State struct {
	Version     uint64         `json:"version"`
	At          time.Time      `json:"at"`
	Bins        []BinState     `json:"bins"`
	Keys        int            `json:"keys"`
	AccessCodes int            `json:"access_codes"`
	Outbox      OutboxState    `json:"outbox"`
	Clock       ClockState     `json:"clock"`
	Settings    store.Settings `json:"settings"`
	Store       StoreState     `json:"store"`
}

// StoreState says whether the database takes writes. While it does not
// (disk full, read-only), the box opens nothing it cannot record.
type StoreState struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// OutboxState is the outbox part of the state document.
type OutboxState struct {
	Depth    int        `json:"depth"`
	OldestAt *time.Time `json:"oldest_at"`
}

// ClockState says whether the box trusts its clock.
type ClockState struct {
	Synced bool `json:"synced"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// publishBins copies the loop's bins for readers on other goroutines and
// signals a change.
func (b *Box) publishBins() {
	pub := make([]BinState, 0, len(b.binOrder))
	for _, id := range b.binOrder {
		x := b.bins[id]
		lock := "locked"
		if x.energised {
			lock = "energised"
		}
		door := x.door
		if !x.spec.HasDoor {
			door = "unknown"
		}
		pub = append(pub, BinState{ID: id, State: x.state(), KeyID: strOrNil(x.rec.KeyID), Fob: strOrNil(x.rec.Fob), Lock: lock, Door: door})
	}
	b.mu.Lock()
	b.pub = pub
	b.mu.Unlock()
	b.notifyChanged()
}

// State builds the state document. It is safe to call from any goroutine.
// Until Run has loaded the box's durable state it returns ErrStarting: a
// document without the bins would report a box that holds nothing.
func (b *Box) State() (State, error) {
	b.mu.Lock()
	if b.pub == nil {
		b.mu.Unlock()
		return State{}, ErrStarting
	}
	bins := append([]BinState(nil), b.pub...)
	settings := b.settings
	b.mu.Unlock()
	s := State{
		Version:  b.version.Load(),
		At:       b.clock.Now().UTC().Truncate(time.Millisecond),
		Bins:     bins,
		Clock:    ClockState{Synced: b.cfg.Synced()},
		Settings: settings,
		Store:    b.storeState(),
	}
	err := b.st.View(func(tx *store.Tx) error {
		s.Keys = tx.KeyCount()
		s.AccessCodes = tx.AccessCodeCount()
		o := tx.OutboxStats()
		s.Outbox.Depth = o.Depth
		if !o.OldestAt.IsZero() {
			s.Outbox.OldestAt = &o.OldestAt
		}
		return nil
	})
	return s, err
}

func asError(err error, target **Error) bool { return errors.As(err, target) }

// storeState is the store part of the state document.
func (b *Box) storeState() StoreState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return StoreState{OK: b.storeFault == "", Error: b.storeFault}
}
