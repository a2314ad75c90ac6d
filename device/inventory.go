package device

import (
	"smartboxd/contract"
	"smartboxd/store"
)

// FobPresent reports a fob read in a bin. It implements fob.Sink.
func (b *Box) FobPresent(bin int, serial string) {
	b.post(func() { b.fobSeen(bin, presence{known: true, fob: serial}) })
}

// FobAbsent reports a bin's reader seeing no fob. It implements fob.Sink.
func (b *Box) FobAbsent(bin int) { b.post(func() { b.fobSeen(bin, presence{known: true}) }) }

// ReaderFault reports that the reader of bin failed (its port closed on
// it): what it saw is forgotten until it is back. It implements fob.Sink.
func (b *Box) ReaderFault(bin int, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b.post(func() {
		x := b.bins[bin]
		if x == nil {
			return
		}
		x.seen = presence{}
		x.settle.Stop()
		x.settle = nil
		b.txn(func(c *txc) error {
			return c.event(contract.EventReaderFault, map[string]string{"reader": x.spec.Reader, "error": msg})
		})
	})
}

// ReaderOK reports that the reader of bin works again. It implements
// fob.Sink.
func (b *Box) ReaderOK(bin int) {
	b.post(func() {
		x := b.bins[bin]
		if x == nil {
			return
		}
		b.txn(func(c *txc) error {
			return c.event(contract.EventReaderOK, map[string]string{"reader": x.spec.Reader})
		})
	})
}

func (b *Box) fobSeen(id int, p presence) {
	x := b.bins[id]
	if x == nil {
		return
	}
	x.seen = p
	s := x.sess
	if s == nil {
		b.reconcile(x)
		return
	}
	switch {
	case s.kind == sessPickup && p.fob == "" && !x.rec.Empty():
		b.txn(func(c *txc) error {
			if err := b.pickedUp(c, x, s); err != nil {
				return err
			}
			b.endSession(c, x, s)
			return nil
		})
	case s.kind == sessDropoff && p.fob != "" && !(s.virtual && s.keyID != ""):
		b.txn(func(c *txc) error {
			if err := b.dropoffFob(c, x, s, p.fob); err != nil {
				return err
			}
			b.endSession(c, x, s)
			return nil
		})
	}
}

// reconcile compares what x's reader sees with what x holds; when they
// disagree for InventorySettle, the state follows the reader, reported.
func (b *Box) reconcile(x *bin) {
	if x.sess != nil || !x.seen.known || x.seen.fob == x.rec.Fob {
		x.settle.Stop()
		x.settle = nil
		return
	}
	if x.settle != nil && x.settleFob == x.seen.fob {
		return // already waiting for this view to hold
	}
	x.settle.Stop()
	seen := x.seen.fob
	x.settleFob = seen
	x.settle = b.after(b.cfg.InventorySettle, func() {
		x.settle = nil
		if x.sess == nil && x.seen.known && x.seen.fob == seen && seen != x.rec.Fob {
			b.applyMismatch(x)
		}
	})
}

func (b *Box) applyMismatch(x *bin) {
	err := b.txn(func(c *txc) error {
		if err := c.event(contract.EventInventoryMismatch, map[string]any{"bin": x.spec.ID, "expected": strOrNil(x.rec.Fob), "seen": strOrNil(x.seen.fob)}); err != nil {
			return err
		}
		if x.seen.fob != "" {
			if owner := c.tx.KeyByFob(x.seen.fob); owner != "" {
				k, err := c.tx.Key(owner)
				if err != nil {
					return err
				}
				if k != nil {
					return b.moveKey(c, k, x, x.seen.fob)
				}
			}
		}
		if x.rec.KeyID != "" {
			if err := checkOut(c, x.rec.KeyID, x); err != nil {
				return err
			}
		}
		if x.seen.fob != "" {
			if err := c.event(contract.EventFobUnknown, map[string]any{"bin": x.spec.ID, "fob": x.seen.fob}); err != nil {
				return err
			}
		}
		return c.putBin(x, store.Bin{Fob: x.seen.fob})
	})
	if err != nil {
		x.settle = b.after(retryAfter, func() { x.settle = nil; b.reconcile(x) })
	}
}
