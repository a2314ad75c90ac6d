package device

import (
	"context"
	"crypto/hmac"
	"time"

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
}

// ---- keypad ----

// KeypadEntry takes a submitted keypad entry. It implements keypad.Sink.
func (b *Box) KeypadEntry(entry string) { b.post(func() { b.entry(entry) }) }

// rejectCounts says which rejections count towards a lockout: guesses, not
// a right code at a wrong moment.
func rejectCounts(code string) bool {
	switch code {
	case CodeCodeUnknown, CodeCodeNotNumeric, CodeCodeInvalidLength, CodeCodeDisabled:
		return true
	}
	return false
}

func (b *Box) entry(entry string) {
	now := b.clock.Now()
	locked := b.keypad.lockedOut(now)
	var g grant
	var derr error
	if !locked {
		// Decide on a read transaction: a decision reads only what this
		// loop alone writes, so it still holds when it is recorded below.
		if err := b.st.View(func(tx *store.Tx) error {
			g, derr = b.match(&txc{tx: tx, now: now}, entry)
			return nil
		}); err != nil {
			derr = err
		}
	}
	accepted := false
	err := b.txn(func(c *txc) error {
		accepted = false
		if locked {
			return c.event("code.rejected", map[string]string{"reason": CodeKeypadLockedOut})
		}
		if derr != nil {
			code := CodeOf(derr)
			if code == CodeInternal {
				return derr
			}
			if err := c.event("code.rejected", map[string]string{"reason": code}); err != nil {
				return err
			}
			if rejectCounts(code) {
				return b.countFailure(c, &b.keypad, "keypad.locked_out")
			}
			return nil
		}
		if b.keypad.failures > 0 || b.keypad.level > 0 {
			l := b.keypad
			l.succeed()
			if err := c.tx.PutLockout(false, l.record(c.now)); err != nil {
				return err
			}
			c.onCommit(func() { b.keypad = l })
		}
		accepted = true
		return b.open(c, g)
	})
	if fb := b.cfg.Feedback; fb != nil {
		if err == nil && accepted {
			fb.Accepted()
		} else {
			fb.Rejected()
		}
	}
}

// countFailure counts a wrong entry against l, writing the lockout record
// and, when it starts a lockout, the lockout event.
func (b *Box) countFailure(c *txc, l *lockout, eventType string) error {
	next := *l
	locked, until := next.fail(c.now)
	if err := c.tx.PutLockout(next.isConsole, next.record(c.now)); err != nil {
		return err
	}
	if locked {
		if err := c.event(eventType, map[string]time.Time{"until": until.Round(0).UTC().Truncate(time.Second)}); err != nil {
			return err
		}
	}
	c.onCommit(func() { *l = next })
	return nil
}

// match decides what an entry opens, or why it opens nothing.
func (b *Box) match(c *txc, entry string) (grant, error) {
	if err := validateCode(entry); err != nil {
		return grant{}, err
	}
	hash := b.st.CodeHash(entry)
	owner, ok := c.tx.CodeOwner(hash)
	if !ok {
		return grant{}, errf(CodeCodeUnknown, "no such code")
	}
	switch owner.Kind {
	case store.OwnerAccessCode:
		ac, err := c.tx.AccessCode(owner.ID)
		if err != nil {
			return grant{}, err
		}
		if ac == nil || !hmac.Equal(ac.CodeHash, hash) {
			return grant{}, errf(CodeCodeUnknown, "no such code")
		}
		return b.matchAccessCode(c, ac)
	case store.OwnerKey:
		k, err := c.tx.Key(owner.ID)
		if err != nil {
			return grant{}, err
		}
		if k == nil || !k.Virtual || !hmac.Equal(k.CodeHash, hash) {
			return grant{}, errf(CodeCodeUnknown, "no such code")
		}
		if !b.settings.KeyCodesEnabled {
			return grant{}, errf(CodeCodeDisabled, "key codes are disabled")
		}
		x := b.bins[k.Bin]
		if k.Bin == 0 || x == nil {
			return grant{}, errf(CodeKeyNotCheckedIn, "the key is not here")
		}
		return grant{bin: x, reason: "pickup", sess: session{kind: sessPickup, keyID: k.ID, via: "key_code", virtual: true}}, nil
	}
	return grant{}, errf(CodeCodeUnknown, "no such code")
}

func (b *Box) matchAccessCode(c *txc, ac *store.AccessCode) (grant, error) {
	if ac.Type == store.TypeTimeBound {
		if b.cfg.RequireSync && !b.cfg.Synced() {
			return grant{}, errf(CodeClockUnsynced, "the clock is not synchronised")
		}
		if ac.StartsAt == nil || ac.EndsAt == nil || c.now.Before(*ac.StartsAt) || !c.now.Before(*ac.EndsAt) {
			return grant{}, errf(CodeCodeNotActive, "the code is not active now")
		}
	}
	if ac.Status != store.StatusSet {
		return grant{}, errf(CodeCodeNotActive, "the code is %s", ac.Status)
	}
	k, err := c.tx.Key(ac.KeyID)
	if err != nil {
		return grant{}, err
	}
	if k == nil {
		return grant{}, errf(CodeKeyNotFound, "the code's key is gone")
	}
	if ac.Action == store.ActionDropoff {
		if k.Bin != 0 {
			return grant{}, errf(CodeKeyAlreadyCheckedIn, "the key is already checked in")
		}
		x := b.freeBin()
		if x == nil {
			return grant{}, errf(CodeNoAvailableBins, "no free bin")
		}
		return grant{bin: x, reason: "dropoff", sess: session{kind: sessDropoff, keyID: k.ID, acID: ac.ID, via: "access_code", virtual: k.Virtual}}, nil
	}
	x := b.bins[k.Bin]
	if k.Bin == 0 || x == nil {
		return grant{}, errf(CodeKeyNotCheckedIn, "the key is not here")
	}
	return grant{bin: x, reason: "pickup", sess: session{kind: sessPickup, keyID: k.ID, acID: ac.ID, via: "access_code", virtual: k.Virtual}}, nil
}

// freeBin is the lowest bin that holds nothing, is not open, and whose
// reader (if it has one) agrees it is empty.
func (b *Box) freeBin() *bin {
	for _, id := range b.binOrder {
		x := b.bins[id]
		if x.rec.Empty() && x.sess == nil && x.settle == nil && (!x.seen.known || x.seen.fob == "") {
			return x
		}
	}
	return nil
}

// ---- opening a bin ----

// open records the bin.unlocked decision and, once committed, pulses the
// lock and starts the bin's session. A pickup that has nothing to wait for
// (a virtual key, or a bin without a reader) completes in the same
// transaction.
func (b *Box) open(c *txc, g grant) error {
	x := g.bin
	if err := c.event("bin.unlocked", map[string]any{"bin": x.spec.ID, "reason": g.reason}); err != nil {
		return err
	}
	sess := g.sess
	immediate := sess.kind == sessPickup && (sess.virtual || !x.spec.HasReader)
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
		if err := c.event("key.picked_up", map[string]any{"key_id": s.keyID, "bin": x.spec.ID, "access_code_id": strOrNil(s.acID), "via": s.via}); err != nil {
			return err
		}
	} else if x.rec.Fob != "" {
		if err := c.event("fob.removed", map[string]any{"bin": x.spec.ID, "fob": x.rec.Fob}); err != nil {
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

// droppedOff records key id dropped off in x with fob serial.
func (b *Box) droppedOff(c *txc, x *bin, k *store.Key, serial string) error {
	if err := b.moveKey(c, k, x, serial); err != nil {
		return err
	}
	return c.event("key.dropped_off", map[string]any{"key_id": k.ID, "bin": x.spec.ID, "fob": strOrNil(serial)})
}

// dropoffFob handles a fob read in a bin opened for a drop-off.
func (b *Box) dropoffFob(c *txc, x *bin, s *session, serial string) error {
	ownerID := c.tx.KeyByFob(serial)
	var k *store.Key
	var err error
	switch {
	case ownerID != "":
		if s.keyID != "" && ownerID != s.keyID {
			if err := c.event("dropoff.wrong_key", map[string]any{"bin": x.spec.ID, "expected": s.keyID, "key_id": ownerID, "fob": serial}); err != nil {
				return err
			}
		}
		k, err = c.tx.Key(ownerID)
	case s.keyID != "":
		// A fob never linked is linked to the key being dropped off.
		k, err = c.tx.Key(s.keyID)
		if err == nil && k != nil && !k.Virtual {
			k.Fob = serial
			if err := c.event("fob.linked", map[string]any{"key_id": k.ID, "fob": serial}); err != nil {
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
		if err := c.event("fob.unknown", map[string]any{"bin": x.spec.ID, "fob": serial}); err != nil {
			return err
		}
		return c.putBin(x, store.Bin{Fob: serial})
	}
	return b.droppedOff(c, x, k, serial)
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
		case s.kind == sessDropoff && s.keyID != "" && (s.virtual || !x.spec.HasReader):
			k, err := c.tx.Key(s.keyID)
			if err != nil || k == nil {
				return err
			}
			fob := ""
			if !k.Virtual {
				fob = k.Fob
			}
			return b.droppedOff(c, x, k, fob)
		case s.kind == sessDropoff:
			return c.event("dropoff.timeout", map[string]any{"bin": x.spec.ID, "key_id": strOrNil(s.keyID), "door_closed": doorClosed})
		default:
			return c.event("pickup.timeout", map[string]any{"bin": x.spec.ID, "key_id": strOrNil(s.keyID), "door_closed": doorClosed})
		}
	})
	if err != nil {
		// Not recorded: try again shortly rather than lose the outcome.
		s.timer = b.after(time.Second, func() { b.sessionEnd(x, s, doorClosed) })
	}
}

// ---- readers ----

// FobPresent reports a fob read in a bin. It implements fob.Sink.
func (b *Box) FobPresent(bin int, serial string) {
	b.post(func() { b.fobSeen(bin, presence{known: true, fob: serial}) })
}

// FobAbsent reports a bin's reader seeing no fob. It implements fob.Sink.
func (b *Box) FobAbsent(bin int) { b.post(func() { b.fobSeen(bin, presence{known: true}) }) }

// ReaderFault reports a reader gone (its port closed on it). It implements
// fob.Sink.
func (b *Box) ReaderFault(reader string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b.post(func() {
		if x := b.bins[b.cfg.Readers[reader]]; x != nil {
			x.seen = presence{}
			x.settle.Stop()
			x.settle = nil
		}
		b.txn(func(c *txc) error {
			return c.event("reader.fault", map[string]string{"reader": reader, "error": msg})
		})
	})
}

// ReaderOK reports a reader back. It implements fob.Sink.
func (b *Box) ReaderOK(reader string) {
	b.post(func() {
		b.txn(func(c *txc) error { return c.event("reader.ok", map[string]string{"reader": reader}) })
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
		if err := c.event("inventory.mismatch", map[string]any{"bin": x.spec.ID, "expected": strOrNil(x.rec.Fob), "seen": strOrNil(x.seen.fob)}); err != nil {
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
			if err := c.event("fob.unknown", map[string]any{"bin": x.spec.ID, "fob": x.seen.fob}); err != nil {
				return err
			}
		}
		return c.putBin(x, store.Bin{Fob: x.seen.fob})
	})
	if err != nil {
		x.settle = b.after(time.Second, func() { x.settle = nil; b.reconcile(x) })
	}
}

// ---- locks and doors ----

// LockChanged reports a lock output energised or released. It implements
// locks.Sink.
func (b *Box) LockChanged(bin int, energised bool) {
	b.post(func() {
		if x := b.bins[bin]; x != nil {
			x.energised = energised
			b.publishBins()
		}
	})
}

// DoorChanged reports a door opened or closed. It implements locks.Sink.
func (b *Box) DoorChanged(bin int, open bool) {
	b.post(func() {
		x := b.bins[bin]
		if x == nil {
			return
		}
		x.door = "closed"
		if open {
			x.door = "open"
		}
		b.publishBins()
		if open {
			return
		}
		if s := x.sess; s != nil {
			if s.kind == sessDropoff && s.keyID != "" && (s.virtual || !x.spec.HasReader) {
				b.sessionEnd(x, s, true)
				return
			}
			// Give the reader time to notice a fob that left just before.
			s.timer.Stop()
			s.timer = b.after(b.cfg.FobAbsent+500*time.Millisecond, func() { b.sessionEnd(x, s, true) })
			return
		}
		b.reconcile(x)
	})
}

// OpenFailed reports a door that did not open after a pulse and a retry.
// It implements locks.Sink.
func (b *Box) OpenFailed(bin int) {
	b.post(func() {
		x := b.bins[bin]
		if x == nil {
			return
		}
		b.txn(func(c *txc) error {
			if s := x.sess; s != nil {
				b.endSession(c, x, s)
			}
			return c.event("bin.open_failed", map[string]int{"bin": bin})
		})
	})
}

// DoorHeldOpen reports a door left open. It implements locks.Sink.
func (b *Box) DoorHeldOpen(bin int) { b.binEvent("bin.door_held_open", bin) }

// DoorForced reports a door opened without a pulse. It implements locks.Sink.
func (b *Box) DoorForced(bin int) { b.binEvent("bin.forced", bin) }

func (b *Box) binEvent(typ string, bin int) {
	b.post(func() {
		if b.bins[bin] != nil {
			b.txn(func(c *txc) error { return c.event(typ, map[string]int{"bin": bin}) })
		}
	})
}

// ---- service opens ----

// OpenBin opens a bin for the cloud (reason "remote") or a technician
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
		return errf(CodeBinNotFound, "no bin %d", id)
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
