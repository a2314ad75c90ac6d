package device

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"smartboxd/contract"
	"smartboxd/store"
	"smartboxd/trust"
)

// TrustKey is one key the box obeys, with what it may send.
type TrustKey struct {
	Name   string
	Public ed25519.PublicKey
	Roles  []trust.Role
}

// Trust says whom the box obeys (§7). With no Keys the broker is trusted:
// commands are plain JSON and acks plain {"seq":N}, as in contract v1.
type Trust struct {
	Keys []TrustKey
	// SealCodes refuses a code in plain text (code.plaintext) and makes the
	// box generate no key code (key.code.required).
	SealCodes bool
	// Identity opens sealed codes; nil refuses them as code.sealed.invalid.
	Identity *trust.Identity
}

// enabled reports whether commands must be signed.
func (t *Trust) enabled() bool { return len(t.Keys) > 0 }

func (t *Trust) key(kid string) (TrustKey, bool) {
	for _, k := range t.Keys {
		if k.Name == kid {
			return k, true
		}
	}
	return TrustKey{}, false
}

// origin is who sent a command: the signing key and its counter, or
// nothing for a command from a trusted broker.
type origin struct {
	kid     string
	counter uint64
}

// Receive takes one command payload as it came from the cloud and returns
// the reply to publish. It reads the payload and, with trust keys, checks
// its signature, its box and its key's roles before the decision loop sees
// it; the loop then checks its counter and runs it. A refusal changes
// nothing and is not kept for the command's id. An error means the box did
// not run the command (it is stopping) and nothing should be answered.
func (b *Box) Receive(ctx context.Context, payload []byte) (contract.Reply, error) {
	cmd, from, err := b.admit(payload)
	if err != nil {
		return contract.ErrorReply(cmd.ID, err), nil
	}
	if cmd.Type == contract.TypeSnapshot {
		return b.executeSnapshot(ctx, cmd, from)
	}
	var r contract.Reply
	if err := b.call(ctx, func() { r = b.execute(cmd, from) }); err != nil {
		return contract.Reply{}, err
	}
	return r, nil
}

// admit reads a payload into a command and says who signed it. The
// returned command carries the id for the reply even when refused. It is
// safe for concurrent use: the keys do not change.
func (b *Box) admit(payload []byte) (contract.Command, origin, error) {
	lim := b.cfg.Limits
	if !b.cfg.Trust.enabled() {
		cmd, err := contract.ParseCommand(payload, lim)
		return cmd, origin{}, err
	}
	unauth := func(id, format string, args ...any) (contract.Command, origin, error) {
		return contract.Command{ID: id}, origin{}, contract.Errorf(contract.CodeCmdUnauthenticated, format, args...)
	}
	// The signature's base64 adds a third to the payload it signs.
	if max := lim.MaxSnapshotPayload/3*4 + 4096; len(payload) > max {
		return contract.Command{ID: contract.PeekID(payload)}, origin{},
			contract.Errorf(contract.CodeCmdInvalid, "payload too large: %d bytes, at most %d", len(payload), max)
	}
	if !trust.LooksLikeJWS(payload) {
		return unauth(contract.PeekID(payload), "commands must be signed (a JWS of a configured key)")
	}
	jws, err := trust.Parse(payload)
	if err != nil {
		return unauth("", "not a valid JWS: %v", err)
	}
	id := contract.PeekID(jws.Payload)
	key, ok := b.cfg.Trust.key(jws.Kid)
	if !ok {
		return unauth(id, "unknown key %q", jws.Kid)
	}
	if err := jws.Verify(key.Public); err != nil {
		return unauth(id, "the signature of key %q does not verify", jws.Kid)
	}
	cmd, err := contract.ParseCommand(jws.Payload, lim)
	switch {
	case err != nil:
		return cmd, origin{}, err
	case cmd.BoxID != b.cfg.BoxID:
		return cmd, origin{}, contract.Errorf(contract.CodeCmdWrongBox, "signed for box %q, this is %q", cmd.BoxID, b.cfg.BoxID)
	case cmd.Counter == 0:
		return cmd, origin{}, contract.Errorf(contract.CodeCmdInvalid, "counter: required in a signed command")
	case !trust.Allows(key.Roles, cmd.Type):
		return cmd, origin{}, contract.Errorf(contract.CodeCmdForbidden, "key %q may not send %s", key.Name, cmd.Type)
	}
	return cmd, origin{kid: key.Name, counter: cmd.Counter}, nil
}

// errReplayed is a counter the replay window refuses.
func errReplayed(from origin) error {
	return contract.Errorf(contract.CodeCmdReplayed, "counter %d of key %q was seen before or is too old", from.counter, from.kid)
}

// window reads the stored replay window of from's key.
func window(tx *store.Tx, from origin) (*trust.Window, error) {
	w := new(trust.Window)
	if raw := tx.Counters(from.kid); raw != nil {
		if err := w.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("device: counters of key %q: %w", from.kid, err)
		}
	}
	return w, nil
}

// markCounter records from's counter in tx, with the command's effect or
// its kept reply.
func markCounter(tx *store.Tx, from origin) error {
	if from.kid == "" {
		return nil
	}
	w, err := window(tx, from)
	if err != nil {
		return err
	}
	if err := w.Check(from.counter); err != nil {
		return errReplayed(from)
	}
	w.Mark(from.counter)
	raw, err := w.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.PutCounters(from.kid, raw)
}

// ReadAck reads an event ack from P/events/ack. With trust keys only a JWS
// of an admin or ack key whose payload names this box is taken; any other
// ack is refused and counted (acks_refused in the state document). It is
// safe for concurrent use.
func (b *Box) ReadAck(payload []byte) (uint64, error) {
	if !b.cfg.Trust.enabled() {
		return contract.ParseAck(payload)
	}
	seq, err := b.readSignedAck(payload)
	if err != nil {
		b.acksRefused.Add(1)
		b.notifyChanged()
	}
	return seq, err
}

// ErrAckRefused is returned by ReadAck for an ack that is not signed by a
// key allowed to ack, or not for this box.
var ErrAckRefused = errors.New("device: event ack refused")

func (b *Box) readSignedAck(payload []byte) (uint64, error) {
	if len(payload) > contract.MaxAckPayload*2 || !trust.LooksLikeJWS(payload) {
		return 0, fmt.Errorf("%w: not a JWS", ErrAckRefused)
	}
	jws, err := trust.Parse(payload)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrAckRefused, err)
	}
	key, ok := b.cfg.Trust.key(jws.Kid)
	if !ok || !trust.AllowsAck(key.Roles) {
		return 0, fmt.Errorf("%w: key %q may not ack", ErrAckRefused, jws.Kid)
	}
	if err := jws.Verify(key.Public); err != nil {
		return 0, fmt.Errorf("%w: bad signature of key %q", ErrAckRefused, jws.Kid)
	}
	box, seq, err := contract.ParseSignedAck(jws.Payload)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrAckRefused, err)
	}
	if box != b.cfg.BoxID {
		return 0, fmt.Errorf("%w: for box %q", ErrAckRefused, box)
	}
	return seq, nil
}

// openCode turns a command's plain or sealed code into the code's digits:
// nil when neither is given. field names the plain member for errors.
func (b *Box) openCode(plain, sealed *string, field string) (*string, error) {
	switch {
	case plain != nil && sealed != nil:
		return nil, contract.Errorf(contract.CodeCmdInvalid, "data.%s: give %s or %s_sealed, not both", field, field, field)
	case plain != nil && b.cfg.Trust.SealCodes:
		return nil, contract.Errorf(contract.CodeCodePlaintext, "%s must be sealed (%s_sealed): the box takes no code in plain text", field, field)
	case plain != nil:
		return plain, nil
	case sealed == nil:
		return nil, nil
	case b.cfg.Trust.Identity == nil:
		return nil, contract.Errorf(contract.CodeCodeSealedInvalid, "%s_sealed: this box has no identity to open it", field)
	}
	raw, err := b.cfg.Trust.Identity.Open(*sealed)
	if err != nil {
		return nil, contract.Errorf(contract.CodeCodeSealedInvalid, "%s_sealed does not open with this box's seal_key", field)
	}
	code := string(raw)
	return &code, nil
}
