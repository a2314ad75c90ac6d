package expander

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Expander types, as the configuration names them.
const (
	TypeMCP23017 = "mcp23017"
	TypeMCP23008 = "mcp23008"
	TypePCF8574  = "pcf8574"
	TypePCF8575  = "pcf8575"
)

// ErrUnknownType is returned for an expander type this package does not
// drive.
var ErrUnknownType = errors.New("expander: unknown type")

// ErrBadPin is returned for a pin name the expander's type does not have.
var ErrBadPin = errors.New("expander: no such pin")

// ErrBadAddress is returned for an I2C address the type cannot have.
var ErrBadAddress = errors.New("expander: address out of range")

// ErrUnknownExpander is returned by Resolve for NAME:PIN with a NAME no
// open expander has.
var ErrUnknownExpander = errors.New("expander: unknown expander")

// ErrNoAnswer is returned by Open when the chip does not answer on its bus.
var ErrNoAnswer = errors.New("expander: no answer")

// ErrHalted is returned by a pin's Out and In after its chip was halted.
var ErrHalted = errors.New("expander: halted")

// ErrNoPin is returned by Resolve for a name that is neither an expander
// pin nor a GPIO the host knows.
var ErrNoPin = errors.New("expander: no such GPIO")

// typeInfo is what the package knows of one type without hardware.
type typeInfo struct {
	pins       []string // datasheet names, in bit order (port A/0 first)
	minA, maxA uint16   // address ranges
	minB, maxB uint16   // a second range (PCF8574A), or 0
	latched    bool     // has direction and latch registers (MCP23xxx)
}

var types = map[string]typeInfo{
	TypeMCP23017: {pins: names("GPA", 8, "GPB", 8), minA: 0x20, maxA: 0x27, latched: true},
	TypeMCP23008: {pins: names("GP", 8), minA: 0x20, maxA: 0x27, latched: true},
	// The PCF8574A answers at 0x38-0x3F; it is the same chip otherwise.
	TypePCF8574: {pins: names("P", 8), minA: 0x20, maxA: 0x27, minB: 0x38, maxB: 0x3F},
	TypePCF8575: {pins: names("P0", 8, "P1", 8), minA: 0x20, maxA: 0x27},
}

func names(groups ...any) []string {
	var out []string
	for i := 0; i < len(groups); i += 2 {
		prefix, n := groups[i].(string), groups[i+1].(int)
		for b := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, b))
		}
	}
	return out
}

// Types lists the expander types, sorted.
func Types() []string {
	ts := make([]string, 0, len(types))
	for t := range types {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// PinNames lists the pin names of an expander type in bit order.
func PinNames(typ string) ([]string, error) {
	ti, ok := types[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	return slices.Clone(ti.pins), nil
}

// pinIndex returns the bit number of pin on typ, or an error.
func pinIndex(typ, pin string) (int, error) {
	ti, ok := types[typ]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	i := slices.Index(ti.pins, strings.ToUpper(pin))
	if i < 0 {
		first, last := ti.pins[0], ti.pins[len(ti.pins)-1]
		return 0, fmt.Errorf("%w %q on a %s (%s to %s)", ErrBadPin, pin, typ, first, last)
	}
	return i, nil
}

// CheckPin reports whether pin (the part after NAME:) is a pin of an
// expander of type typ. Pin names are not case sensitive.
func CheckPin(typ, pin string) error {
	_, err := pinIndex(typ, pin)
	return err
}

// CheckAddress reports whether addr is an address an expander of type typ
// can have.
func CheckAddress(typ string, addr int) error {
	ti, ok := types[typ]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	in := func(lo, hi uint16) bool { return lo != 0 && addr >= int(lo) && addr <= int(hi) }
	if in(ti.minA, ti.maxA) || in(ti.minB, ti.maxB) {
		return nil
	}
	if ti.minB != 0 {
		return fmt.Errorf("%w: %#x on a %s (0x%x to 0x%x or 0x%x to 0x%x)", ErrBadAddress, addr, typ, ti.minA, ti.maxA, ti.minB, ti.maxB)
	}
	return fmt.Errorf("%w: %#x on a %s (0x%x to 0x%x)", ErrBadAddress, addr, typ, ti.minA, ti.maxA)
}

// Latched reports whether an expander type has output latches and
// direction registers, so that its outputs can be held at either level
// from start. A PCF857x has neither: its pins are high from power-on, so it
// can hold only an active-low lock off.
func Latched(typ string) bool { return types[typ].latched }

// Split splits an expander pin name NAME:PIN. ok is false for a name
// without a colon, such as a Pi GPIO name.
func Split(name string) (expander, pin string, ok bool) {
	return strings.Cut(name, ":")
}
