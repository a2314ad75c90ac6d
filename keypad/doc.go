// Package keypad turns key presses into code entries for the box.
//
// A Collector, one for the whole box, gathers keys into an entry: '0'-'9'
// append a digit, '*' clears the entry and '#' submits it to a Sink. An
// entry left idle for the key timeout clears itself. The drivers feed the
// Collector through the small Presser interface:
//
//   - Serial reads ASCII keys from a serial port (any io.Reader);
//   - Wiegand decodes 4-bit and 8-bit keypad frames from a FrameSource;
//   - Matrix scans a row/column keypad on GPIO pins.
//
// A simulated keypad needs no driver: the console calls Collector.Press.
//
// Buzzer gives audible feedback on a GPIO output: a short beep per key from
// the Collector, and an accept or reject pattern from the device once it
// has decided about an entry.
//
// # Caveats
//
// Entries are secrets. Nothing in this package logs a key, a digit or an
// entry; at most counts and lengths are logged, at debug level. The
// Collector wipes its buffer after every submit, clear and timeout, but the
// string handed to Sink.KeypadEntry is immutable and is the receiver's to
// keep short-lived.
//
// Sink.KeypadEntry is called synchronously from Press with the Collector's
// lock held, so entries arrive in order; it must not call Press itself and
// should hand the entry to its own goroutine quickly.
package keypad

import "errors"

// ErrInvalidConfig is returned when a keypad driver is built with a
// configuration it cannot work with: a Wiegand key mapping outside 10-15 or
// with '*' and '#' on the same value, a matrix layout that does not match
// its pins.
var ErrInvalidConfig = errors.New("keypad: invalid configuration")

// Presser receives keys, one rune per key press. Collector implements it;
// the drivers are its users.
type Presser interface {
	Press(k rune)
}

// Stats counts what a keypad driver has seen.
type Stats struct {
	// Keys is how many keys were passed on to the Presser.
	Keys uint64
	// Dropped is how many inputs were discarded: noise bytes on a serial
	// keypad, malformed frames on a Wiegand keypad, scans with two or more
	// keys down on a matrix keypad (one per run of such scans).
	Dropped uint64
}
