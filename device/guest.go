package device

import (
	"time"

	"smartboxd/contract"
)

// Guest is what the person at the box is shown of the box's decisions: the
// guest display and the bins' LEDs (*display.Panel implements it). It is
// told only after a decision has committed, so it never shows what the box
// did not do, and it is never told a code. Its methods are called on the
// decision loop and must return at once. Optional.
type Guest interface {
	// Opened says bin opened for a session (a drop-off or a pickup).
	Opened(bin int)
	// SessionEnded says bin's session ended.
	SessionEnded(bin int)
	// OpenFailed says bin's door never opened (bin.open_failed).
	OpenFailed(bin int)
	// Rejected says a keypad entry was refused.
	Rejected()
	// LockedOut says the keypad is locked out until until (by the box's
	// clock).
	LockedOut(until time.Time)
	// LockoutEnded says the keypad takes entries again before a lockout
	// ran out.
	LockoutEnded()
}

// guestShowFor is how long the guest is shown the bin of a pickup that
// completes as it opens (a virtual key, a bin without a reader): there is
// no session whose end would clear it.
const guestShowFor = 10 * time.Second

// guestOpened tells the guest x opened; immediate says the pickup
// completed at once.
func (b *Box) guestOpened(x *bin, immediate bool) {
	g := b.cfg.Guest
	if g == nil {
		return
	}
	g.Opened(x.spec.ID)
	if immediate {
		b.after(guestShowFor, func() {
			if x.sess == nil {
				g.SessionEnded(x.spec.ID)
			}
		})
	}
}

func (b *Box) guestSessionEnded(x *bin) {
	if g := b.cfg.Guest; g != nil {
		g.SessionEnded(x.spec.ID)
	}
}

func (b *Box) guestOpenFailed(x *bin) {
	if g := b.cfg.Guest; g != nil {
		g.OpenFailed(x.spec.ID)
	}
}

// guestEntry tells the guest how a keypad entry went, once it is
// recorded: wasLocked says the keypad was locked out when it came.
func (b *Box) guestEntry(accepted, wasLocked bool) {
	g := b.cfg.Guest
	if g == nil {
		return
	}
	if accepted {
		if wasLocked {
			g.LockoutEnded()
		}
		return
	}
	g.Rejected()
	if !wasLocked && b.keypad.lockedOut(b.clock.Now()) {
		g.LockedOut(b.keypad.until)
	}
}

// guestStart tells the guest about a lockout restored at start.
func (b *Box) guestStart(now time.Time) {
	if g := b.cfg.Guest; g != nil && b.keypad.lockedOut(now) {
		g.LockedOut(b.keypad.until)
	}
}

// power is what the box knows of its supply; it lives on the loop, and a
// copy under b.mu for the state document.
type power struct {
	known  bool
	source string // contract.PowerMains or contract.PowerBattery
	volts  float64
	low    bool
}

// PowerChanged reports the supply's first reading and every change of its
// source or of low. It implements power.Sink. A change of source is a
// power.on_battery or power.mains event; a battery turning low a power.low
// event, after which the keypad refuses entries (code.rejected reason
// power.low) while remote and console opens still work. A battery no longer
// low, still the source, is a power.on_battery event again. A first reading
// on mains, the usual start, is no event.
func (b *Box) PowerChanged(source string, volts float64, low bool) {
	b.post(func() {
		old := b.power
		now := power{known: true, source: source, volts: volts, low: low}
		volt := map[string]float64{"volts": volts}
		err := b.txn(func(c *txc) error {
			switch {
			case source == contract.PowerMains && old.known && old.source != source:
				if err := c.event(contract.EventPowerMains, volt); err != nil {
					return err
				}
			case source == contract.PowerBattery && (old.source != source || old.low && !low):
				if err := c.event(contract.EventPowerOnBattery, volt); err != nil {
					return err
				}
			}
			if low && !old.low {
				return c.event(contract.EventPowerLow, volt)
			}
			return nil
		})
		if err != nil {
			b.log.Error("power change not recorded", "err", err)
		}
		// The keypad follows the monitor even when the store could not
		// record it: a low battery must not be spent on the keypad.
		b.power = now
		b.mu.Lock()
		b.pubPower = &contract.PowerState{Source: source, Volts: volts}
		b.mu.Unlock()
		b.notifyChanged()
	})
}

// PowerFault reports that the power monitor fails, as a power.fault
// event; what it last read stands. It implements power.Sink.
func (b *Box) PowerFault(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b.post(func() {
		b.txn(func(c *txc) error { return c.event(contract.EventPowerFault, map[string]string{"error": msg}) })
	})
}

// PowerOK reports that a faulted power monitor reads again, as a power.ok
// event. It implements power.Sink.
func (b *Box) PowerOK() {
	b.post(func() { b.txn(func(c *txc) error { return c.event(contract.EventPowerOK, struct{}{}) }) })
}
