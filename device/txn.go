package device

import (
	"errors"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// commit runs fn in one store transaction; when it commits, the state
// document is republished and the outbox drain woken.
func (b *Box) commit(fn func(tx *store.Tx) error) error {
	err := b.st.Update(fn)
	var coded *contract.Error
	if err != nil && !errors.As(err, &coded) {
		// The database refused the write (disk full, read-only, I/O
		// error): nothing was decided. Say so until a write works again.
		b.log.Error("store write failed", "err", err)
		b.setStoreFault(err.Error())
		return err
	}
	b.setStoreFault("")
	if err != nil {
		return err
	}
	b.notifyAppended()
	return nil
}

// setStoreFault records whether the last write failed, for the state
// document (and so the cloud and the console).
func (b *Box) setStoreFault(msg string) {
	b.mu.Lock()
	changed := b.storeFault != msg
	b.storeFault = msg
	b.mu.Unlock()
	if changed {
		if msg != "" {
			b.log.Error("store fault: decisions that cannot be recorded open nothing", "err", msg)
		} else {
			b.log.Info("store writes work again")
		}
		b.notifyChanged()
	}
}

// storeState is the store part of the state document.
func (b *Box) storeState() contract.StoreState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return contract.StoreState{OK: b.storeFault == "", Error: b.storeFault}
}

// txc is one decision being committed: the store transaction, the time the
// decision is taken at, and what the loop does once (and only if) it commits.
type txc struct {
	tx    *store.Tx
	now   time.Time
	after []func()
}

// event appends an event to the outbox in this transaction.
func (c *txc) event(typ string, data any) error {
	_, err := c.tx.Append(typ, c.now, data)
	return err
}

// onCommit runs f on the loop after the transaction commits.
func (c *txc) onCommit(f func()) { c.after = append(c.after, f) }

// putBin writes x's new record and updates the loop's copy on commit.
func (c *txc) putBin(x *bin, rec store.Bin) error {
	rec.ID = x.spec.ID
	if err := c.tx.PutBin(rec); err != nil {
		return err
	}
	c.onCommit(func() { x.rec = rec })
	return nil
}

// txn runs fn as one decision: every state change it makes and every event
// it appends commit together, and its onCommit work runs only after that. It
// is called on the loop only.
func (b *Box) txn(fn func(c *txc) error) error {
	var c *txc
	err := b.commit(func(tx *store.Tx) error {
		c = &txc{tx: tx, now: b.clock.Now()}
		return fn(c)
	})
	if err != nil {
		return err
	}
	for _, f := range c.after {
		f()
	}
	b.publishBins()
	return nil
}
