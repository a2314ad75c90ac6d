// Package display shows the guest what the box is doing: a small display
// by the keypad and an LED on each bin.
//
// Model is the pure part: it is told what happens (digits typed, an entry
// rejected, a bin opened, ...) and says, for a moment in time, the text to
// show and the state of each bin's LED. It never sees a code: Typed takes
// the number of digits in the keypad's buffer, nothing else, so no digit
// can reach a display. The text, in order of priority:
//
//  1. during a keypad lockout, the seconds left (at most 9999);
//  2. the bin that opened last, "b 7", until its session ends;
//  3. "Err" for ErrFor (2 s) after a rejected entry;
//  4. one dash per digit typed (at most Width);
//  5. nothing ("", a blank display).
//
// A bin's LED is lit while the bin waits for a drop-off or a pickup
// (between Opened and SessionEnded), and blinks (BlinkPeriod on, BlinkPeriod
// off) for BlinkFor (30 s) after its door failed to open (bin.open_failed),
// or until the bin is opened again: long enough for the guest to see which
// bin is stuck and tell someone, short enough that a stuck LED does not
// mislead the next guest.
//
// Panel runs a Model on a clock, shows its text on a Driver (TM1637,
// SSD1306, HD44780 or Sim) only when it changes, and drives the LEDs.
//
// # Drivers
//
// TM1637 bit-bangs a 4-digit 7-segment display on two GPIOs (the box's own
// driver: periph's times its clock with the host package, which only cmd/
// imports). SSD1306 draws block glyphs on a 128x64 OLED on I2C through
// periph's ssd1306. HD44780 drives a character LCD in 4-bit mode on six
// GPIOs. Sim keeps the text, for the sim backend and the console.
package display

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the Model.
const (
	DefaultErrFor      = 2 * time.Second
	DefaultBlinkFor    = 30 * time.Second
	DefaultBlinkPeriod = 250 * time.Millisecond
	DefaultWidth       = 4
	MaxSeconds         = 9999
)

// LED is what a bin's LED does.
type LED uint8

// LED states.
const (
	LEDOff LED = iota
	LEDOn
	LEDBlink
)

func (l LED) String() string {
	switch l {
	case LEDOn:
		return "on"
	case LEDBlink:
		return "blink"
	}
	return "off"
}

// Model is the display's state. The zero value is not usable: use
// NewModel. It is not safe for concurrent use; Panel guards it.
type Model struct {
	// ErrFor, BlinkFor, BlinkPeriod and Width take the defaults when zero.
	ErrFor, BlinkFor, BlinkPeriod time.Duration
	Width                         int

	typed         int
	rejectedUntil time.Time
	lockedUntil   time.Time
	sessions      []int             // bins in a session, oldest first
	failed        map[int]time.Time // bin -> when its blinking started
}

// NewModel returns a Model with the defaults.
func NewModel() *Model {
	return &Model{
		ErrFor: DefaultErrFor, BlinkFor: DefaultBlinkFor,
		BlinkPeriod: DefaultBlinkPeriod, Width: DefaultWidth,
		failed: map[int]time.Time{},
	}
}

// Typed says how many digits the keypad's buffer holds; 0 after it was
// cleared or submitted.
func (m *Model) Typed(n int) { m.typed = max(n, 0) }

// Rejected reports a rejected entry at now.
func (m *Model) Rejected(now time.Time) { m.rejectedUntil = now.Add(m.ErrFor) }

// Opened reports that bin opened for a session (a drop-off or a pickup).
func (m *Model) Opened(bin int) {
	m.sessions = slices.DeleteFunc(m.sessions, func(b int) bool { return b == bin })
	m.sessions = append(m.sessions, bin)
	delete(m.failed, bin)
}

// SessionEnded reports that bin's session ended.
func (m *Model) SessionEnded(bin int) {
	m.sessions = slices.DeleteFunc(m.sessions, func(b int) bool { return b == bin })
}

// OpenFailed reports at now that bin's door never opened; it ends the
// bin's session too.
func (m *Model) OpenFailed(bin int, now time.Time) {
	m.SessionEnded(bin)
	m.failed[bin] = now
}

// LockedOut reports a keypad lockout until until.
func (m *Model) LockedOut(until time.Time) { m.lockedUntil = until }

// LockoutEnded reports that the lockout ended (it ran out, or was cleared).
func (m *Model) LockoutEnded() { m.lockedUntil = time.Time{} }

// Text returns what the display shows at now.
func (m *Model) Text(now time.Time) string {
	if left := m.lockedUntil.Sub(now); left > 0 {
		s := int((left + time.Second - 1) / time.Second) // rounded up: never 0
		return strconv.Itoa(min(s, MaxSeconds))
	}
	if n := len(m.sessions); n > 0 {
		return fmt.Sprintf("b%2d", m.sessions[n-1])
	}
	if now.Before(m.rejectedUntil) {
		return "Err"
	}
	return strings.Repeat("-", min(m.typed, m.width()))
}

func (m *Model) width() int {
	if m.Width <= 0 {
		return DefaultWidth
	}
	return m.Width
}

// LED returns what bin's LED does at now.
func (m *Model) LED(bin int, now time.Time) LED {
	if slices.Contains(m.sessions, bin) {
		return LEDOn
	}
	if at, ok := m.failed[bin]; ok && now.Sub(at) < m.blinkFor() {
		return LEDBlink
	}
	return LEDOff
}

// Lit says whether bin's LED is lit at now: on, or in the on half of a
// blink.
func (m *Model) Lit(bin int, now time.Time) bool {
	switch m.LED(bin, now) {
	case LEDOn:
		return true
	case LEDBlink:
		return (now.Sub(m.failed[bin])/m.blinkPeriod())%2 == 0
	}
	return false
}

func (m *Model) blinkFor() time.Duration {
	if m.BlinkFor <= 0 {
		return DefaultBlinkFor
	}
	return m.BlinkFor
}

func (m *Model) blinkPeriod() time.Duration {
	if m.BlinkPeriod <= 0 {
		return DefaultBlinkPeriod
	}
	return m.BlinkPeriod
}

// Next returns the first moment after now at which Text or Lit may change
// without another input, or the zero time when nothing is pending.
func (m *Model) Next(now time.Time) time.Time {
	var next time.Time
	take := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if left := m.lockedUntil.Sub(now); left > 0 {
		take(now.Add((left-1)%time.Second + 1)) // the next whole second left
	}
	take(m.rejectedUntil)
	for bin, at := range m.failed {
		end := at.Add(m.blinkFor())
		if !now.Before(end) {
			delete(m.failed, bin)
			continue
		}
		p := m.blinkPeriod()
		take(at.Add((now.Sub(at)/p + 1) * p))
	}
	return next
}
