package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"smartboxd/contract"
)

// ErrBadRecord is returned when a stored access code or key record does not
// decode: an unknown format byte, a truncated field or bytes left over.
var ErrBadRecord = errors.New("store: corrupt record")

// Record formats: the first byte of an access code or key value. Records
// written before the binary form are JSON objects and start with '{'.
const (
	formatJSON = '{'
	formatV1   = 0x01
)

// Enumerated strings are written as one byte, their place in the table
// (from 1), or 0 and the string itself. The tables only ever grow at the
// end: a byte written once must keep its meaning.
var (
	typeNames   = []string{contract.TypeOngoing, contract.TypeTimeBound}
	statusNames = []string{contract.StatusUnset, contract.StatusSetting, contract.StatusSet, contract.StatusRemoving, contract.StatusRemoved}
	actionNames = []string{contract.ActionPickup, contract.ActionDropoff}
)

// Flag bits of a record.
const (
	flagStartsAt    = 1 << 0 // access code: StartsAt follows
	flagEndsAt      = 1 << 1 // access code: EndsAt follows
	flagVirtual     = 1 << 0 // key
	flagAnyLocation = 1 << 1 // key
)

// encodeAccessCode is a's binary value (format 1). The id is the record's
// bbolt key and is not repeated. Layout, after the format byte: code hash,
// name, type, status, flags, starts_at and ends_at (when flagged),
// created_at, key id, action, max uses, uses, schedule, errors, warnings.
// Strings and byte slices are a uvarint length and the bytes; numbers are
// varints; a time is its Unix seconds (varint), nanoseconds (uvarint) and
// zone offset in seconds (varint, 0: UTC).
func encodeAccessCode(a *AccessCode) []byte {
	b := make([]byte, 0, 96+len(a.Name)+len(a.KeyID)+len(a.Schedule))
	b = append(b, formatV1)
	b = appendBytes(b, a.CodeHash)
	b = appendString(b, a.Name)
	b = appendEnum(b, a.Type, typeNames)
	b = appendEnum(b, a.Status, statusNames)
	var flags byte
	if a.StartsAt != nil {
		flags |= flagStartsAt
	}
	if a.EndsAt != nil {
		flags |= flagEndsAt
	}
	b = append(b, flags)
	if a.StartsAt != nil {
		b = appendTime(b, *a.StartsAt)
	}
	if a.EndsAt != nil {
		b = appendTime(b, *a.EndsAt)
	}
	b = appendTime(b, a.CreatedAt)
	b = appendString(b, a.KeyID)
	b = appendEnum(b, a.Action, actionNames)
	b = binary.AppendVarint(b, int64(a.MaxUses))
	b = binary.AppendVarint(b, int64(a.Uses))
	b = appendBytes(b, a.Schedule)
	b = appendNotices(b, a.Errors)
	return appendNotices(b, a.Warnings)
}

// decodeAccessCode reads the access code stored under id, in either format.
// The slices it returns are its own.
func decodeAccessCode(id []byte, v []byte) (*AccessCode, error) {
	var a AccessCode
	if len(v) > 0 && v[0] == formatJSON {
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("%w: access code %s: %w", ErrBadRecord, id, err)
		}
		return &a, nil
	}
	r := reader{b: v}
	r.format()
	a.ID = string(id)
	a.CodeHash = r.bytes()
	a.Name = r.string()
	a.Type = r.enum(typeNames)
	a.Status = r.enum(statusNames)
	flags := r.byte()
	if flags&flagStartsAt != 0 {
		t := r.time()
		a.StartsAt = &t
	}
	if flags&flagEndsAt != 0 {
		t := r.time()
		a.EndsAt = &t
	}
	a.CreatedAt = r.time()
	a.KeyID = r.string()
	a.Action = r.enum(actionNames)
	a.MaxUses = r.int()
	a.Uses = r.int()
	if s := r.bytes(); len(s) > 0 {
		a.Schedule = s
	}
	a.Errors = r.notices()
	a.Warnings = r.notices()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: access code %s: %w", ErrBadRecord, id, err)
	}
	return &a, nil
}

// encodeKey is k's binary value (format 1). The id is the record's bbolt
// key. Layout, after the format byte: name, description, fob, notes, pickup
// note, flags, code hash, bin, created_at, updated_at (as encodeAccessCode).
func encodeKey(k *Key) []byte {
	b := make([]byte, 0, 48+len(k.Name)+len(k.Description)+len(k.Fob)+len(k.Notes)+len(k.PickupNote)+len(k.CodeHash))
	b = append(b, formatV1)
	b = appendString(b, k.Name)
	b = appendString(b, k.Description)
	b = appendString(b, k.Fob)
	b = appendString(b, k.Notes)
	b = appendString(b, k.PickupNote)
	var flags byte
	if k.Virtual {
		flags |= flagVirtual
	}
	if k.AnyLocation {
		flags |= flagAnyLocation
	}
	b = append(b, flags)
	b = appendBytes(b, k.CodeHash)
	b = binary.AppendVarint(b, int64(k.Bin))
	b = appendTime(b, k.CreatedAt)
	return appendTime(b, k.UpdatedAt)
}

// decodeKey reads the key stored under id, in either format.
func decodeKey(id []byte, v []byte) (*Key, error) {
	var k Key
	if len(v) > 0 && v[0] == formatJSON {
		if err := json.Unmarshal(v, &k); err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrBadRecord, id, err)
		}
		return &k, nil
	}
	r := reader{b: v}
	r.format()
	k.ID = string(id)
	k.Name = r.string()
	k.Description = r.string()
	k.Fob = r.string()
	k.Notes = r.string()
	k.PickupNote = r.string()
	flags := r.byte()
	k.Virtual = flags&flagVirtual != 0
	k.AnyLocation = flags&flagAnyLocation != 0
	k.CodeHash = r.bytes()
	k.Bin = r.int()
	k.CreatedAt = r.time()
	k.UpdatedAt = r.time()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: key %s: %w", ErrBadRecord, id, err)
	}
	return &k, nil
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEnum(b []byte, s string, table []string) []byte {
	for i, name := range table {
		if s == name {
			return append(b, byte(i+1))
		}
	}
	return appendString(append(b, 0), s)
}

func appendTime(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	return binary.AppendVarint(b, int64(off))
}

func appendNotices(b []byte, ns []Notice) []byte {
	b = binary.AppendUvarint(b, uint64(len(ns)))
	for _, n := range ns {
		b = appendString(b, n.Code)
		b = appendString(b, n.Message)
		b = appendTime(b, n.CreatedAt)
	}
	return b
}

// reader reads a binary record; its first error sticks and every read
// after it returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *reader) format() {
	switch {
	case len(r.b) == 0:
		r.fail("empty value")
	case r.b[0] != formatV1:
		r.fail("unknown format 0x%02x", r.b[0])
	default:
		r.b = r.b[1:]
	}
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	n, size := binary.Uvarint(r.b)
	if size <= 0 {
		r.fail("truncated or overlong number")
		return 0
	}
	r.b = r.b[size:]
	return n
}

func (r *reader) varint() int64 {
	n, size := binary.Varint(r.b)
	if size <= 0 {
		r.fail("truncated or overlong number")
		return 0
	}
	r.b = r.b[size:]
	return n
}

func (r *reader) int() int {
	n := r.varint()
	if n < math.MinInt || n > math.MaxInt {
		r.fail("number %d out of range", n)
		return 0
	}
	return int(n)
}

// raw returns the next length-prefixed field, pointing into the value.
func (r *reader) raw() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("field of %d bytes past the end", n)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) bytes() []byte {
	s := r.raw()
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

func (r *reader) string() string { return string(r.raw()) }

func (r *reader) enum(table []string) string {
	i := int(r.byte())
	switch {
	case r.err != nil:
		return ""
	case i == 0:
		return r.string()
	case i <= len(table):
		return table[i-1]
	}
	r.fail("unknown enumerated value %d", i)
	return ""
}

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	off := r.varint()
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 || off <= -24*3600 || off >= 24*3600 {
		r.fail("bad time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

func (r *reader) notices() []Notice {
	n := r.uvarint()
	// Each notice takes at least five bytes: no count beyond what is left.
	if n > uint64(len(r.b))/5 {
		r.fail("%d notices past the end", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]Notice, 0, n)
	for range n {
		out = append(out, Notice{Code: r.string(), Message: r.string(), CreatedAt: r.time()})
	}
	return out
}

// done reports the first error, or bytes left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes left over", len(r.b))
	}
	return r.err
}

// eventTypes are the event types written as one byte (see appendEnum).
var eventTypes = []string{
	contract.EventDeviceStarted, contract.EventBinUnlocked, contract.EventBinOpenFailed, contract.EventBinDoorHeldOpen,
	contract.EventBinForced, contract.EventKeyDroppedOff, contract.EventKeyPickedUp, contract.EventKeyUpdated,
	contract.EventKeyUnlinked, contract.EventKeyRetired, contract.EventFobLinked, contract.EventFobUnknown,
	contract.EventFobRemoved, contract.EventCodeRejected, contract.EventKeypadLockedOut, contract.EventKeypadLockoutEnded,
	contract.EventKeypadLockoutCleared, contract.EventAccessCodeStatus, contract.EventConsoleLogin, contract.EventConsoleCommand,
	contract.EventConsoleLockedOut, contract.EventInventoryMismatch, contract.EventReaderFault, contract.EventReaderOK,
	contract.EventOutboxOverflow, contract.EventSettingsChanged, contract.EventSnapshotApplied, contract.EventDropoffWrongKey,
	contract.EventDropoffTimeout, contract.EventPickupTimeout, contract.EventOfflineKeySet, contract.EventOfflineRevoked,
	contract.EventStoreRestored, contract.EventSafeMode, contract.EventPowerOnBattery, contract.EventPowerMains,
	contract.EventPowerLow, contract.EventPowerFault, contract.EventPowerOK, contract.EventFirmwareStatus,
}

// encodeStoredEvent is ev's outbox (and history) value, format 1: the
// format byte, the id's bytes (ids are hex: kept as the bytes they spell),
// the box id, the type, the time in Unix milliseconds (events are stamped
// to the millisecond, in UTC), then the data's JSON to the end. The seq is
// the record's bbolt key. Pending writes the event's JSON from it.
func encodeStoredEvent(ev contract.Event) []byte {
	id, err := hex.DecodeString(ev.ID)
	idFlag := byte(1)
	if err != nil || hex.EncodeToString(id) != ev.ID {
		id, idFlag = []byte(ev.ID), 0 // not lower-case hex: kept as it is
	}
	b := make([]byte, 0, 40+len(ev.BoxID)+len(ev.Data))
	b = append(b, formatV1, idFlag)
	b = appendBytes(b, id)
	b = appendString(b, ev.BoxID)
	b = appendEnum(b, ev.Type, eventTypes)
	b = binary.AppendVarint(b, ev.At.UnixMilli())
	return append(b, ev.Data...)
}

// decodeStoredEvent reads the event stored under seq, in either format.
func decodeStoredEvent(seq uint64, v []byte) (contract.Event, error) {
	var ev contract.Event
	if len(v) > 0 && v[0] == formatJSON {
		if err := json.Unmarshal(v, &ev); err != nil {
			return ev, fmt.Errorf("%w: event %d: %w", ErrBadRecord, seq, err)
		}
		return ev, nil
	}
	r := reader{b: v}
	r.format()
	idFlag := r.byte()
	id := r.raw()
	switch {
	case r.err != nil:
	case idFlag == 1:
		ev.ID = hex.EncodeToString(id)
	case idFlag == 0:
		ev.ID = string(id)
	default:
		r.fail("unknown id form %d", idFlag)
	}
	ev.BoxID = r.string()
	ev.Type = r.enum(eventTypes)
	ms := r.varint()
	if r.err != nil {
		return contract.Event{}, fmt.Errorf("%w: event %d: %v", ErrBadRecord, seq, r.err)
	}
	ev.Seq = seq
	ev.At = time.UnixMilli(ms).UTC()
	if len(r.b) > 0 {
		ev.Data = append(json.RawMessage(nil), r.b...)
	}
	return ev, nil
}

// eventJSON is the JSON of the event stored under seq: the value itself
// when it is JSON, else written from the binary form as Append wrote it
// before.
func eventJSON(seq uint64, v []byte) ([]byte, error) {
	if len(v) > 0 && v[0] == formatJSON {
		return bytes.Clone(v), nil
	}
	ev, err := decodeStoredEvent(seq, v)
	if err != nil {
		return nil, err
	}
	return encodeEvent(ev), nil
}
