package offline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Epoch is hour 0 of S, the start hour an offline code carries.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	// CodeLen is the number of digits of an offline code.
	CodeLen = 14
	// KeySize is the length in bytes of an offline key.
	KeySize = 32
	// HourModulus is the modulus of the HHHH digits.
	HourModulus = 10000
	// Classes is the number of duration classes, 0 to Classes-1.
	Classes = 10

	epochUnix = 1704067200 // Epoch.Unix()
	tagMod    = 100000000  // 10^8
	prefix    = "smartbox-offline-1|"
)

var (
	// ErrMode is returned when a mode is not 1 to 4.
	ErrMode = errors.New("offline: mode is not 1 to 4")
	// ErrClass is returned when a duration class is not 0 to 9.
	ErrClass = errors.New("offline: duration class is not 0 to 9")
	// ErrKey is returned when an offline key is not 32 bytes long.
	ErrKey = errors.New("offline: key is not 32 bytes")
	// ErrStart is returned when a code would start before Epoch.
	ErrStart = errors.New("offline: start is before 2024-01-01T00:00:00Z")
	// ErrID is returned when a box id or key id is empty.
	ErrID = errors.New("offline: empty id")
	// ErrFormat is returned when a code is not 14 digits.
	ErrFormat = errors.New("offline: code is not 14 digits")
)

// Mode is what an offline code lets its guest do, its first digit.
type Mode int

// The four modes.
const (
	Pickup      Mode = 1 // take a key checked in here
	Dropoff     Mode = 2 // check in a key the box knows that is not here
	PickupOnce  Mode = 3 // Pickup, refused after its first use
	DropoffOnce Mode = 4 // Dropoff, refused after its first use
)

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool { return m >= Pickup && m <= DropoffOnce }

// Pickup reports whether m takes a key out (modes 1 and 3).
func (m Mode) Pickup() bool { return m == Pickup || m == PickupOnce }

// Dropoff reports whether m puts a key in (modes 2 and 4).
func (m Mode) Dropoff() bool { return m == Dropoff || m == DropoffOnce }

// Once reports whether m is refused after its first use (modes 3 and 4).
func (m Mode) Once() bool { return m == PickupOnce || m == DropoffOnce }

// String returns "pickup", "dropoff", "pickup_once" or "dropoff_once", or
// "mode(N)" for an invalid mode.
func (m Mode) String() string {
	switch m {
	case Pickup:
		return "pickup"
	case Dropoff:
		return "dropoff"
	case PickupOnce:
		return "pickup_once"
	case DropoffOnce:
		return "dropoff_once"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

var classHours = [Classes]int{1, 2, 4, 8, 24, 48, 72, 168, 336, 672}

// Hours returns how many hours a code of duration class class is valid.
func Hours(class int) (int, error) {
	if class < 0 || class >= Classes {
		return 0, fmt.Errorf("%w: %d", ErrClass, class)
	}
	return classHours[class], nil
}

// HourOf returns the hour S that contains t: the whole hours from Epoch to
// t, rounded down, negative before Epoch.
func HourOf(t time.Time) int64 {
	d := t.Unix() - epochUnix
	s := d / 3600
	if d%3600 < 0 {
		s--
	}
	return s
}

// HourTime returns the instant hour s begins.
func HourTime(s int64) time.Time {
	return time.Unix(epochUnix+s*3600, 0).UTC()
}

// Window returns the hours a code starting at hour s of duration class
// class is valid: from its start up to, not including, to. An invalid class
// gives an empty window (to == from).
func Window(s int64, class int) (from, to time.Time) {
	from = HourTime(s)
	h, err := Hours(class)
	if err != nil {
		return from, from
	}
	return from, from.Add(time.Duration(h) * time.Hour)
}

// Parsed is an offline code taken apart; Parse makes one.
type Parsed struct {
	Mode    Mode
	Class   int    // duration class, 0 to 9
	HourMod int    // S modulo 10,000: the HHHH digits
	Tag     string // the last eight digits
}

// Parse takes an offline code apart. It checks its form only, not its tag.
func Parse(code string) (Parsed, error) {
	if len(code) != CodeLen {
		return Parsed{}, fmt.Errorf("%w: %d characters", ErrFormat, len(code))
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return Parsed{}, fmt.Errorf("%w: a character at %d is not a digit", ErrFormat, i)
		}
	}
	p := Parsed{
		Mode:  Mode(code[0] - '0'),
		Class: int(code[1] - '0'),
		Tag:   code[6:],
	}
	if !p.Mode.Valid() {
		return Parsed{}, fmt.Errorf("%w: %d", ErrMode, p.Mode)
	}
	for _, c := range code[2:6] {
		p.HourMod = p.HourMod*10 + int(c-'0')
	}
	return p, nil
}

// String formats p as its 14 digits, the inverse of Parse.
func (p Parsed) String() string {
	return fmt.Sprintf("%d%d%04d%s", int(p.Mode), p.Class, p.HourMod, p.Tag)
}

// Start returns the start hour S a box takes for p at instant now: the
// largest S with remainder p.HourMod that is at most now's hour plus one.
// It is negative when that is before Epoch; no code starts there, and Match
// refuses it.
func (p Parsed) Start(now time.Time) int64 {
	top := HourOf(now) + 1
	back := (top - int64(p.HourMod)) % HourModulus
	if back < 0 {
		back += HourModulus
	}
	return top - back
}

// Window returns the hours p is valid if it starts at hour s; see Window.
func (p Parsed) Window(s int64) (from, to time.Time) { return Window(s, p.Class) }

// Key is an offline key ready to make and check codes. It keeps the keyed
// HMAC states it uses, so a check does not hash the key again. It is safe
// for concurrent use.
type Key struct {
	key   []byte
	state sync.Pool // of *macState
}

type macState struct {
	mac hash.Hash
	msg []byte
	sum []byte
}

// NewKey returns key, which must be KeySize bytes, ready for use. It keeps
// a copy of key.
func NewKey(key []byte) (*Key, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrKey, len(key))
	}
	k := &Key{key: append([]byte(nil), key...)}
	return k, nil
}

func (k *Key) get() *macState {
	if st, ok := k.state.Get().(*macState); ok {
		st.mac.Reset() // back to the keyed state, without hashing the key again
		return st
	}
	return &macState{
		mac: hmac.New(sha256.New, k.key),
		msg: make([]byte, 0, 128),
		sum: make([]byte, 0, sha256.Size),
	}
}

func (k *Key) put(st *macState) {
	st.mac.Reset() // keep no trace of a code in the pooled state
	clear(st.msg[:cap(st.msg)])
	st.msg = st.msg[:0]
	k.state.Put(st)
}

// appendHead appends "smartbox-offline-1|" + boxID + "|".
func appendHead(b []byte, boxID string) []byte {
	b = append(b, prefix...)
	b = append(b, boxID...)
	return append(b, '|')
}

// appendTail appends "|" + M + C + "|" + S.
func appendTail(b []byte, mode Mode, class int, s int64) []byte {
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(mode), 10)
	b = strconv.AppendInt(b, int64(class), 10)
	b = append(b, '|')
	return strconv.AppendInt(b, s, 10)
}

// tag sets dst to the eight digits of the tag of msg.
func (st *macState) tag(dst *[8]byte, msg []byte) {
	st.mac.Reset()
	st.mac.Write(msg)
	st.sum = st.mac.Sum(st.sum[:0])
	v := binary.BigEndian.Uint64(st.sum[:8]) % tagMod
	for i := 7; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// Tag returns the eight tag digits of a code for key id keyID on box boxID
// with the given mode, class and start hour s. It does not check its
// arguments; Generate does.
func (k *Key) Tag(boxID, keyID string, mode Mode, class int, s int64) string {
	st := k.get()
	defer k.put(st)
	st.msg = appendHead(st.msg[:0], boxID)
	st.msg = append(st.msg, keyID...)
	st.msg = appendTail(st.msg, mode, class, s)
	var t [8]byte
	st.tag(&t, st.msg)
	return string(t[:])
}

// Generate returns the offline code for key id keyID on box boxID, with the
// given mode and duration class, starting at the hour that contains start.
func (k *Key) Generate(boxID, keyID string, mode Mode, class int, start time.Time) (string, error) {
	if !mode.Valid() {
		return "", fmt.Errorf("%w: %d", ErrMode, mode)
	}
	if _, err := Hours(class); err != nil {
		return "", err
	}
	if boxID == "" || keyID == "" {
		return "", fmt.Errorf("%w: box id %q, key id %q", ErrID, boxID, keyID)
	}
	s := HourOf(start)
	if s < 0 {
		return "", fmt.Errorf("%w: %s", ErrStart, start.UTC().Format(time.RFC3339))
	}
	p := Parsed{Mode: mode, Class: class, HourMod: int(s % HourModulus), Tag: k.Tag(boxID, keyID, mode, class, s)}
	return p.String(), nil
}

// Match reports which of keyIDs, if any, makes p's tag match for a code on
// box boxID starting at hour s (from p.Start). Each candidate costs one
// HMAC and a constant-time comparison; the first that matches is returned.
// A negative s, or a p that Parse would not have made, matches nothing.
func (k *Key) Match(boxID string, p Parsed, s int64, keyIDs []string) (keyID string, ok bool) {
	if s < 0 || !p.Mode.Valid() || p.Class < 0 || p.Class >= Classes ||
		int64(p.HourMod) != s%HourModulus || len(p.Tag) != 8 {
		return "", false
	}
	var want, got [8]byte
	copy(want[:], p.Tag)
	st := k.get()
	defer k.put(st)
	var tail [32]byte
	suffix := appendTail(tail[:0], p.Mode, p.Class, s)
	st.msg = appendHead(st.msg[:0], boxID)
	head := len(st.msg)
	for _, id := range keyIDs {
		st.msg = append(st.msg[:head], id...)
		st.msg = append(st.msg, suffix...)
		st.tag(&got, st.msg)
		if hmac.Equal(got[:], want[:]) {
			return id, true
		}
	}
	return "", false
}

// Generate is NewKey followed by Key.Generate.
func Generate(key []byte, boxID, keyID string, mode Mode, class int, start time.Time) (string, error) {
	k, err := NewKey(key)
	if err != nil {
		return "", err
	}
	return k.Generate(boxID, keyID, mode, class, start)
}

// Tag computes the tag digits as Key.Tag does, for a key of any length.
func Tag(key []byte, boxID, keyID string, mode Mode, class int, s int64) string {
	k := &Key{key: key}
	return k.Tag(boxID, keyID, mode, class, s)
}

// Match is NewKey followed by Key.Match; a key that is not 32 bytes matches
// nothing. A box that checks many codes keeps a Key instead.
func Match(key []byte, boxID string, p Parsed, s int64, keyIDs []string) (keyID string, ok bool) {
	k, err := NewKey(key)
	if err != nil {
		return "", false
	}
	return k.Match(boxID, p, s, keyIDs)
}
