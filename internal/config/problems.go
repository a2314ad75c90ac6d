package config

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
)

// ErrInvalid is returned, wrapped in a *Problems, when a configuration has
// one or more problems; errors.Is(err, ErrInvalid) tells a bad config from
// an unreadable file.
var ErrInvalid = errors.New("config: invalid configuration")

// Problem is one thing wrong with a configuration: the dotted path of the
// field ("mqtt.broker", "hardware.bins[2].id") and what is wrong with it.
// Field is empty only for a problem with the document as a whole, such as
// a YAML syntax error.
type Problem struct {
	Field   string
	Message string
}

// String renders the problem as one line, "field: message".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Problems is the error Parse, Load and Validate return for a bad
// configuration: every problem found, in document order. Its Error is one
// problem per line.
type Problems []Problem

var _ error = (*Problems)(nil)

// Error joins the problems, one per line.
func (ps *Problems) Error() string {
	lines := make([]string, len(*ps))
	for i, p := range *ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold for every *Problems.
func (ps *Problems) Unwrap() error { return ErrInvalid }

// Fields lists the field of each problem, in order.
func (ps *Problems) Fields() []string {
	fields := make([]string, len(*ps))
	for i, p := range *ps {
		fields[i] = p.Field
	}
	return fields
}

// oneLine escapes control characters (a newline in a value quoted from the
// file, say), so that every problem stays on its own line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
