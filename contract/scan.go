package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxDepth is how deeply a command's arrays and objects may nest; the
// deepest command (an access code's weekly schedule in a snapshot) needs 8.
const MaxDepth = 32

// peekDepth bounds the nesting that peekID reads through, and so its stack.
const peekDepth = 1 << 16

// ErrSyntax is returned (wrapped) by CheckJSON when the payload is not JSON
// at all; its other refusals are rules of the contract on JSON that
// encoding/json would take.
var ErrSyntax = errors.New("contract: not JSON")

// CheckJSON checks in one pass that raw is exactly one JSON value that a
// command may be: valid UTF-8 in every string (no lone surrogate escapes
// either), at most MaxDepth levels of nesting, and in every object member
// names that appear once and hold no upper-case or non-ASCII letter, as
// every name of the contract is lower snake case. That last rule matters
// because encoding/json matches names case-insensitively (and folds "ſ" to
// "s" and the Kelvin sign to "k"), so "Type" beside "type" would otherwise
// pick one silently.
func CheckJSON(raw []byte) error {
	s := scanner{b: raw, maxDepth: MaxDepth}
	return s.run()
}

// scanner is a hand-written JSON checker: iterative, one byte at a time,
// allocating only for its stack and the member names of open objects.
type scanner struct {
	b        []byte
	i        int
	maxDepth int  // 0: no limit, and policy refusals do not stop the scan
	peek     bool // record the top-level "id"; go on past policy refusals
	stack    []frame
	names    [][]byte // the member names of the open objects, innermost last
	policy   error    // the first refusal that is not a syntax error
	id       []byte   // peek: the raw string of the last top-level "id"
	idOK     bool
	// The span of the top-level "data" member's value, when given.
	dataStart, dataEnd int
	inData             bool
	// Members: the value of every top-level member, when not nil.
	members map[string][]byte
	open    string // the member whose container is open
	openAt  int
}

// frame is one open array or object; names[start:] are an object's
// members so far.
type frame struct {
	object bool
	first  bool // nothing read inside yet
	start  int
}

func (s *scanner) syntax(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, fmt.Sprintf(format, args...), s.i)
}

// refuse records a policy refusal; it stops the scan unless peeking.
func (s *scanner) refuse(format string, args ...any) error {
	if s.policy == nil {
		s.policy = fmt.Errorf(format+" at byte %d", append(args, s.i)...)
	}
	if s.peek {
		return nil
	}
	return s.policy
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) run() error {
	s.space()
	if err := s.value(); err != nil {
		return err
	}
	for {
		if len(s.stack) == 0 {
			s.space()
			if s.i != len(s.b) {
				return s.syntax("data after the value")
			}
			return s.policy
		}
		top := &s.stack[len(s.stack)-1]
		s.space()
		if s.i >= len(s.b) {
			return s.syntax("unexpected end")
		}
		c := s.b[s.i]
		closes := c == '}' && top.object || c == ']' && !top.object
		var err error
		switch {
		case closes:
			s.i++
			s.names = s.names[:top.start]
			s.stack = s.stack[:len(s.stack)-1]
			if s.inData && len(s.stack) == 1 {
				s.dataEnd, s.inData = s.i, false
			}
			if s.members != nil && len(s.stack) == 1 {
				s.members[s.open] = s.b[s.openAt:s.i]
			}
			continue
		case top.first:
			top.first = false
		case c == ',':
			s.i++
			s.space()
		default:
			return s.syntax("unexpected %q", c)
		}
		if top.object {
			err = s.member()
		} else {
			err = s.value()
		}
		if err != nil {
			return err
		}
	}
}

// member reads `"name": value-start` inside an object; a nested value
// leaves its container open on the stack.
func (s *scanner) member() error {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return s.syntax("expected a member name")
	}
	start := s.i
	if err := s.str(); err != nil {
		return err
	}
	name := s.b[start+1 : s.i-1]
	if err := s.checkName(name); err != nil {
		return err
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.syntax("expected ':'")
	}
	s.i++
	s.space()
	if s.peek && len(s.stack) == 1 && string(name) == "id" {
		if s.i < len(s.b) && s.b[s.i] == '"' {
			vs := s.i
			if err := s.str(); err != nil {
				return err
			}
			s.id, s.idOK = s.b[vs:s.i], true
			return nil
		}
		s.idOK = false
	}
	if s.members != nil && len(s.stack) == 1 {
		s.open, s.openAt = string(name), s.i
		if err := s.value(); err != nil {
			return err
		}
		if len(s.stack) == 1 { // a scalar
			s.members[s.open] = s.b[s.openAt:s.i]
		}
		return nil
	}
	if len(s.stack) == 1 && string(name) == "data" {
		s.dataStart, s.inData = s.i, true
		if err := s.value(); err != nil {
			return err
		}
		if len(s.stack) == 1 { // a scalar
			s.dataEnd, s.inData = s.i, false
		}
		return nil
	}
	return s.value()
}

// checkName applies the member name rules to a raw (still escaped) name.
func (s *scanner) checkName(name []byte) error {
	for _, c := range name {
		if c == '\\' || c >= 0x80 || ('A' <= c && c <= 'Z') {
			return s.refuse("member name %q: names are lower-case ASCII, without escapes", name)
		}
	}
	top := s.stack[len(s.stack)-1]
	for _, n := range s.names[top.start:] {
		if string(n) == string(name) {
			return s.refuse("member %q given twice", name)
		}
	}
	s.names = append(s.names, name)
	return nil
}

// value reads a scalar, or opens an array or object (and reads its first
// element or member).
func (s *scanner) value() error {
	if s.i >= len(s.b) {
		return s.syntax("unexpected end")
	}
	switch c := s.b[s.i]; {
	case c == '{' || c == '[':
		if s.maxDepth > 0 && len(s.stack) >= s.maxDepth {
			if err := s.refuse("nested deeper than %d levels", s.maxDepth); err != nil {
				return err
			}
		}
		if len(s.stack) >= peekDepth {
			return s.syntax("nested deeper than %d levels", peekDepth)
		}
		s.i++
		s.stack = append(s.stack, frame{object: c == '{', first: true, start: len(s.names)})
		return nil
	case c == '"':
		return s.str()
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.syntax("unexpected %q", c)
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.syntax("bad literal")
	}
	s.i += len(lit)
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return s.syntax("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.syntax("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.syntax("bad number")
		}
	}
	return nil
}

// str reads a string from its opening quote to just past its closing one.
func (s *scanner) str() error {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return s.syntax("control character in a string")
		case c < 0x80:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				if err := s.refuse("invalid UTF-8 in a string"); err != nil {
					return err
				}
			}
			s.i += n
		}
	}
	return s.syntax("unterminated string")
}

// escape reads one escape sequence; a \u escape of a surrogate must be a
// high one followed by a low one.
func (s *scanner) escape() error {
	if s.i+1 >= len(s.b) {
		return s.syntax("unterminated string")
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return nil
	case 'u':
	default:
		return s.syntax("bad escape")
	}
	r, ok := s.hex4(s.i + 2)
	if !ok {
		return s.syntax("bad \\u escape")
	}
	s.i += 6
	switch {
	case r < 0xd800 || r > 0xdfff:
		return nil
	case r <= 0xdbff && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u':
		if lo, ok := s.hex4(s.i + 2); ok && lo >= 0xdc00 && lo <= 0xdfff {
			s.i += 6
			return nil
		}
	}
	return s.refuse("lone surrogate escape in a string")
}

func (s *scanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Members returns the value of each member of the JSON object obj, each
// sharing obj's memory, after checking obj as CheckJSON does: a large
// object (a snapshot's data) is split without being decoded or copied, so
// that its arrays can be decoded one element at a time.
func Members(obj []byte) (map[string][]byte, error) {
	s := scanner{b: obj, maxDepth: MaxDepth, members: map[string][]byte{}}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, fmt.Errorf("contract: not an object")
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.members, nil
}

// PeekID reads the top-level "id" string of a payload that is not a valid
// command, for its reply: the last one given, read past any refusal but a
// syntax error (nesting too deep, a bad name, bad UTF-8 elsewhere). It
// returns "" when none can be read, for an id that is not valid UTF-8, and
// for one longer than MaxIDLen.
func PeekID(payload []byte) string {
	s := scanner{b: payload, peek: true}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return ""
	}
	_ = s.run() // a syntax error ends the scan; what was read stands
	if !s.idOK || len(s.id) > 6*MaxIDLen+2 || CheckJSON(s.id) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(s.id, &id) != nil || len(id) > MaxIDLen {
		return ""
	}
	return id
}
