package device

import (
	"context"
	"errors"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// LoginResult is how a console login went.
type LoginResult struct {
	OK        bool
	LockedOut bool      // refused because the console is locked out
	Until     time.Time // when the lockout ends
}

// ConsoleLogin records a console login attempt whose PIN the console has
// checked (pinOK). While the console is locked out every attempt fails; wrong
// PINs escalate like the keypad's. Each attempt is a console.login event.
func (b *Box) ConsoleLogin(ctx context.Context, pinOK bool) (LoginResult, error) {
	var res LoginResult
	var err error
	cerr := b.call(ctx, func() {
		err = b.txn(func(c *txc) error {
			res = LoginResult{}
			if b.console.lockedOut(c.now) {
				res.LockedOut, res.Until = true, b.console.until
				return c.event(contract.EventConsoleLogin, map[string]any{"ok": false, "locked_out": true})
			}
			if err := c.event(contract.EventConsoleLogin, map[string]any{"ok": pinOK}); err != nil {
				return err
			}
			if !pinOK {
				if err := b.countFailure(c, &b.console, contract.EventConsoleLockedOut); err != nil {
					return err
				}
				// After countFailure's own onCommit: did this failure start a lockout?
				c.onCommit(func() {
					if b.console.lockedOut(c.now) {
						res.LockedOut, res.Until = true, b.console.until
					}
				})
				return nil
			}
			res.OK = true
			if !b.console.clean() {
				l := b.console
				l.succeed()
				c.onCommit(func() { b.console = l })
				return c.tx.PutLockout(true, l.record(c.now))
			}
			return nil
		})
	})
	if cerr != nil {
		return res, cerr
	}
	return res, err
}

var errEnough = errors.New("device: enough")

// Audit records a console command (its words, never a PIN or a code: the
// console redacts those) as a console.command event.
func (b *Box) Audit(ctx context.Context, command string) error {
	var err error
	if cerr := b.call(ctx, func() {
		err = b.txn(func(c *txc) error {
			return c.event(contract.EventConsoleCommand, map[string]string{"command": command})
		})
	}); cerr != nil {
		return cerr
	}
	return err
}

// Keys lists every key.
func (b *Box) Keys() ([]contract.KeyView, error) {
	var out []contract.KeyView
	err := b.st.View(func(tx *store.Tx) error {
		return tx.ForEachKey(func(k *store.Key) error { out = append(out, ViewKey(k)); return nil })
	})
	return out, err
}

// AccessCodes lists up to max access codes (never their codes), and how many
// there are in all.
func (b *Box) AccessCodes(max int) ([]contract.AccessCodeView, int, error) {
	var out []contract.AccessCodeView
	total := 0
	err := b.st.View(func(tx *store.Tx) error {
		total = tx.AccessCodeCount()
		err := tx.ForEachAccessCode(func(a *store.AccessCode) error {
			if len(out) >= max {
				return errEnough
			}
			out = append(out, ViewAccessCode(a))
			return nil
		})
		if err == errEnough {
			return nil
		}
		return err
	})
	return out, total, err
}
