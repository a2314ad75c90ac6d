package device

import (
	"time"

	"smartboxd/contract"
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
		return contract.BinOpen
	case b.rec.Empty():
		return contract.BinEmpty
	}
	return contract.BinOccupied
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
	pub := make([]contract.BinState, 0, len(b.binOrder))
	for _, id := range b.binOrder {
		x := b.bins[id]
		lock := contract.LockLocked
		if x.energised {
			lock = contract.LockEnergised
		}
		door := x.door
		if !x.spec.HasDoor {
			door = contract.DoorUnknown
		}
		pub = append(pub, contract.BinState{ID: id, State: x.state(), KeyID: strOrNil(x.rec.KeyID), Fob: strOrNil(x.rec.Fob), Lock: lock, Door: door})
	}
	b.mu.Lock()
	b.pub = pub
	b.mu.Unlock()
	b.notifyChanged()
}

// State builds the state document. It is safe to call from any goroutine.
// Until Run has loaded the box's durable state it returns
// contract.ErrStarting: a document without the bins would report a box
// that holds nothing.
func (b *Box) State() (contract.State, error) {
	var s contract.State
	err := b.st.View(func(tx *store.Tx) error {
		var err error
		s, err = b.stateDoc(tx, b.clock.Now())
		return err
	})
	return s, err
}

// stateDoc is the state document as tx sees the store at now: the one
// builder of the document, for State and for state.get.
func (b *Box) stateDoc(tx *store.Tx, now time.Time) (contract.State, error) {
	b.mu.Lock()
	if b.pub == nil {
		b.mu.Unlock()
		return contract.State{}, contract.ErrStarting
	}
	s := contract.State{
		Version:  b.version.Load(),
		At:       now.UTC().Truncate(time.Millisecond),
		Bins:     append([]contract.BinState(nil), b.pub...),
		Clock:    contract.ClockState{Synced: b.cfg.Synced()},
		Settings: b.settings,
		Limits: contract.StateLimits{CodeMin: contract.CodeMinLen, CodeMax: contract.CodeMaxLen,
			MaxAccessCodes: b.cfg.MaxAccessCodes, MaxKeys: b.cfg.MaxKeys},
	}
	if b.pubPower != nil {
		p := *b.pubPower
		s.Power = &p
	}
	b.mu.Unlock()
	s.Store = b.storeState()
	s.AcksRefused = b.acksRefused.Load()
	s.Store.Restored = b.cfg.StoreRestored
	s.Mode = b.cfg.Mode
	s.Keys = tx.KeyCount()
	s.AccessCodes = tx.AccessCodeCount()
	o := tx.OutboxStats()
	s.Outbox.Depth = o.Depth
	if !o.OldestAt.IsZero() {
		s.Outbox.OldestAt = &o.OldestAt
	}
	return s, nil
}

func (b *Box) cmdStateGet(c *txc, data []byte) (any, error) {
	if err := contract.DecodeData(data, &struct{}{}); err != nil {
		return nil, err
	}
	return b.stateDoc(c.tx, c.now)
}

func (b *Box) cmdBinOpen(c *txc, data []byte) (any, error) {
	var d struct {
		Bin *int `json:"bin"`
	}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	if d.Bin == nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.bin: required")
	}
	x := b.bins[*d.Bin]
	if x == nil {
		return nil, contract.Errorf(contract.CodeBinNotFound, "no bin %d", *d.Bin)
	}
	if err := b.openServiceTx(c, x, contract.ReasonRemote); err != nil {
		return nil, err
	}
	return map[string]any{"bin": *d.Bin, "unlocked": true}, nil
}

func (b *Box) cmdSettingsSet(c *txc, data []byte) (any, error) {
	var d struct {
		KeyCodesEnabled *bool `json:"key_codes_enabled"`
	}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	if d.KeyCodesEnabled == nil {
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.key_codes_enabled: required")
	}
	s := b.settings
	s.KeyCodesEnabled = *d.KeyCodesEnabled
	if !s.KeyCodesEnabled && b.settings.KeyCodesEnabled {
		for _, id := range b.binOrder {
			if kid := b.bins[id].rec.KeyID; kid != "" {
				k, err := c.tx.Key(kid)
				if err != nil {
					return nil, err
				}
				if k != nil && k.Virtual {
					return nil, contract.Errorf(contract.CodeKeyVirtualCheckedIn, "virtual key %q is checked in at bin %d", kid, id)
				}
			}
		}
	}
	if err := c.tx.PutSettings(s); err != nil {
		return nil, err
	}
	if s != b.settings {
		if err := c.event(contract.EventSettingsChanged, s); err != nil {
			return nil, err
		}
	}
	c.onCommit(func() {
		b.mu.Lock()
		b.settings = s
		b.mu.Unlock()
	})
	return s, nil
}
