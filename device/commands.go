package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"smartboxd/store"
)

// Command is one command from the cloud.
type Command struct {
	ID        string
	Type      string
	Data      json.RawMessage
	ExpiresAt *time.Time
}

// Reply answers one command.
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

// ErrorReply is the reply carrying err.
func ErrorReply(id string, err error) Reply {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Message: err.Error()}
	}
	return Reply{ID: id, Error: &ReplyError{Code: e.Code, Message: e.Message}}
}

const maxIDLen = 256

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, and names the offending field in its error.
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

// ParseCommand reads a command envelope strictly. On failure it returns the
// cmd.invalid error and whatever id could be read ("" if none).
func ParseCommand(payload []byte) (Command, error) {
	var env struct {
		ID        *string         `json:"id"`
		Type      *string         `json:"type"`
		Data      json.RawMessage `json:"data"`
		ExpiresAt *string         `json:"expires_at"`
	}
	if err := decodeStrict(payload, &env); err != nil {
		var loose struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(bytes.NewReader(payload)).Decode(&loose)
		if len(loose.ID) > maxIDLen {
			loose.ID = ""
		}
		return Command{ID: loose.ID}, errf(CodeCmdInvalid, "%v", err)
	}
	cmd := Command{}
	if env.ID != nil {
		cmd.ID = *env.ID
	}
	switch {
	case env.ID == nil || *env.ID == "":
		return cmd, errf(CodeCmdInvalid, "id: required")
	case len(*env.ID) > maxIDLen:
		return Command{}, errf(CodeCmdInvalid, "id: longer than %d bytes", maxIDLen)
	case env.Type == nil || *env.Type == "":
		return cmd, errf(CodeCmdInvalid, "type: required")
	}
	cmd.Type = *env.Type
	if d := bytes.TrimSpace(env.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return cmd, errf(CodeCmdInvalid, "data: must be an object")
		}
		cmd.Data = d
	}
	if env.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *env.ExpiresAt)
		if err != nil {
			return cmd, errf(CodeCmdInvalid, "expires_at: not an RFC 3339 time")
		}
		cmd.ExpiresAt = &t
	}
	return cmd, nil
}

// handler runs one command type inside the decision's transaction.
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
}

// readOnly commands change nothing. They are answered from a read
// transaction, so they still answer while the database refuses writes (a
// full disk): state.get is how the cloud then learns store.ok is false.
var readOnly = map[string]bool{"state.get": true}

// run runs cmd's handler in c and makes its OK reply.
func run(b *Box, h handler, c *txc, cmd Command) (Reply, error) {
	result, err := h(b, c, cmd.Data)
	if err != nil {
		return Reply{}, err
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return Reply{}, fmt.Errorf("device: encode result: %w", err)
	}
	return Reply{ID: cmd.ID, OK: true, Result: raw}, nil
}

// executeReadOnly answers a read-only command and keeps its reply for a
// repeated id when it can.
func (b *Box) executeReadOnly(cmd Command, h handler) Reply {
	var reply Reply
	err := b.st.View(func(tx *store.Tx) error {
		var err error
		reply, err = run(b, h, &txc{tx: tx, now: b.clock.Now()}, cmd)
		return err
	})
	if err != nil {
		reply = ErrorReply(cmd.ID, err)
		if reply.Error.Code == CodeInternal {
			reply.Error.Code = CodeStoreUnavailable
			return reply
		}
	}
	if err := b.commit(func(tx *store.Tx) error { return tx.PutReply(cmd.ID, storedReply(reply)) }); err != nil {
		b.log.Warn("reply not kept for a repeated id", "id", cmd.ID, "err", err)
	}
	return reply
}

// KnownCommand reports whether typ is a command type the box serves.
func KnownCommand(typ string) bool { _, ok := handlers[typ]; return ok }

// Execute runs a command on the decision loop and returns its reply. A
// command id seen before gets the stored reply again and has no second
// effect; the reply is stored in the same transaction as the effect.
func (b *Box) Execute(ctx context.Context, cmd Command) (Reply, error) {
	var r Reply
	if err := b.call(ctx, func() { r = b.execute(cmd) }); err != nil {
		return Reply{}, err
	}
	return r, nil
}

func (b *Box) execute(cmd Command) Reply {
	var prior []byte
	var seen bool
	if err := b.st.View(func(tx *store.Tx) error { prior, seen = tx.Reply(cmd.ID); return nil }); err != nil {
		return ErrorReply(cmd.ID, errf(CodeStoreUnavailable, "%v", err))
	}
	if seen {
		var r Reply
		if json.Unmarshal(prior, &r) == nil {
			return r
		}
	}
	h := handlers[cmd.Type]
	var fail error
	switch {
	case cmd.ExpiresAt != nil && !b.clock.Now().Before(*cmd.ExpiresAt):
		fail = errf(CodeCmdExpired, "the command expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339))
	case h == nil:
		fail = errf(CodeCmdUnknown, "unknown command type %q", cmd.Type)
	}
	var reply Reply
	if fail == nil && readOnly[cmd.Type] {
		return b.executeReadOnly(cmd, h)
	}
	if fail == nil {
		fail = b.txn(func(c *txc) error {
			var err error
			if reply, err = run(b, h, c, cmd); err != nil {
				return err
			}
			return c.tx.PutReply(cmd.ID, storedReply(reply))
		})
		if fail == nil {
			return reply
		}
	}
	reply = ErrorReply(cmd.ID, fail)
	if reply.Error.Code == CodeInternal {
		// The store refused: nothing happened, and the cloud may retry.
		reply.Error.Code = CodeStoreUnavailable
		return reply
	}
	if err := b.st.Update(func(tx *store.Tx) error { return tx.PutReply(cmd.ID, storedReply(reply)) }); err != nil {
		b.log.Error("store reply failed", "err", err)
	}
	return reply
}

// storedReply is the reply as kept for idempotency: without any code it
// echoed (a generated key code is sent once and never stored).
func storedReply(r Reply) []byte {
	if r.OK && len(r.Result) > 0 {
		var m map[string]any
		if json.Unmarshal(r.Result, &m) == nil {
			changed := false
			for _, k := range []string{"key_code", "generated_key_codes"} {
				if _, ok := m[k]; ok {
					delete(m, k)
					changed = true
				}
			}
			if changed {
				r.Result, _ = json.Marshal(m)
			}
		}
	}
	raw, _ := json.Marshal(r)
	return raw
}

func decodeData(data []byte, v any) error {
	if len(data) == 0 {
		data = []byte("{}")
	}
	if err := decodeStrict(data, v); err != nil {
		return errf(CodeCmdInvalid, "data.%v", err)
	}
	return nil
}

// ---- keys ----

// keyData is key.upsert's data; absent fields keep their value on update.
type keyData struct {
	KeyID        *string `json:"key_id"`
	Name         *string `json:"name"`
	Description  *string `json:"description"`
	SerialNumber *string `json:"serial_number"`
	Notes        *string `json:"notes"`
	PickupNote   *string `json:"pickup_note"`
	Virtual      *bool   `json:"virtual"`
	KeyCode      *string `json:"key_code"`
	AnyLocation  *bool   `json:"any_location"`
}

// KeyView is a key as replies and the console show it.
type KeyView struct {
	KeyID        string  `json:"key_id"`
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	SerialNumber *string `json:"serial_number"`
	Notes        string  `json:"notes"`
	PickupNote   string  `json:"pickup_note"`
	Virtual      bool    `json:"virtual"`
	AnyLocation  bool    `json:"any_location"`
	HasKeyCode   bool    `json:"has_key_code"`
	Bin          *int    `json:"bin"`
	KeyCode      string  `json:"key_code,omitempty"` // only when the box made it, once
}

// ViewKey is k's public form.
func ViewKey(k *store.Key) KeyView {
	v := KeyView{KeyID: k.ID, Name: k.Name, Description: k.Description, SerialNumber: strOrNil(k.Fob),
		Notes: k.Notes, PickupNote: k.PickupNote, Virtual: k.Virtual, AnyLocation: k.AnyLocation, HasKeyCode: len(k.CodeHash) > 0}
	if k.Bin != 0 {
		bin := k.Bin
		v.Bin = &bin
	}
	return v
}

// keyEnv is what key validation looks up: the store for one upsert, the
// snapshot's own records for a snapshot.
type keyEnv interface {
	fobOwner(serial string) string
	codeOwner(hash []byte) (store.CodeOwner, bool)
	fobInBin(serial string) bool
	keyCodesEnabled() bool
}

type txKeyEnv struct {
	b *Box
	c *txc
}

func (e txKeyEnv) fobOwner(s string) string                   { return e.c.tx.KeyByFob(s) }
func (e txKeyEnv) codeOwner(h []byte) (store.CodeOwner, bool) { return e.c.tx.CodeOwner(h) }
func (e txKeyEnv) fobInBin(s string) bool                     { return e.b.fobInBin(s) }
func (e txKeyEnv) keyCodesEnabled() bool                      { return e.b.settings.KeyCodesEnabled }

func (b *Box) fobInBin(serial string) bool {
	for _, x := range b.bins {
		if x.rec.Fob == serial || (x.seen.known && x.seen.fob == serial) {
			return true
		}
	}
	return false
}

// normalizeSerial upper-cases a fob serial and checks it is 4 to 20 hex digits.
func normalizeSerial(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n := len(s); n < 4 || n > 20 {
		return "", errf(CodeKeySerialInvalid, "fob serials are 4 to 20 hex digits")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F') {
			return "", errf(CodeKeySerialInvalid, "fob serials are hex digits")
		}
	}
	return s, nil
}

func maxChars(s *string, n int, code, field string) error {
	if s != nil && utf8.RuneCountInString(*s) > n {
		return errf(code, "%s is longer than %d characters", field, n)
	}
	return nil
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// buildKey validates d against old (nil for a new key) and returns the
// record to write and, when the box made a key code, that code.
func (b *Box) buildKey(d keyData, old *store.Key, env keyEnv, now time.Time) (*store.Key, string, error) {
	if d.KeyID == nil || strings.TrimSpace(*d.KeyID) == "" {
		return nil, "", errf(CodeKeyRequired, "key_id is required")
	}
	if len(*d.KeyID) > maxIDLen {
		return nil, "", errf(CodeKeyRequired, "key_id is longer than %d bytes", maxIDLen)
	}
	k := &store.Key{ID: *d.KeyID, CreatedAt: now.UTC().Truncate(time.Second)}
	if old != nil {
		cp := *old
		k = &cp
	}
	if (old == nil && d.Name == nil) || (d.Name != nil && strings.TrimSpace(*d.Name) == "") {
		return nil, "", errf(CodeKeyNameRequired, "name is required")
	}
	if err := errors.Join(
		maxChars(d.Description, 60, CodeKeyDescriptionMax, "description"),
		maxChars(d.Notes, 100, CodeKeyNotesMax, "notes"),
		maxChars(d.PickupNote, 240, CodeKeyPickupNoteMax, "pickup_note")); err != nil {
		var e *Error
		errors.As(err, &e)
		return nil, "", e
	}
	set(&k.Name, d.Name)
	set(&k.Description, d.Description)
	set(&k.Notes, d.Notes)
	set(&k.PickupNote, d.PickupNote)
	set(&k.AnyLocation, d.AnyLocation)
	wasVirtual := old != nil && old.Virtual
	set(&k.Virtual, d.Virtual)
	serialGiven := d.SerialNumber != nil && *d.SerialNumber != ""
	if k.Virtual {
		if serialGiven || k.Fob != "" {
			return nil, "", errf(CodeKeyFobVirtual, "a virtual key has no fob")
		}
		if !env.keyCodesEnabled() {
			return nil, "", errf(CodeCodeDisabled, "enable key codes to use virtual keys")
		}
	} else {
		if d.KeyCode != nil {
			return nil, "", errf(CodeKeyNotVirtual, "only a virtual key takes a key code")
		}
		if wasVirtual && k.Bin != 0 {
			return nil, "", errf(CodeKeyVirtualCheckedIn, "pick the key up before making it physical")
		}
		k.CodeHash = nil
	}
	if serialGiven {
		serial, err := normalizeSerial(*d.SerialNumber)
		if err != nil {
			return nil, "", err
		}
		if owner := env.fobOwner(serial); owner != "" && owner != k.ID {
			return nil, "", errf(CodeKeySerialTaken, "the fob belongs to another key")
		}
		if old != nil && old.Fob != serial && (old.Bin != 0 || env.fobInBin(serial)) {
			return nil, "", errf(CodeKeyAlreadyLinked, "the key or the new fob is checked in")
		}
		k.Fob = serial
	}
	generated := ""
	if k.Virtual {
		switch {
		case d.KeyCode != nil:
			if err := validateCode(*d.KeyCode); err != nil {
				return nil, "", err
			}
			h := b.st.CodeHash(*d.KeyCode)
			if o, ok := env.codeOwner(h); ok && !(o.Kind == store.OwnerKey && o.ID == k.ID) {
				return nil, "", errf(CodeCodeTaken, "the code is taken")
			}
			k.CodeHash = h
		case len(k.CodeHash) == 0:
			code, h, err := b.newKeyCode(env)
			if err != nil {
				return nil, "", err
			}
			generated, k.CodeHash = code, h
		}
	}
	k.UpdatedAt = now.UTC().Truncate(time.Second)
	return k, generated, nil
}

// newKeyCode makes a random 8-digit key code that nothing else uses.
func (b *Box) newKeyCode(env keyEnv) (string, []byte, error) {
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(1e8))
		if err != nil {
			return "", nil, err
		}
		code := fmt.Sprintf("%08d", n.Int64())
		h := b.st.CodeHash(code)
		if _, taken := env.codeOwner(h); !taken {
			return code, h, nil
		}
	}
	return "", nil, errf(CodeCodeTaken, "no free key code")
}

func (b *Box) cmdKeyUpsert(c *txc, data []byte) (any, error) {
	var d keyData
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	var old *store.Key
	if d.KeyID != nil && *d.KeyID != "" {
		var err error
		if old, err = c.tx.Key(*d.KeyID); err != nil {
			return nil, err
		}
	}
	k, generated, err := b.buildKey(d, old, txKeyEnv{b, c}, c.now)
	if err != nil {
		return nil, err
	}
	if err := c.tx.PutKey(k); err != nil {
		return nil, err
	}
	if err := c.event("key.updated", map[string]any{"key_id": k.ID, "created": old == nil}); err != nil {
		return nil, err
	}
	v := ViewKey(k)
	v.KeyCode = generated
	return v, nil
}

type keyIDData struct {
	KeyID *string `json:"key_id"`
}

func (b *Box) loadKey(c *txc, data []byte) (*store.Key, error) {
	var d keyIDData
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	if d.KeyID == nil || *d.KeyID == "" {
		return nil, errf(CodeKeyRequired, "key_id is required")
	}
	k, err := c.tx.Key(*d.KeyID)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errf(CodeKeyNotFound, "no key %q", *d.KeyID)
	}
	return k, nil
}

func (b *Box) cmdKeyUnlink(c *txc, data []byte) (any, error) {
	k, err := b.loadKey(c, data)
	if err != nil {
		return nil, err
	}
	if k.Fob == "" {
		return nil, errf(CodeKeyAlreadyUnlinked, "the key has no fob")
	}
	if k.Bin != 0 || b.fobInBin(k.Fob) {
		return nil, errf(CodeKeyAlreadyLinked, "the key is checked in")
	}
	fob := k.Fob
	k.Fob = ""
	k.UpdatedAt = c.now.UTC().Truncate(time.Second)
	if err := c.tx.PutKey(k); err != nil {
		return nil, err
	}
	if err := c.event("key.unlinked", map[string]string{"key_id": k.ID, "fob": fob}); err != nil {
		return nil, err
	}
	return ViewKey(k), nil
}

func (b *Box) cmdKeyRetire(c *txc, data []byte) (any, error) {
	k, err := b.loadKey(c, data)
	if err != nil {
		return nil, err
	}
	if k.Bin != 0 {
		return nil, errf(CodeKeyRetireDenied, "the key is in bin %d: pick it up first", k.Bin)
	}
	if err := c.tx.DeleteKey(k.ID); err != nil {
		return nil, err
	}
	if err := c.event("key.retired", map[string]string{"key_id": k.ID}); err != nil {
		return nil, err
	}
	return map[string]any{"key_id": k.ID, "retired": true}, nil
}

// ---- access codes ----

type accessCodeData struct {
	AccessCodeID *string    `json:"access_code_id"`
	Code         *string    `json:"code"`
	Name         *string    `json:"name"`
	Type         *string    `json:"type"`
	StartsAt     *time.Time `json:"starts_at"`
	EndsAt       *time.Time `json:"ends_at"`
	KeyID        *string    `json:"key_id"`
	Action       *string    `json:"action"`
}

// acEnv is what access-code validation looks up.
type acEnv interface {
	codeOwner(hash []byte) (store.CodeOwner, bool)
	keyExists(id string) (bool, error)
}

type txACEnv struct{ c *txc }

func (e txACEnv) codeOwner(h []byte) (store.CodeOwner, bool) { return e.c.tx.CodeOwner(h) }
func (e txACEnv) keyExists(id string) (bool, error) {
	k, err := e.c.tx.Key(id)
	return k != nil, err
}

// buildAccessCode validates d against old (nil for a new code) and returns
// the record to write, its status set for now.
func (b *Box) buildAccessCode(d accessCodeData, old *store.AccessCode, env acEnv, now time.Time) (*store.AccessCode, error) {
	bad := func(format string, args ...any) (*store.AccessCode, error) {
		return nil, errf(CodeAccessCodeInvalid, format, args...)
	}
	if d.AccessCodeID == nil || strings.TrimSpace(*d.AccessCodeID) == "" {
		return bad("access_code_id: required")
	}
	if len(*d.AccessCodeID) > maxIDLen {
		return bad("access_code_id: longer than %d bytes", maxIDLen)
	}
	a := &store.AccessCode{ID: *d.AccessCodeID, CreatedAt: now.UTC().Truncate(time.Second)}
	if old != nil {
		cp := *old
		a = &cp
		a.Errors, a.Warnings = nil, nil
	}
	set(&a.Name, d.Name)
	set(&a.Type, d.Type)
	set(&a.Action, d.Action)
	set(&a.KeyID, d.KeyID)
	if d.Type != nil || d.StartsAt != nil || d.EndsAt != nil {
		a.StartsAt, a.EndsAt = d.StartsAt, d.EndsAt
	}
	if utf8.RuneCountInString(a.Name) > 200 {
		return bad("name: longer than 200 characters")
	}
	switch a.Type {
	case store.TypeOngoing:
		if a.StartsAt != nil || a.EndsAt != nil {
			return bad("an ongoing code has no starts_at or ends_at")
		}
	case store.TypeTimeBound:
		if a.StartsAt == nil || a.EndsAt == nil {
			return bad("a time_bound code needs starts_at and ends_at")
		}
		if !a.EndsAt.After(*a.StartsAt) {
			return bad("ends_at must be after starts_at")
		}
		if !now.Before(*a.EndsAt) {
			return bad("ends_at is in the past")
		}
		s, e := a.StartsAt.UTC(), a.EndsAt.UTC()
		a.StartsAt, a.EndsAt = &s, &e
	case "":
		return bad("type: required (ongoing or time_bound)")
	default:
		return bad("type: must be ongoing or time_bound")
	}
	switch a.Action {
	case store.ActionPickup, store.ActionDropoff:
	case "":
		return bad("action: required (pickup or dropoff)")
	default:
		return bad("action: must be pickup or dropoff")
	}
	if a.KeyID == "" {
		return bad("key_id: required")
	}
	if ok, err := env.keyExists(a.KeyID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errf(CodeKeyNotFound, "no key %q", a.KeyID)
	}
	switch {
	case d.Code != nil:
		if err := validateCode(*d.Code); err != nil {
			return nil, err
		}
		a.CodeHash = b.st.CodeHash(*d.Code)
	case old == nil:
		return nil, errf(CodeCodeInvalidLength, "code: required, 4 to 16 digits")
	}
	if o, ok := env.codeOwner(a.CodeHash); ok && !(o.Kind == store.OwnerAccessCode && o.ID == a.ID) {
		return nil, errf(CodeCodeTaken, "the code is taken")
	}
	a.Status = initialStatus(a, now)
	return a, nil
}

func (b *Box) cmdAccessCodeUpsert(c *txc, data []byte) (any, error) {
	var d accessCodeData
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	var old *store.AccessCode
	if d.AccessCodeID != nil && *d.AccessCodeID != "" {
		var err error
		if old, err = c.tx.AccessCode(*d.AccessCodeID); err != nil {
			return nil, err
		}
	}
	a, err := b.buildAccessCode(d, old, txACEnv{c}, c.now)
	if err != nil {
		return nil, err
	}
	if old == nil && c.tx.AccessCodeCount() >= b.cfg.MaxAccessCodes {
		// The box is full: the code is not stored, and says so.
		a.Status = store.StatusUnset
		a.Errors = []store.Notice{notice(CodeFailedToSetOnDevice, c.now)}
		if err := statusEvent(c, a); err != nil {
			return nil, err
		}
		return ViewAccessCode(a), nil
	}
	if err := c.tx.PutAccessCode(a); err != nil {
		return nil, err
	}
	if err := statusEvent(c, a); err != nil {
		return nil, err
	}
	c.onCommit(func() { b.armSchedule(0) })
	return ViewAccessCode(a), nil
}

func (b *Box) cmdAccessCodeDelete(c *txc, data []byte) (any, error) {
	var d struct {
		AccessCodeID *string `json:"access_code_id"`
	}
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	if d.AccessCodeID == nil || *d.AccessCodeID == "" {
		return nil, errf(CodeAccessCodeInvalid, "access_code_id: required")
	}
	a, err := c.tx.AccessCode(*d.AccessCodeID)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errf(CodeAccessCodeNotFound, "no access code %q", *d.AccessCodeID)
	}
	if err := removeCode(c, a); err != nil {
		return nil, err
	}
	return ViewAccessCode(a), nil
}

// ---- bins, settings, state ----

func (b *Box) cmdBinOpen(c *txc, data []byte) (any, error) {
	var d struct {
		Bin *int `json:"bin"`
	}
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	if d.Bin == nil {
		return nil, errf(CodeCmdInvalid, "data.bin: required")
	}
	x := b.bins[*d.Bin]
	if x == nil {
		return nil, errf(CodeBinNotFound, "no bin %d", *d.Bin)
	}
	if err := b.openServiceTx(c, x, "remote"); err != nil {
		return nil, err
	}
	return map[string]any{"bin": *d.Bin, "unlocked": true}, nil
}

func (b *Box) cmdSettingsSet(c *txc, data []byte) (any, error) {
	var d struct {
		KeyCodesEnabled *bool `json:"key_codes_enabled"`
	}
	if err := decodeData(data, &d); err != nil {
		return nil, err
	}
	if d.KeyCodesEnabled == nil {
		return nil, errf(CodeCmdInvalid, "data.key_codes_enabled: required")
	}
	s := b.settings
	s.KeyCodesEnabled = *d.KeyCodesEnabled
	if !s.KeyCodesEnabled && b.settings.KeyCodesEnabled {
		for _, id := range b.binOrder {
			if kid := b.bins[id].rec.KeyID; kid != "" {
				k, err := c.tx.Key(kid)
				if err != nil {
					return nil, err
				}
				if k != nil && k.Virtual {
					return nil, errf(CodeKeyVirtualCheckedIn, "virtual key %q is checked in at bin %d", kid, id)
				}
			}
		}
	}
	if err := c.tx.PutSettings(s); err != nil {
		return nil, err
	}
	if s != b.settings {
		if err := c.event("settings.changed", s); err != nil {
			return nil, err
		}
	}
	c.onCommit(func() {
		b.mu.Lock()
		b.settings = s
		b.mu.Unlock()
	})
	return s, nil
}

func (b *Box) cmdStateGet(c *txc, data []byte) (any, error) {
	if err := decodeData(data, &struct{}{}); err != nil {
		return nil, err
	}
	// The document as it stands inside this decision.
	s := State{Version: b.version.Load(), At: c.now.UTC().Truncate(time.Millisecond), Clock: ClockState{Synced: b.cfg.Synced()}, Settings: b.settings}
	b.mu.Lock()
	s.Bins = append([]BinState(nil), b.pub...)
	b.mu.Unlock()
	s.Store = b.storeState()
	s.Keys = c.tx.KeyCount()
	s.AccessCodes = c.tx.AccessCodeCount()
	o := c.tx.OutboxStats()
	s.Outbox.Depth = o.Depth
	if !o.OldestAt.IsZero() {
		s.Outbox.OldestAt = &o.OldestAt
	}
	return s, nil
}
