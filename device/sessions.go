package device

import (
	"context"

	"smartboxd/contract"
	"smartboxd/store"
)

// Session kinds: what an opened bin waits for.
const (
	sessPickup  = "pickup"  // the key's fob to leave
	sessDropoff = "dropoff" // a fob to arrive
)

// session is a bin opened and waiting. It is not durable: after a restart,
// what the readers see is the truth.
type session struct {
	kind    string
	keyID   string // "" on a service open of an empty bin: any known fob
	acID    string // the access code that opened it, if any
	via     string // access_code, key_code, remote, console
	virtual bool   // the key has no fob: the bin itself is the evidence
	timer   *timer
}

// grant is a decision to open a bin.
type grant struct {
	bin    *bin
	reason string // bin.unlocked reason: pickup, dropoff, remote, console
	sess   session
	// once is the once-mode offline code that opened it, to be marked used.
	once *offlineUse
}

// open records the bin.unlocked decision and, once committed, pulses the
// lock and starts the bin's session. A pickup that has nothing to wait for
// (a virtual key, or a bin without a reader) completes in the same
// transaction.
func (b *Box) open(c *txc, g grant) error {
	x := g.bin
	unlocked := map[string]any{"bin": x.spec.ID, "reason": g.reason}
	if g.sess.acID != "" {
		unlocked["access_code_id"] = g.sess.acID // the use it counts
	}
	if err := c.event(contract.EventBinUnlocked, unlocked); err != nil {
		return err
	}
	sess := g.sess
	immediate := sess.kind == sessPickup && (sess.virtual || !x.spec.hasReader())
	if immediate {
		if err := b.pickedUp(c, x, &sess); err != nil {
			return err
		}
	}
	c.onCommit(func() {
		if x.sess != nil {
			x.sess.timer.Stop()
			x.sess = nil
		}
		x.settle.Stop()
		x.settle = nil
		if !immediate {
			s := sess
			x.sess = &s
			s.timer = b.after(b.cfg.DropoffTimeout, func() { b.sessionEnd(x, &s, false) })
		}
		if err := b.cfg.Locks.Unlock(x.spec.ID); err != nil {
			b.log.Error("unlock failed", "bin", x.spec.ID, "err", err)
		}
		b.guestOpened(x, immediate)
	})
	return nil
}

// endSession forgets x's session once the transaction commits, and lets the
// readers' view be checked again.
func (b *Box) endSession(c *txc, x *bin, s *session) {
	c.onCommit(func() {
		if x.sess == s {
			s.timer.Stop()
			x.sess = nil
			b.guestSessionEnded(x)
			b.reconcile(x)
		}
	})
}

// pickedUp records that what was in x has left it.
func (b *Box) pickedUp(c *txc, x *bin, s *session) error {
	if s.keyID != "" {
		if err := checkOut(c, s.keyID, x); err != nil {
			return err
		}
		if err := c.event(contract.EventKeyPickedUp, map[string]any{"key_id": s.keyID, "bin": x.spec.ID, "access_code_id": strOrNil(s.acID), "via": s.via}); err != nil {
			return err
		}
	} else if x.rec.Fob != "" {
		if err := c.event(contract.EventFobRemoved, map[string]any{"bin": x.spec.ID, "fob": x.rec.Fob}); err != nil {
			return err
		}
	}
	return c.putBin(x, store.Bin{})
}

// checkOut records that key id is no longer in bin x, if the store had it
// there.
func checkOut(c *txc, id string, x *bin) error {
	k, err := c.tx.Key(id)
	if err != nil || k == nil || k.Bin != x.spec.ID {
		return err
	}
	k.Bin = 0
	return c.tx.PutKey(k)
}

// moveKey checks key k in at x (with fob serial, "" for none), clearing the
// bin it was recorded in before.
func (b *Box) moveKey(c *txc, k *store.Key, x *bin, serial string) error {
	if old := b.bins[k.Bin]; k.Bin != 0 && k.Bin != x.spec.ID && old != nil && old.rec.KeyID == k.ID {
		if err := c.putBin(old, store.Bin{}); err != nil {
			return err
		}
	}
	if x.rec.KeyID != "" && x.rec.KeyID != k.ID {
		if err := checkOut(c, x.rec.KeyID, x); err != nil {
			return err
		}
	}
	k.Bin = x.spec.ID
	if err := c.tx.PutKey(k); err != nil {
		return err
	}
	return c.putBin(x, store.Bin{KeyID: k.ID, Fob: serial})
}

// droppedOff records key id dropped off in x with fob serial, in the
// session s that opened x.
func (b *Box) droppedOff(c *txc, x *bin, k *store.Key, serial string, s *session) error {
	if err := b.moveKey(c, k, x, serial); err != nil {
		return err
	}
	return c.event(contract.EventKeyDroppedOff, map[string]any{"key_id": k.ID, "bin": x.spec.ID, "fob": strOrNil(serial),
		"access_code_id": strOrNil(s.acID), "via": s.via})
}

// dropoffFob handles a fob read in a bin opened for a drop-off.
func (b *Box) dropoffFob(c *txc, x *bin, s *session, serial string) error {
	ownerID := c.tx.KeyByFob(serial)
	var k *store.Key
	var err error
	switch {
	case ownerID != "":
		if s.keyID != "" && ownerID != s.keyID {
			if err := c.event(contract.EventDropoffWrongKey, map[string]any{"bin": x.spec.ID, "expected": s.keyID, "key_id": ownerID, "fob": serial}); err != nil {
				return err
			}
		}
		k, err = c.tx.Key(ownerID)
	case s.keyID != "":
		// A fob never linked is linked to the key being dropped off.
		k, err = c.tx.Key(s.keyID)
		if err == nil && k != nil && !k.Virtual {
			k.Fob = serial
			if err := c.event(contract.EventFobLinked, map[string]any{"key_id": k.ID, "fob": serial}); err != nil {
				return err
			}
		} else {
			k = nil
		}
	}
	if err != nil {
		return err
	}
	if k == nil {
		if err := c.event(contract.EventFobUnknown, map[string]any{"bin": x.spec.ID, "fob": serial}); err != nil {
			return err
		}
		return c.putBin(x, store.Bin{Fob: serial})
	}
	return b.droppedOff(c, x, k, serial, s)
}

// sessionEnd closes x's session s: at its timeout, or when the door closed.
// A drop-off with nothing to read (a virtual key, a bin without a reader)
// completes; anything else that did not happen is reported.
func (b *Box) sessionEnd(x *bin, s *session, doorClosed bool) {
	if x.sess != s {
		return
	}
	err := b.txn(func(c *txc) error {
		defer b.endSession(c, x, s)
		switch {
		case s.kind == sessDropoff && s.keyID != "" && (s.virtual || !x.spec.hasReader()):
			k, err := c.tx.Key(s.keyID)
			if err != nil || k == nil {
				return err
			}
			fob := ""
			if !k.Virtual {
				fob = k.Fob
			}
			return b.droppedOff(c, x, k, fob, s)
		case s.kind == sessDropoff:
			return c.event(contract.EventDropoffTimeout, map[string]any{"bin": x.spec.ID, "key_id": strOrNil(s.keyID), "door_closed": doorClosed})
		default:
			return c.event(contract.EventPickupTimeout, map[string]any{"bin": x.spec.ID, "key_id": strOrNil(s.keyID), "door_closed": doorClosed})
		}
	})
	if err != nil {
		// Not recorded: try again shortly rather than lose the outcome.
		s.timer = b.after(retryAfter, func() { b.sessionEnd(x, s, doorClosed) })
	}
}

// OpenBin opens a bin for the cloud (reason contract.ReasonRemote) or a technician
// ("console"). A bin holding a key waits for it to leave (key.picked_up via
// the reason); an empty bin waits for any fob.
func (b *Box) OpenBin(ctx context.Context, id int, reason string) error {
	var err error
	if cerr := b.call(ctx, func() { err = b.openService(id, reason) }); cerr != nil {
		return cerr
	}
	return err
}

func (b *Box) openService(id int, reason string) error {
	x := b.bins[id]
	if x == nil {
		return contract.Errorf(contract.CodeBinNotFound, "no bin %d", id)
	}
	return b.txn(func(c *txc) error { return b.openServiceTx(c, x, reason) })
}

func (b *Box) openServiceTx(c *txc, x *bin, reason string) error {
	g := grant{bin: x, reason: reason, sess: session{kind: sessDropoff, via: reason}}
	if !x.rec.Empty() {
		g.sess.kind = sessPickup
		g.sess.keyID = x.rec.KeyID
		if k, err := c.tx.Key(x.rec.KeyID); err != nil {
			return err
		} else if k != nil && k.Virtual {
			g.sess.virtual = true
		}
	}
	return b.open(c, g)
}
