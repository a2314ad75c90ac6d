// Package weekly reads and evaluates the weekly schedule an access code may
// carry (contract §8):
//
//	{"time_zone":"Europe/Berlin","weekly":[{"days":["mon","tue"],"from":"09:00","to":"17:30"}]}
//
// A schedule is active at an instant when, in its IANA time zone, the wall
// clock falls inside one of its segments. A segment starts at from on each
// of its days and ends at to: on the same day when to is later than from,
// otherwise on the next day (to < from runs past midnight). A segment with
// from == to is refused: it is empty or a whole 24 hours, and a box must not
// guess which was meant ("00:00"-"24:00" is a whole day). from is included
// and to is not, to the minute. "24:00" is accepted as a to and means the
// midnight that ends the day; "00:00" as a to means the same. Days are "mon" to "sun", lower case; the
// days of a segment that runs past midnight are the days it starts.
//
// Wall-clock time decides, so across a daylight-saving change a segment
// keeps its clock times and its real length changes: on the spring day a
// wall time that is skipped never occurs (01:00-03:00 in Europe/Berlin
// lasts one hour), on the autumn day a repeated wall time occurs twice
// (02:00-03:00 lasts two).
//
// The package embeds the time zone database (time/tzdata), so a box without
// /usr/share/zoneinfo knows every zone; a system database, where there is
// one, is used first.
package weekly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones for a box without /usr/share/zoneinfo
)

// MaxSegments bounds the segments of one schedule.
const MaxSegments = 64

// ErrInvalid is returned when a schedule is malformed or breaks a rule; the
// error is a *FieldError naming the field.
var ErrInvalid = errors.New("weekly: invalid schedule")

// FieldError is a schedule problem at one field, such as
// schedule.weekly[1].days[0]. It wraps ErrInvalid.
type FieldError struct {
	Field  string // e.g. "schedule.time_zone", "schedule.weekly[1].days[0]"
	Reason string // e.g. `"mo" is not a day`
}

func (e *FieldError) Error() string { return "weekly: " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Detail is the problem without the package prefix, for a reply:
// `schedule.weekly[1].days[0]: "mo" is not a day`.
func (e *FieldError) Detail() string { return e.Field + ": " + e.Reason }

// Schedule is a weekly schedule in one time zone. Active uses it as it was
// last validated, and the zero Schedule is never active: make one with
// Parse or json.Unmarshal, or fill one in and call Validate (again after
// each change). A validated Schedule is safe for concurrent use.
type Schedule struct {
	TimeZone string    `json:"time_zone"`
	Weekly   []Segment `json:"weekly"`

	loc  *time.Location
	segs []span
}

// Segment is one weekly time segment: from and to are "HH:MM".
type Segment struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// span is a validated segment: days as a bit mask by time.Weekday, from
// and to as minutes of the day.
type span struct {
	days     uint8
	from, to int
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} // by time.Weekday

// Parse decodes and validates one schedule object. Members other than
// those above, a second JSON value and every broken rule are refused with
// a *FieldError.
func Parse(raw []byte) (*Schedule, error) {
	var s Schedule
	if err := s.decode(raw); err != nil {
		return nil, err
	}
	return &s, nil
}

// UnmarshalJSON decodes and validates a schedule as Parse does, so that a
// schedule inside an access code is checked as it is read. JSON null
// leaves s alone.
func (s *Schedule) UnmarshalJSON(raw []byte) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return s.decode(raw)
}

// plain is Schedule without its methods, for the decoder.
type plain struct {
	TimeZone string    `json:"time_zone"`
	Weekly   []Segment `json:"weekly"`
}

func (s *Schedule) decode(raw []byte) error {
	if err := checkMembers(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return decodeError(err)
	}
	n := Schedule{TimeZone: p.TimeZone, Weekly: p.Weekly}
	if err := n.Validate(); err != nil {
		return err
	}
	*s = n
	return nil
}

// checkMembers refuses what encoding/json lets through: a second value, a
// member name in another case ("Time_Zone") and a member given twice.
// Values of the wrong type are left for the decoder to report.
func checkMembers(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "schedule", Reason: "more than one JSON value"}
	}
	top, err := exactObject(first, "schedule", "time_zone", "weekly")
	if err != nil {
		return err
	}
	var segs []json.RawMessage
	if json.Unmarshal(top["weekly"], &segs) != nil {
		return nil
	}
	for i, seg := range segs {
		if _, err := exactObject(seg, fmt.Sprintf("schedule.weekly[%d]", i), "days", "from", "to"); err != nil {
			return err
		}
	}
	return nil
}

// exactObject returns the members of v, a well-formed JSON value, when it
// is an object whose member names are each one of names, exactly and once.
func exactObject(v json.RawMessage, field string, names ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, decodeError(err)
		}
		name, _ := tok.(string)
		if !slices.Contains(names, name) {
			return nil, &FieldError{Field: field, Reason: fmt.Sprintf("unknown member %q", name)}
		}
		if _, dup := members[name]; dup {
			return nil, &FieldError{Field: field, Reason: fmt.Sprintf("member %q given twice", name)}
		}
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return nil, decodeError(err)
		}
		members[name] = m
	}
	return members, nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := "schedule"
		if te.Field != "" {
			field += "." + te.Field
		}
		return &FieldError{Field: field, Reason: "not a JSON " + jsonKind(te.Type.Kind().String())}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return &FieldError{Field: "schedule", Reason: "unknown member " + name}
	}
	if errors.Is(err, io.EOF) {
		return &FieldError{Field: "schedule", Reason: "no JSON value"}
	}
	return &FieldError{Field: "schedule", Reason: "not valid JSON: " + msg}
}

func jsonKind(k string) string {
	switch k {
	case "struct":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

// Validate checks s and readies it for Active. A schedule that fails is
// left as it was.
func (s *Schedule) Validate() error {
	loc, err := loadZone(s.TimeZone)
	if err != nil {
		return err
	}
	switch {
	case len(s.Weekly) == 0:
		return &FieldError{Field: "schedule.weekly", Reason: "no segments"}
	case len(s.Weekly) > MaxSegments:
		return &FieldError{Field: "schedule.weekly", Reason: fmt.Sprintf("%d segments, more than %d", len(s.Weekly), MaxSegments)}
	}
	segs := make([]span, len(s.Weekly))
	for i, seg := range s.Weekly {
		field := fmt.Sprintf("schedule.weekly[%d]", i)
		if segs[i], err = seg.check(field); err != nil {
			return err
		}
	}
	s.loc, s.segs = loc, segs
	return nil
}

func loadZone(name string) (*time.Location, error) {
	const field = "schedule.time_zone"
	switch name {
	case "":
		return nil, &FieldError{Field: field, Reason: "missing"}
	case "Local": // the box's own zone, not a place
		return nil, &FieldError{Field: field, Reason: `"Local" is not an IANA time zone`}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &FieldError{Field: field, Reason: fmt.Sprintf("%q is not a known IANA time zone", name)}
	}
	return loc, nil
}

func (seg Segment) check(field string) (span, error) {
	var sp span
	if len(seg.Days) == 0 {
		return span{}, &FieldError{Field: field + ".days", Reason: "no days"}
	}
	for j, d := range seg.Days {
		w := slices.Index(dayNames[:], d)
		if w < 0 {
			return span{}, &FieldError{Field: fmt.Sprintf("%s.days[%d]", field, j), Reason: fmt.Sprintf("%q is not a day (mon to sun)", d)}
		}
		if sp.days&(1<<w) != 0 {
			return span{}, &FieldError{Field: fmt.Sprintf("%s.days[%d]", field, j), Reason: fmt.Sprintf("%q is named twice", d)}
		}
		sp.days |= 1 << w
	}
	var ok bool
	if sp.from, ok = clock(seg.From, false); !ok {
		return span{}, &FieldError{Field: field + ".from", Reason: fmt.Sprintf("%q is not a time HH:MM from 00:00 to 23:59", seg.From)}
	}
	if sp.to, ok = clock(seg.To, true); !ok {
		return span{}, &FieldError{Field: field + ".to", Reason: fmt.Sprintf("%q is not a time HH:MM from 00:00 to 24:00", seg.To)}
	}
	if sp.from == sp.to {
		return span{}, &FieldError{Field: field + ".to", Reason: fmt.Sprintf("%q equals from: a segment cannot be empty (00:00 to 24:00 is a whole day)", seg.To)}
	}
	return sp, nil
}

// clock returns the minute of the day of "HH:MM"; "24:00" is 1440 when
// end is set.
func clock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if end && h == 24 && m == 0 {
		return 24 * 60, true
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// Location returns the schedule's time zone, nil before it is validated.
func (s *Schedule) Location() *time.Location { return s.loc }

// Active reports whether t falls inside one of the schedule's segments, on
// the wall clock of its time zone.
func (s *Schedule) Active(t time.Time) bool {
	if s == nil || s.loc == nil {
		return false
	}
	lt := t.In(s.loc)
	day := uint8(1) << lt.Weekday()
	prev := uint8(1) << ((lt.Weekday() + 6) % 7)
	m := lt.Hour()*60 + lt.Minute()
	for _, sp := range s.segs {
		if sp.to > sp.from {
			if sp.days&day != 0 && m >= sp.from && m < sp.to {
				return true
			}
			continue
		}
		// Past midnight: from on a listed day, or before to on the day after one.
		if sp.days&day != 0 && m >= sp.from || sp.days&prev != 0 && m < sp.to {
			return true
		}
	}
	return false
}

// MarshalJSON writes the schedule's canonical form: its members in the
// order above, without spaces, days and segments in the order given. It is
// what a schedule decoded from JSON is reported as.
func (s Schedule) MarshalJSON() ([]byte, error) {
	p := plain{TimeZone: s.TimeZone, Weekly: s.Weekly}
	if p.Weekly == nil {
		p.Weekly = []Segment{}
	}
	return json.Marshal(p)
}
