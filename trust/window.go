package trust

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// WindowSize is how far below the highest counter seen a counter may still
// arrive (out of order) and be accepted once.
const WindowSize = 1024

const windowWords = WindowSize / 64

// windowVersion is the first byte of a Window's binary encoding.
const windowVersion = 1

// WindowEncodedSize is the length of a Window's binary encoding: a version
// byte, the highest counter (big-endian) and the 1,024-bit bitmap.
const WindowEncodedSize = 1 + 8 + WindowSize/8

var (
	// ErrReplayed is returned by Window.Check for a counter already seen,
	// one WindowSize or more below the highest seen, or 0 (counters start
	// at 1).
	ErrReplayed = errors.New("trust: replayed counter")
	// ErrWindowCorrupt is returned by Window.UnmarshalBinary for bytes that
	// are not a Window's encoding.
	ErrWindowCorrupt = errors.New("trust: corrupt replay window")
)

// Window is the replay window of one signing key (contract §7): the
// highest counter seen and which of the WindowSize counters up to it have
// been seen. Its zero value has seen nothing. It is not safe for concurrent
// use; store it (MarshalBinary) in the transaction that applies the
// command whose counter it marked.
type Window struct {
	high uint64
	// seen bit i (word i/64, bit i%64) is counter high-i. Bit 0 is set
	// whenever high > 0; bits for counters below 1 are never set.
	seen [windowWords]uint64
}

// Highest returns the highest counter seen, 0 when none.
func (w *Window) Highest() uint64 { return w.high }

// Check returns nil when counter may be accepted, else an error wrapping
// ErrReplayed. It changes nothing.
func (w *Window) Check(counter uint64) error {
	switch {
	case counter == 0:
		return fmt.Errorf("%w: counter 0, counters start at 1", ErrReplayed)
	case counter > w.high:
		return nil
	case w.high-counter >= WindowSize:
		return fmt.Errorf("%w: counter %d is %d or more below the highest seen, %d", ErrReplayed, counter, WindowSize, w.high)
	case w.bit(w.high - counter):
		return fmt.Errorf("%w: counter %d already seen", ErrReplayed, counter)
	}
	return nil
}

// Mark records counter as seen. A counter Check refuses changes nothing.
func (w *Window) Mark(counter uint64) {
	if w.Check(counter) != nil {
		return
	}
	if counter > w.high {
		w.shift(counter - w.high)
		w.high = counter
	}
	w.set(w.high - counter)
}

// Accept is Check followed, when it passes, by Mark.
func (w *Window) Accept(counter uint64) error {
	if err := w.Check(counter); err != nil {
		return err
	}
	w.Mark(counter)
	return nil
}

func (w *Window) bit(i uint64) bool { return w.seen[i/64]&(1<<(i%64)) != 0 }
func (w *Window) set(i uint64)      { w.seen[i/64] |= 1 << (i % 64) }

// shift moves every bit n places up (older), dropping those that leave
// the window.
func (w *Window) shift(n uint64) {
	if n >= WindowSize {
		w.seen = [windowWords]uint64{}
		return
	}
	words, b := int(n/64), n%64
	for i := windowWords - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.seen[j] << b
			if b > 0 && j > 0 {
				v |= w.seen[j-1] >> (64 - b)
			}
		}
		w.seen[i] = v
	}
}

// MarshalBinary returns the WindowEncodedSize-byte encoding of w.
func (w *Window) MarshalBinary() ([]byte, error) {
	b := make([]byte, WindowEncodedSize)
	b[0] = windowVersion
	binary.BigEndian.PutUint64(b[1:], w.high)
	for i, v := range w.seen {
		binary.BigEndian.PutUint64(b[9+8*i:], v)
	}
	return b, nil
}

// UnmarshalBinary sets w from an encoding MarshalBinary made. Anything else
// is an error wrapping ErrWindowCorrupt, and w is left unchanged.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) != WindowEncodedSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrWindowCorrupt, len(b), WindowEncodedSize)
	}
	if b[0] != windowVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrWindowCorrupt, b[0], windowVersion)
	}
	var n Window
	n.high = binary.BigEndian.Uint64(b[1:])
	ones := 0
	for i := range n.seen {
		n.seen[i] = binary.BigEndian.Uint64(b[9+8*i:])
		ones += bits.OnesCount64(n.seen[i])
	}
	switch {
	case n.high == 0 && ones != 0:
		return fmt.Errorf("%w: counters marked with none seen", ErrWindowCorrupt)
	case n.high > 0 && !n.bit(0):
		return fmt.Errorf("%w: highest counter not marked", ErrWindowCorrupt)
	case n.high < WindowSize && n.high > 0 && ones > 0 && n.highestBit() >= n.high:
		return fmt.Errorf("%w: counters below 1 marked", ErrWindowCorrupt)
	}
	*w = n
	return nil
}

// highestBit returns the index of the highest bit set; seen must not be
// all zero.
func (w *Window) highestBit() uint64 {
	for i := windowWords - 1; i >= 0; i-- {
		if v := w.seen[i]; v != 0 {
			return uint64(i*64 + 63 - bits.LeadingZeros64(v))
		}
	}
	return 0
}
