package device

import (
	"context"
	"time"

	"smartboxd/contract"
	"smartboxd/store"
)

// handler runs one command type inside the decision's transaction and
// returns its result: a value of the contract's shapes, encoded once for
// the reply (and, redacted, for the reply kept for a repeated id).
type handler func(b *Box, c *txc, data []byte) (result any, err error)

var handlers = map[string]handler{
	"key.upsert":         (*Box).cmdKeyUpsert,
	"key.unlink":         (*Box).cmdKeyUnlink,
	"key.retire":         (*Box).cmdKeyRetire,
	"access_code.upsert": (*Box).cmdAccessCodeUpsert,
	"access_code.delete": (*Box).cmdAccessCodeDelete,
	"bin.open":           (*Box).cmdBinOpen,
	"settings.set":       (*Box).cmdSettingsSet,
	"sync.snapshot":      (*Box).cmdSnapshot,
	"state.get":          (*Box).cmdStateGet,
	"firmware.update":    (*Box).cmdFirmwareUpdate,
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
	var r contract.Reply
	if err := b.call(ctx, func() { r = b.execute(cmd, origin{}) }); err != nil {
		return contract.Reply{}, err
	}
	return r, nil
}

// execute runs cmd from its origin. A signed command's counter is checked
// after the idempotency table (a retransmission gets its reply) and
// recorded with the command's effect, or with its kept reply.
func (b *Box) execute(cmd contract.Command, from origin) contract.Reply {
	var prior []byte
	var seen bool
	var replayed error
	if err := b.st.View(func(tx *store.Tx) error {
		if prior, seen = tx.Reply(cmd.ID); seen || from.kid == "" {
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
		return contract.ErrorReply(cmd.ID, contract.Errorf(contract.CodeStoreUnavailable, "%v", err))
	}
	if seen {
		if r, err := contract.DecodeReply(prior); err == nil {
			return r
		}
	}
	if replayed != nil {
		return contract.ErrorReply(cmd.ID, replayed)
	}
	h := handlers[cmd.Type]
	var fail error
	switch {
	case cmd.ExpiresAt != nil && !b.clock.Now().Before(*cmd.ExpiresAt):
		fail = contract.Errorf(contract.CodeCmdExpired, "the command expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339))
	case h == nil:
		fail = contract.Errorf(contract.CodeCmdUnknown, "unknown command type %q", cmd.Type)
	case readOnly[cmd.Type]:
		return b.executeReadOnly(cmd, from, h)
	default:
		var a answer
		fail = b.txn(func(c *txc) error {
			var err error
			if a, err = run(b, h, c, cmd); err != nil {
				return err
			}
			if err := markCounter(c.tx, from); err != nil {
				return err
			}
			return c.tx.PutReply(cmd.ID, a.stored)
		})
		if fail == nil {
			return a.reply
		}
	}
	a, keep := failed(cmd.ID, fail)
	if keep {
		if err := b.st.Update(func(tx *store.Tx) error { return keepReply(tx, cmd.ID, a.stored, from) }); err != nil {
			b.log.Error("store reply failed", "err", err)
		}
	}
	return a.reply
}

// executeReadOnly answers a read-only command and keeps its reply for a
// repeated id when it can.
func (b *Box) executeReadOnly(cmd contract.Command, from origin, h handler) contract.Reply {
	var a answer
	err := b.st.View(func(tx *store.Tx) error {
		var err error
		a, err = run(b, h, &txc{tx: tx, now: b.clock.Now()}, cmd)
		return err
	})
	if err != nil {
		var keep bool
		if a, keep = failed(cmd.ID, err); !keep {
			return a.reply
		}
	}
	if err := b.commit(func(tx *store.Tx) error { return keepReply(tx, cmd.ID, a.stored, from) }); err != nil {
		b.log.Warn("reply not kept for a repeated id", "id", cmd.ID, "err", err)
	}
	return a.reply
}

// keepReply stores a command's reply without an effect, and its counter.
func keepReply(tx *store.Tx, id string, reply []byte, from origin) error {
	if err := markCounter(tx, from); err != nil {
		return err
	}
	return tx.PutReply(id, reply)
}
