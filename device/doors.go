package device

import (
	"smartboxd/contract"
)

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
			if s.kind == sessDropoff && s.keyID != "" && (s.virtual || !x.spec.hasReader()) {
				b.sessionEnd(x, s, true)
				return
			}
			// Give the reader time to notice a fob that left just before.
			s.timer.Stop()
			s.timer = b.after(b.cfg.FobAbsent+doorSettle, func() { b.sessionEnd(x, s, true) })
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
			c.onCommit(func() { b.guestOpenFailed(x) })
			return c.event(contract.EventBinOpenFailed, map[string]int{"bin": bin})
		})
	})
}

// DoorHeldOpen reports a door left open. It implements locks.Sink.
func (b *Box) DoorHeldOpen(bin int) { b.binEvent(contract.EventBinDoorHeldOpen, bin) }

// DoorForced reports a door opened without a pulse. It implements locks.Sink.
func (b *Box) DoorForced(bin int) { b.binEvent(contract.EventBinForced, bin) }

func (b *Box) binEvent(typ string, bin int) {
	b.post(func() {
		if b.bins[bin] != nil {
			b.txn(func(c *txc) error { return c.event(typ, map[string]int{"bin": bin}) })
		}
	})
}
