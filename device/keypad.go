package device

import (
	"crypto/hmac"
	"smartboxd/contract"
	"smartboxd/store"
	"time"
)

// KeypadEntry takes a submitted keypad entry. It implements keypad.Sink.
func (b *Box) KeypadEntry(entry string) { b.post(func() { b.entry(entry) }) }

// rejectCounts says which rejections count towards a lockout: guesses, not
// a right code at a wrong moment.
func rejectCounts(code string) bool {
	switch code {
	case contract.CodeCodeUnknown, contract.CodeCodeNotNumeric, contract.CodeCodeInvalidLength, contract.CodeCodeDisabled:
		return true
	}
	return false
}

func (b *Box) entry(entry string) {
	now := b.clock.Now()
	locked := b.keypad.lockedOut(now)
	low := !locked && b.power.low
	var g grant
	var derr error
	if !locked && !low {
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
			return c.event(contract.EventCodeRejected, map[string]string{"reason": contract.CodeKeypadLockedOut})
		}
		if low {
			return c.event(contract.EventCodeRejected, map[string]string{"reason": contract.CodePowerLow})
		}
		if derr != nil {
			code := contract.CodeOf(derr)
			if code == contract.CodeInternal {
				return derr
			}
			if err := c.event(contract.EventCodeRejected, map[string]string{"reason": code}); err != nil {
				return err
			}
			if rejectCounts(code) {
				return b.countFailure(c, &b.keypad, contract.EventKeypadLockedOut)
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
	b.guestEntry(err == nil && accepted, locked)
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
		return grant{}, contract.Errorf(contract.CodeCodeUnknown, "no such code")
	}
	switch owner.Kind {
	case store.OwnerAccessCode:
		ac, err := c.tx.AccessCode(owner.ID)
		if err != nil {
			return grant{}, err
		}
		if ac == nil || !hmac.Equal(ac.CodeHash, hash) {
			return grant{}, contract.Errorf(contract.CodeCodeUnknown, "no such code")
		}
		return b.matchAccessCode(c, ac)
	case store.OwnerKey:
		k, err := c.tx.Key(owner.ID)
		if err != nil {
			return grant{}, err
		}
		if k == nil || !k.Virtual || !hmac.Equal(k.CodeHash, hash) {
			return grant{}, contract.Errorf(contract.CodeCodeUnknown, "no such code")
		}
		if !b.settings.KeyCodesEnabled {
			return grant{}, contract.Errorf(contract.CodeCodeDisabled, "key codes are disabled")
		}
		x := b.bins[k.Bin]
		if k.Bin == 0 || x == nil {
			return grant{}, contract.Errorf(contract.CodeKeyNotCheckedIn, "the key is not here")
		}
		return grant{bin: x, reason: contract.ReasonPickup, sess: session{kind: sessPickup, keyID: k.ID, via: contract.ViaKeyCode, virtual: true}}, nil
	}
	return grant{}, contract.Errorf(contract.CodeCodeUnknown, "no such code")
}

func (b *Box) matchAccessCode(c *txc, ac *store.AccessCode) (grant, error) {
	if ac.Type == contract.TypeTimeBound {
		if b.cfg.RequireSync && !b.cfg.Synced() {
			return grant{}, contract.Errorf(contract.CodeClockUnsynced, "the clock is not synchronised")
		}
		if ac.StartsAt == nil || ac.EndsAt == nil || c.now.Before(*ac.StartsAt) || !c.now.Before(*ac.EndsAt) {
			return grant{}, contract.Errorf(contract.CodeCodeNotActive, "the code is not active now")
		}
	}
	if ac.Status != contract.StatusSet {
		return grant{}, contract.Errorf(contract.CodeCodeNotActive, "the code is %s", ac.Status)
	}
	k, err := c.tx.Key(ac.KeyID)
	if err != nil {
		return grant{}, err
	}
	if k == nil {
		return grant{}, contract.Errorf(contract.CodeKeyNotFound, "the code's key is gone")
	}
	if ac.Action == contract.ActionDropoff {
		if k.Bin != 0 {
			return grant{}, contract.Errorf(contract.CodeKeyAlreadyCheckedIn, "the key is already checked in")
		}
		x := b.freeBin()
		if x == nil {
			return grant{}, contract.Errorf(contract.CodeNoAvailableBins, "no free bin")
		}
		return grant{bin: x, reason: contract.ReasonDropoff, sess: session{kind: sessDropoff, keyID: k.ID, acID: ac.ID, via: contract.ViaAccessCode, virtual: k.Virtual}}, nil
	}
	x := b.bins[k.Bin]
	if k.Bin == 0 || x == nil {
		return grant{}, contract.Errorf(contract.CodeKeyNotCheckedIn, "the key is not here")
	}
	return grant{bin: x, reason: contract.ReasonPickup, sess: session{kind: sessPickup, keyID: k.ID, acID: ac.ID, via: contract.ViaAccessCode, virtual: k.Virtual}}, nil
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
