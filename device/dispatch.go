package device

import (
	"context"
	"crypto/hmac"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// handler runs one command type inside the decision's transaction and
// returns its result: a value of the contract's shapes, encoded once for
// the reply (and, redacted, for the reply kept for a repeated id).
type handler func(b *Box, c *txc, data []byte) (result any, err error)

// sync.snapshot is not among them: Execute runs it in chunks
// (executeSnapshot).
var handlers = map[string]handler{
	"key.upsert":         (*Box).cmdKeyUpsert,
	"key.unlink":         (*Box).cmdKeyUnlink,
	"key.retire":         (*Box).cmdKeyRetire,
	"access_code.upsert": (*Box).cmdAccessCodeUpsert,
	"access_code.delete": (*Box).cmdAccessCodeDelete,
	"bin.open":           (*Box).cmdBinOpen,
	"settings.set":       (*Box).cmdSettingsSet,
	"state.get":          (*Box).cmdStateGet,

	contract.TypeOfflineSetKey: (*Box).cmdOfflineSetKey,
	contract.TypeOfflineRevoke: (*Box).cmdOfflineRevoke,
	"security.clear_lockout":   (*Box).cmdClearLockout,
	"firmware.update":          (*Box).cmdFirmwareUpdate,
}

// readOnly commands change nothing. They are answered from a read
// transaction, so they still answer while the database refuses writes (a
// full disk): state.get is how the cloud then learns store.ok is false.
var readOnly = map[string]bool{"state.get": true}

// answer is a command's reply for the wire and as kept for a repeated id.
type answer struct {
	reply  contract.Reply
	stored []byte
}

// run runs cmd's handler in c and makes its OK reply.
func run(b *Box, h handler, c *txc, cmd contract.Command) (answer, error) {
	result, err := h(b, c, cmd.Data)
	if err != nil {
		return answer{}, err
	}
	wire, stored, err := contract.OKReply(cmd.ID, result)
	return answer{wire, stored}, err
}

// failed is the answer for a command refused with err. An error without a
// contract code means the store refused: nothing happened and the cloud
// may retry, so that answer is not kept (keep is false).
func failed(id string, err error) (a answer, keep bool) {
	r := contract.ErrorReply(id, err)
	if r.Error.Code == contract.CodeInternal {
		r.Error.Code = contract.CodeStoreUnavailable
		return answer{reply: r}, false
	}
	return answer{reply: r, stored: r.Encode()}, true
}

// Execute runs a command on the decision loop, as a trusted caller's, and
// returns its reply; commands from the cloud come in through Receive. A
// command id seen before gets the stored reply again and has no second
// effect; the reply is stored in the same transaction as the effect.
func (b *Box) Execute(ctx context.Context, cmd contract.Command) (contract.Reply, error) {
	if cmd.Type == contract.TypeSnapshot {
		return b.executeSnapshot(ctx, cmd, origin{})
	}
	var r contract.Reply
	if err := b.call(ctx, func() { r = b.execute(cmd, origin{}) }); err != nil {
		return contract.Reply{}, err
	}
	return r, nil
}

// execute runs cmd from its origin. A command id seen before gets its
// kept reply, or cmd.conflict when the id now comes with another type or
// data. A signed command's counter is checked after that (a retransmission
// gets its reply) and recorded with the command's effect, or with its kept
// reply.
func (b *Box) execute(cmd contract.Command, from origin) contract.Reply {
	if r, done := b.seen(cmd, from); done {
		return r
	}
	keep := func(tx *store.Tx, stored []byte) error { return b.keepReply(tx, cmd, from, stored) }
	h := handlers[cmd.Type]
	var fail error
	switch {
	case cmd.ExpiresAt != nil && !b.clock.Now().Before(*cmd.ExpiresAt):
		fail = contract.Errorf(contract.CodeCmdExpired, "the command expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339))
	case h == nil:
		fail = contract.Errorf(contract.CodeCmdUnknown, "unknown command type %q", cmd.Type)
	case readOnly[cmd.Type]:
		return b.executeReadOnly(cmd, h, keep)
	default:
		var a answer
		fail = b.txn(func(c *txc) error {
			var err error
			if a, err = run(b, h, c, cmd); err != nil {
				return err
			}
			return keep(c.tx, a.stored)
		})
		if fail == nil {
			return a.reply
		}
	}
	a, kept := failed(cmd.ID, fail)
	if kept {
		if err := b.st.Update(func(tx *store.Tx) error { return keep(tx, a.stored) }); err != nil {
			b.log.Error("store reply failed", "err", err)
		}
	}
	return a.reply
}

// executeReadOnly answers a read-only command and keeps its reply for a
// repeated id when it can.
func (b *Box) executeReadOnly(cmd contract.Command, h handler, keep func(*store.Tx, []byte) error) contract.Reply {
	var a answer
	err := b.st.View(func(tx *store.Tx) error {
		var err error
		a, err = run(b, h, &txc{tx: tx, now: b.clock.Now()}, cmd)
		return err
	})
	if err != nil {
		var kept bool
		if a, kept = failed(cmd.ID, err); !kept {
			return a.reply
		}
	}
	if err := b.commit(func(tx *store.Tx) error { return keep(tx, a.stored) }); err != nil {
		b.log.Warn("reply not kept for a repeated id", "id", cmd.ID, "err", err)
	}
	return a.reply
}

// seen answers a command that must not run: one whose id has a kept reply
// (cmd.conflict when the id now comes with another type or data), and a
// signed one whose counter the replay window refuses. done is false when
// the command is to run.
func (b *Box) seen(cmd contract.Command, from origin) (r contract.Reply, done bool) {
	var prior store.StoredReply
	var seen bool
	var replayed error
	if err := b.st.View(func(tx *store.Tx) error {
		if prior, seen = tx.StoredReply(cmd.ID); seen || from.kid == "" {
			return nil
		}
		w, err := window(tx, from)
		if err != nil {
			return err
		}
		if w.Check(from.counter) != nil {
			replayed = errReplayed(from)
		}
		return nil
	}); err != nil {
		return contract.ErrorReply(cmd.ID, contract.Errorf(contract.CodeStoreUnavailable, "%v", err)), true
	}
	if seen {
		// A reply kept without a fingerprint (by an older daemon) answers
		// any command under its id, as it did then.
		if prior.Fingerprint != nil && !hmac.Equal(prior.Fingerprint, cmd.Fingerprint()) {
			return contract.ErrorReply(cmd.ID, contract.Errorf(contract.CodeCmdConflict,
				"command id %q was used by another command (type or data differ); nothing was done", clip(cmd.ID))), true
		}
		if r, err := contract.DecodeReply(prior.Reply); err == nil {
			return r, true
		}
	}
	if replayed != nil {
		return contract.ErrorReply(cmd.ID, replayed), true
	}
	return contract.Reply{}, false
}

// keepReply stores the reply for cmd's id, with the command's fingerprint,
// and the signer's counter, in the transaction of the command's effect (or
// alone when it had none).
func (b *Box) keepReply(tx *store.Tx, cmd contract.Command, from origin, stored []byte) error {
	if err := markCounter(tx, from); err != nil {
		return err
	}
	return tx.PutStoredReply(cmd.ID, store.StoredReply{Reply: stored, Fingerprint: cmd.Fingerprint(), At: b.clock.Now()})
}

// clip shortens an id for a message.
func clip(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}
