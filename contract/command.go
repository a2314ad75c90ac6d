package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits of a command as the box reads it.
const (
	// MaxIDLen is the longest command id (and key or access code id), in
	// bytes.
	MaxIDLen = 256
	// DefaultMaxPayload is the largest command payload, in bytes.
	DefaultMaxPayload = 256 << 10
	// DefaultMaxSnapshotPayload is the largest sync.snapshot payload.
	DefaultMaxSnapshotPayload = 64 << 20
)

// Limits bound the payloads ParseCommand takes.
type Limits struct {
	MaxPayload         int // every command but sync.snapshot
	MaxSnapshotPayload int // sync.snapshot
}

// DefaultLimits are the contract's limits.
var DefaultLimits = Limits{MaxPayload: DefaultMaxPayload, MaxSnapshotPayload: DefaultMaxSnapshotPayload}

// withDefaults fills in zero limits; a snapshot may always be as large as
// any other command.
func (l Limits) withDefaults() Limits {
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxSnapshotPayload <= 0 {
		l.MaxSnapshotPayload = DefaultMaxSnapshotPayload
	}
	l.MaxSnapshotPayload = max(l.MaxSnapshotPayload, l.MaxPayload)
	return l
}

// Command is one command from the cloud.
type Command struct {
	ID        string
	Type      string
	Data      json.RawMessage // the data object, nil when absent or null; it shares the payload's memory
	ExpiresAt *time.Time
	// BoxID and Counter are the members a signed command's payload adds
	// (§7): the box it is for and the signer's counter; "" and 0 when absent.
	BoxID   string
	Counter uint64
}

// Fingerprint identifies what a command asks, for telling a repeated
// command from a different one sent under the same id: SHA-256 of its type,
// a zero byte, and its data bytes as received (after surrounding white space
// is trimmed; absent or null data is no bytes). The id and expires_at are not
// part of it: a retransmission may carry a later expiry.
func (c Command) Fingerprint() []byte {
	h := sha256.New()
	h.Write([]byte(c.Type))
	h.Write([]byte{0})
	h.Write(c.Data)
	return h.Sum(nil)
}

// Reply answers one command. Result is the encoded result of an OK reply.
type Reply struct {
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *ReplyError     `json:"error,omitempty"`
}

// ReplyError is a failed command's error.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Redactor is a command result that carries a secret (a code the box made
// and sends once). Redacted is the result as the box keeps it for a
// repeated command id: without the secret.
type Redactor interface {
	Redacted() any
}

// ErrorReply is the reply carrying err; an error without a code is
// CodeInternal.
func ErrorReply(id string, err error) Reply {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Message: err.Error()}
	}
	return Reply{ID: id, Error: &ReplyError{Code: e.Code, Message: e.Message}}
}

// OKReply encodes result into the reply for the wire and, once, into the
// reply as kept for a repeated id (redacted when result is a Redactor).
func OKReply(id string, result any) (wire Reply, stored []byte, err error) {
	raw, err := json.Marshal(result)
	if err != nil {
		return Reply{}, nil, fmt.Errorf("contract: encode result: %w", err)
	}
	wire = Reply{ID: id, OK: true, Result: raw}
	keep := wire
	if r, ok := result.(Redactor); ok {
		if keep.Result, err = json.Marshal(r.Redacted()); err != nil {
			return Reply{}, nil, fmt.Errorf("contract: encode result: %w", err)
		}
	}
	stored, err = json.Marshal(keep)
	return wire, stored, err
}

// Encode is the reply's JSON.
func (r Reply) Encode() []byte {
	raw, err := json.Marshal(r)
	if err != nil {
		// Only a Result that is not JSON can fail; say so instead.
		raw, _ = json.Marshal(ErrorReply(r.ID, fmt.Errorf("contract: encode reply: %w", err)))
	}
	return raw
}

// DecodeReply reads a reply the box kept.
func DecodeReply(raw []byte) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return Reply{}, fmt.Errorf("contract: decode reply: %w", err)
	}
	return r, nil
}

// TypeSnapshot is the one command allowed past Limits.MaxPayload.
const TypeSnapshot = "sync.snapshot"

// The offline-code commands of §8.
const (
	TypeOfflineSetKey = "offline.set_key" // {"key": base64 of 32 bytes}
	TypeOfflineRevoke = "offline.revoke"  // {"code": the 14 digits}
)

// ParseCommand reads a command envelope strictly, within lim (zero fields
// take the defaults). It reads the payload of a signed command too, with
// its box_id and counter; checking them is the box's. On failure it returns a cmd.invalid error and whatever
// id could be read ("" if none).
func ParseCommand(payload []byte, lim Limits) (Command, error) {
	lim = lim.withDefaults()
	if len(payload) > lim.MaxSnapshotPayload {
		return Command{ID: PeekID(payload)}, payloadTooLarge(len(payload), lim.MaxSnapshotPayload)
	}
	var env struct {
		ID        *string         `json:"id"`
		Type      *string         `json:"type"`
		Data      json.RawMessage `json:"data"`
		ExpiresAt *string         `json:"expires_at"`
		BoxID     *string         `json:"box_id"`
		Counter   *uint64         `json:"counter"`
	}
	sc := scanner{b: payload, maxDepth: MaxDepth}
	if err := sc.run(); err != nil {
		return Command{ID: PeekID(payload)}, Errorf(CodeCmdInvalid, "%v", err)
	}
	// The envelope is decoded without its data, which is passed on as it
	// lies in payload: a 64 MiB snapshot is neither copied nor read twice.
	envelope := payload
	if sc.dataEnd > 0 {
		envelope = make([]byte, 0, len(payload)-(sc.dataEnd-sc.dataStart)+4)
		envelope = append(append(append(envelope, payload[:sc.dataStart]...), "null"...), payload[sc.dataEnd:]...)
	}
	if err := decodeStrict(envelope, &env); err != nil {
		return Command{ID: PeekID(payload)}, Errorf(CodeCmdInvalid, "%v", err)
	}
	if sc.dataEnd > 0 {
		env.Data = payload[sc.dataStart:sc.dataEnd]
	}
	cmd := Command{}
	if env.ID != nil {
		cmd.ID = *env.ID
	}
	switch {
	case env.ID == nil || *env.ID == "":
		return cmd, Errorf(CodeCmdInvalid, "id: required")
	case len(*env.ID) > MaxIDLen:
		return Command{}, Errorf(CodeCmdInvalid, "id: longer than %d bytes", MaxIDLen)
	case env.Type == nil || *env.Type == "":
		return cmd, Errorf(CodeCmdInvalid, "type: required")
	}
	cmd.Type = *env.Type
	if len(payload) > lim.MaxPayload && cmd.Type != TypeSnapshot {
		return cmd, payloadTooLarge(len(payload), lim.MaxPayload)
	}
	if d := bytes.TrimSpace(env.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return cmd, Errorf(CodeCmdInvalid, "data: must be an object")
		}
		cmd.Data = d
	}
	if env.BoxID != nil {
		cmd.BoxID = *env.BoxID
	}
	if env.Counter != nil {
		if *env.Counter == 0 {
			return cmd, Errorf(CodeCmdInvalid, "counter: must be 1 or more")
		}
		cmd.Counter = *env.Counter
	}
	if env.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *env.ExpiresAt)
		if err != nil {
			return cmd, Errorf(CodeCmdInvalid, "expires_at: not an RFC 3339 time")
		}
		cmd.ExpiresAt = &t
	}
	return cmd, nil
}

func payloadTooLarge(n, limit int) *Error {
	return Errorf(CodeCmdInvalid, "payload too large: %d bytes, at most %d", n, limit)
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields,
// trailing data and everything CheckJSON refuses (bad UTF-8, a member named
// twice or in another case, deep nesting), and names the offending field in
// its error.
func DecodeStrict(raw []byte, v any) error {
	if err := CheckJSON(raw); err != nil {
		return err
	}
	return decodeStrict(raw, v)
}

// decodeStrict is DecodeStrict of raw that CheckJSON has passed.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// DecodeData decodes a command's data object (absent data is {}) strictly
// into v; a failure is cmd.invalid naming the field.
func DecodeData(data []byte, v any) error {
	if len(data) == 0 {
		data = []byte("{}")
	}
	if err := DecodeStrict(data, v); err != nil {
		return Errorf(CodeCmdInvalid, "data.%v", err)
	}
	return nil
}
