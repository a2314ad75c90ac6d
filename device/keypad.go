package device

import (
	"context"
	"crypto/hmac"
	"time"

	"smartboxd/contract"
	"smartboxd/offline"
	"smartboxd/store"
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
	if locked && b.keypad.reported {
		// Noise: the lockout's first refusal was reported; the rest are
		// counted for keypad.lockout_ended, and nothing is written.
		b.keypad.rejected++
		if fb := b.cfg.Feedback; fb != nil {
			fb.Rejected()
		}
		b.guestEntry(false, locked)
		return
	}
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
			c.onCommit(func() { b.keypad.reported = true })
			return c.event(contract.EventCodeRejected, map[string]string{"reason": contract.CodeKeypadLockedOut})
		}
		if low {
			return c.event(contract.EventCodeRejected, map[string]string{"reason": contract.CodePowerLow})
		}
		rej := derr
		if rej == nil {
			// A limit is checked again here, in the transaction that
			// records the use, so no two entries can both take the last.
			rej = b.checkUse(c, g)
		}
		if rej != nil {
			code := contract.CodeOf(rej)
			if code == contract.CodeInternal {
				return rej
			}
			if err := c.event(contract.EventCodeRejected, map[string]string{"reason": code}); err != nil {
				return err
			}
			if rejectCounts(code) {
				return b.countFailure(c, &b.keypad, contract.EventKeypadLockedOut)
			}
			return nil
		}
		// A right code clears neither the wrong entries counted nor the
		// escalation: it may be the guesser's own.
		accepted = true
		if err := b.open(c, g); err != nil {
			return err
		}
		return b.recordUse(c, g)
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
	c.onCommit(func() {
		*l = next
		if locked && !l.isConsole {
			b.armLockoutEnd()
		}
	})
	return nil
}

// armLockoutEnd arms the timer that ends the keypad's lockout (replacing any
// earlier one); with no lockout it only stops it.
func (b *Box) armLockoutEnd() {
	b.lockoutTimer.Stop()
	b.lockoutTimer = nil
	if !b.keypad.until.IsZero() {
		b.lockoutTimer = b.after(max(b.keypad.until.Sub(b.clock.Now()), 0), b.endLockout)
	}
}

// endLockout reports the end of the keypad's lockout, with how many entries
// it refused that were not reported one by one.
func (b *Box) endLockout() {
	if b.keypad.until.IsZero() {
		return
	}
	if now := b.clock.Now(); b.keypad.lockedOut(now) {
		b.armLockoutEnd() // woken early
		return
	}
	l := b.keypad
	rejected := l.rejected
	l.until, l.reported, l.rejected = time.Time{}, false, 0
	err := b.txn(func(c *txc) error {
		if err := c.tx.PutLockout(false, l.record(c.now)); err != nil {
			return err
		}
		return c.event(contract.EventKeypadLockoutEnded, contract.LockoutEnded{Rejected: rejected})
	})
	if err != nil {
		b.lockoutTimer = b.after(retryAfter, b.endLockout)
		return
	}
	b.keypad = l
	b.lockoutTimer = nil
}

// clearLockout ends the keypad's lockout and its escalation, recording who
// did it in a keypad.lockout_cleared event.
func (b *Box) clearLockout(c *txc, by string) (contract.LockoutCleared, error) {
	prev := b.keypad
	res := contract.LockoutCleared{By: by, WasLockedOut: prev.lockedOut(c.now), Level: prev.level, Rejected: prev.rejected}
	l := prev
	l.succeed()
	if err := c.tx.PutLockout(false, l.record(c.now)); err != nil {
		return res, err
	}
	if err := c.event(contract.EventKeypadLockoutCleared, res); err != nil {
		return res, err
	}
	c.onCommit(func() {
		b.keypad = l
		b.armLockoutEnd()
	})
	return res, nil
}

func (b *Box) cmdClearLockout(c *txc, data []byte) (any, error) {
	var d struct{}
	if err := contract.DecodeData(data, &d); err != nil {
		return nil, err
	}
	return b.clearLockout(c, contract.ClearedByCloud)
}

// ClearLockout ends the keypad's lockout and its escalation from the
// console (security.clear_lockout's twin), audited by a
// keypad.lockout_cleared event.
func (b *Box) ClearLockout(ctx context.Context) (contract.LockoutCleared, error) {
	var res contract.LockoutCleared
	var err error
	if cerr := b.call(ctx, func() {
		err = b.txn(func(c *txc) error {
			var err error
			res, err = b.clearLockout(c, contract.ClearedByConsole)
			return err
		})
	}); cerr != nil {
		return res, cerr
	}
	return res, err
}

// match decides what an entry opens, or why it opens nothing.
func (b *Box) match(c *txc, entry string) (grant, error) {
	if err := validateCode(entry); err != nil {
		return grant{}, err
	}
	hash := b.st.CodeHash(entry)
	owner, ok := c.tx.CodeOwner(hash)
	if !ok {
		if len(entry) == offline.CodeLen && b.offKey != nil {
			return b.matchOffline(c, entry, hash)
		}
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
	if len(ac.Schedule) > 0 {
		// A weekly schedule is read on the wall clock: it needs one the
		// box trusts, as a time-bound window does.
		if b.cfg.RequireSync && !b.cfg.Synced() {
			return grant{}, contract.Errorf(contract.CodeClockUnsynced, "the clock is not synchronised")
		}
		active, err := activeSchedule(ac, c.now)
		if err != nil {
			return grant{}, err
		}
		if !active {
			return grant{}, contract.Errorf(contract.CodeCodeNotActive, "the code is outside its schedule")
		}
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
