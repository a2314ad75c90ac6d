package weekly

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, raw string) *Schedule {
	t.Helper()
	s, err := Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func one(zone, days, from, to string) string {
	return fmt.Sprintf(`{"time_zone":%q,"weekly":[{"days":[%s],"from":%q,"to":%q}]}`, zone, days, from, to)
}

type at struct {
	t    string // RFC 3339
	want bool
}

func checkActive(t *testing.T, s *Schedule, cases []at) {
	t.Helper()
	for _, c := range cases {
		tm := utc(c.t)
		if got := s.Active(tm); got != c.want {
			t.Errorf("Active(%s = %s local) = %v, want %v", c.t, tm.In(s.Location()).Format("Mon 15:04:05 MST"), got, c.want)
		}
	}
}

// TestDaylightSaving checks segments on the days the clocks change, with
// instants written in UTC so that the expectations do not lean on the
// conversion under test.
func TestDaylightSaving(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		cases    []at
	}{
		// Europe/Berlin springs forward on 2025-03-30 at 01:00Z: 02:00 CET becomes 03:00 CEST.
		{"berlin spring 01:00-03:00 lasts an hour", one("Europe/Berlin", `"sun"`, "01:00", "03:00"), []at{
			{"2025-03-29T23:59:59Z", false}, // 00:59:59 CET
			{"2025-03-30T00:00:00Z", true},  // 01:00 CET
			{"2025-03-30T00:59:59Z", true},  // 01:59:59 CET
			{"2025-03-30T01:00:00Z", false}, // 03:00 CEST
		}},
		{"berlin spring 02:00-04:00 starts at 03:00", one("Europe/Berlin", `"sun"`, "02:00", "04:00"), []at{
			{"2025-03-30T00:59:59Z", false}, // 01:59:59 CET
			{"2025-03-30T01:00:00Z", true},  // 03:00 CEST
			{"2025-03-30T01:59:59Z", true},  // 03:59:59 CEST
			{"2025-03-30T02:00:00Z", false}, // 04:00 CEST
		}},
		{"berlin spring 02:00-02:30 never happens", one("Europe/Berlin", `"sun"`, "02:00", "02:30"), []at{
			{"2025-03-30T00:59:59Z", false},
			{"2025-03-30T01:00:00Z", false},
			{"2025-03-30T01:29:00Z", false},
			{"2025-04-06T00:00:00Z", true}, // a week later, 02:00 CEST
		}},
		{"berlin spring 09:00-17:00", one("Europe/Berlin", `"sun"`, "09:00", "17:00"), []at{
			{"2025-03-30T06:59:59Z", false}, // 08:59:59 CEST
			{"2025-03-30T07:00:00Z", true},  // 09:00 CEST
			{"2025-03-30T14:59:59Z", true},
			{"2025-03-30T15:00:00Z", false},
			{"2025-03-23T08:00:00Z", true},  // the Sunday before, in CET
			{"2025-03-23T07:59:59Z", false}, // 08:59:59 CET
		}},
		// Europe/Berlin falls back on 2025-10-26 at 01:00Z: 03:00 CEST becomes 02:00 CET.
		{"berlin autumn 02:00-03:00 lasts two hours", one("Europe/Berlin", `"sun"`, "02:00", "03:00"), []at{
			{"2025-10-25T23:59:59Z", false}, // 01:59:59 CEST
			{"2025-10-26T00:00:00Z", true},  // 02:00 CEST
			{"2025-10-26T00:59:59Z", true},  // 02:59:59 CEST
			{"2025-10-26T01:00:00Z", true},  // 02:00 CET
			{"2025-10-26T01:59:59Z", true},  // 02:59:59 CET
			{"2025-10-26T02:00:00Z", false}, // 03:00 CET
		}},
		{"berlin autumn 09:00-17:00", one("Europe/Berlin", `"sun"`, "09:00", "17:00"), []at{
			{"2025-10-26T07:59:59Z", false}, // 08:59:59 CET
			{"2025-10-26T08:00:00Z", true},
			{"2025-10-26T15:59:59Z", true},
			{"2025-10-26T16:00:00Z", false},
		}},
		// America/New_York springs forward on 2025-03-09 at 07:00Z: 02:00 EST becomes 03:00 EDT.
		{"new york spring 01:00-03:00", one("America/New_York", `"sun"`, "01:00", "03:00"), []at{
			{"2025-03-09T05:59:59Z", false}, // 00:59:59 EST
			{"2025-03-09T06:00:00Z", true},  // 01:00 EST
			{"2025-03-09T06:59:59Z", true},
			{"2025-03-09T07:00:00Z", false}, // 03:00 EDT
		}},
		{"new york spring 02:00-04:00", one("America/New_York", `"sun"`, "02:00", "04:00"), []at{
			{"2025-03-09T06:59:59Z", false}, // 01:59:59 EST
			{"2025-03-09T07:00:00Z", true},  // 03:00 EDT
			{"2025-03-09T07:59:59Z", true},
			{"2025-03-09T08:00:00Z", false}, // 04:00 EDT
		}},
		{"new york spring 09:00-17:00", one("America/New_York", `"sun"`, "09:00", "17:00"), []at{
			{"2025-03-09T12:59:59Z", false},
			{"2025-03-09T13:00:00Z", true}, // 09:00 EDT
			{"2025-03-09T20:59:59Z", true},
			{"2025-03-09T21:00:00Z", false},
		}},
		// America/New_York falls back on 2025-11-02 at 06:00Z: 02:00 EDT becomes 01:00 EST.
		{"new york autumn 01:00-02:00 lasts two hours", one("America/New_York", `"sun"`, "01:00", "02:00"), []at{
			{"2025-11-02T04:59:59Z", false}, // 00:59:59 EDT
			{"2025-11-02T05:00:00Z", true},  // 01:00 EDT
			{"2025-11-02T05:59:59Z", true},
			{"2025-11-02T06:00:00Z", true}, // 01:00 EST
			{"2025-11-02T06:59:59Z", true},
			{"2025-11-02T07:00:00Z", false}, // 02:00 EST
		}},
		{"new york autumn 09:00-17:00", one("America/New_York", `"sun"`, "09:00", "17:00"), []at{
			{"2025-11-02T13:59:59Z", false},
			{"2025-11-02T14:00:00Z", true}, // 09:00 EST
			{"2025-11-02T21:59:59Z", true},
			{"2025-11-02T22:00:00Z", false},
		}},
		{"new york autumn overnight sat 23:00-02:00", one("America/New_York", `"sat"`, "23:00", "02:00"), []at{
			{"2025-11-02T02:59:59Z", false}, // sat 22:59:59 EDT
			{"2025-11-02T03:00:00Z", true},  // sat 23:00 EDT
			{"2025-11-02T06:30:00Z", true},  // sun 01:30 EST, the second time
			{"2025-11-02T07:00:00Z", false}, // sun 02:00 EST
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkActive(t, mustParse(t, tt.schedule), tt.cases)
		})
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		cases    []at
	}{
		// 2025-06-13 is a Friday; Berlin is at UTC+2 (CEST).
		{"past midnight fri 22:00-02:00", one("Europe/Berlin", `"fri"`, "22:00", "02:00"), []at{
			{"2025-06-13T19:59:59Z", false}, // fri 21:59:59
			{"2025-06-13T20:00:00Z", true},  // fri 22:00
			{"2025-06-13T21:59:00Z", true},  // fri 23:59
			{"2025-06-13T22:00:00Z", true},  // sat 00:00
			{"2025-06-13T23:59:59Z", true},  // sat 01:59:59
			{"2025-06-14T00:00:00Z", false}, // sat 02:00
			{"2025-06-14T20:00:00Z", false}, // sat 22:00: sat is not listed
			{"2025-06-12T22:30:00Z", false}, // fri 00:30: thu is not listed
			{"2025-06-20T20:00:00Z", true},  // the next fri 22:00
		}},
		{"sunday past midnight into monday", one("UTC", `"sun"`, "22:00", "02:00"), []at{
			{"2025-06-15T21:59:59Z", false},
			{"2025-06-15T22:00:00Z", true},
			{"2025-06-16T01:59:59Z", true}, // mon
			{"2025-06-16T02:00:00Z", false},
			{"2025-06-15T01:00:00Z", false}, // sun 01:00: sat not listed
		}},
		{"a minute short of 24 hours", one("UTC", `"mon"`, "09:00", "08:59"), []at{
			{"2025-06-16T08:59:59Z", false},
			{"2025-06-16T09:00:00Z", true},
			{"2025-06-16T23:59:59Z", true},
			{"2025-06-17T08:58:59Z", true}, // tue
			{"2025-06-17T08:59:00Z", false},
		}},
		{"00:00-24:00 is the whole day", one("UTC", `"wed"`, "00:00", "24:00"), []at{
			{"2025-06-17T23:59:59Z", false},
			{"2025-06-18T00:00:00Z", true},
			{"2025-06-18T23:59:59Z", true},
			{"2025-06-19T00:00:00Z", false},
		}},
		{"to 00:00 ends at midnight", one("UTC", `"wed"`, "22:00", "00:00"), []at{
			{"2025-06-18T21:59:59Z", false},
			{"2025-06-18T22:00:00Z", true},
			{"2025-06-18T23:59:59Z", true},
			{"2025-06-19T00:00:00Z", false},
		}},
		{"to 24:00 ends at midnight", one("UTC", `"wed"`, "22:00", "24:00"), []at{
			{"2025-06-18T21:59:59Z", false},
			{"2025-06-18T23:59:59Z", true},
			{"2025-06-19T00:00:00Z", false},
		}},
		{"minutes: to is excluded", one("UTC", `"mon","tue"`, "09:00", "17:30"), []at{
			{"2025-06-16T08:59:59.999Z", false},
			{"2025-06-16T09:00:00Z", true},
			{"2025-06-17T17:29:59.999Z", true},
			{"2025-06-17T17:30:00Z", false},
			{"2025-06-18T12:00:00Z", false}, // wed
		}},
		// 2025-06-16T03:00Z is Monday in UTC and Sunday 20:00 PDT.
		{"the zone's day, not UTC's: sunday", one("America/Los_Angeles", `"sun"`, "18:00", "23:00"), []at{
			{"2025-06-16T03:00:00Z", true},
		}},
		{"the zone's day, not UTC's: monday", one("America/Los_Angeles", `"mon"`, "00:00", "24:00"), []at{
			{"2025-06-16T03:00:00Z", false},
			{"2025-06-16T07:00:00Z", true}, // mon 00:00 PDT
		}},
		{"several segments", `{"time_zone":"Europe/Berlin","weekly":[
			{"days":["mon","tue","wed","thu","fri"],"from":"08:00","to":"12:00"},
			{"days":["sat"],"from":"10:00","to":"11:00"}]}`, []at{
			{"2025-06-16T06:00:00Z", true},  // mon 08:00
			{"2025-06-16T10:00:00Z", false}, // mon 12:00
			{"2025-06-14T08:30:00Z", true},  // sat 10:30
			{"2025-06-15T08:30:00Z", false}, // sun 10:30
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkActive(t, mustParse(t, tt.schedule), tt.cases)
		})
	}
}

func TestNotValidatedIsNeverActive(t *testing.T) {
	noon := utc("2025-06-16T12:00:00Z")
	s := &Schedule{TimeZone: "UTC", Weekly: []Segment{{Days: []string{"mon"}, From: "00:00", To: "24:00"}}}
	if s.Active(noon) {
		t.Error("an unvalidated schedule is active")
	}
	var nilSchedule *Schedule
	if nilSchedule.Active(noon) {
		t.Error("a nil schedule is active")
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if !s.Active(noon) {
		t.Error("not active once validated")
	}
}

func TestValidationErrors(t *testing.T) {
	seg := `{"days":["mon"],"from":"09:00","to":"17:00"}`
	tests := []struct {
		name, raw, field, reason string
	}{
		{"unknown zone", `{"time_zone":"Mars/Olympus","weekly":[` + seg + `]}`, "schedule.time_zone", `"Mars/Olympus" is not a known IANA time zone`},
		{"empty zone", `{"time_zone":"","weekly":[` + seg + `]}`, "schedule.time_zone", "missing"},
		{"no zone", `{"weekly":[` + seg + `]}`, "schedule.time_zone", "missing"},
		{"Local", `{"time_zone":"Local","weekly":[` + seg + `]}`, "schedule.time_zone", `"Local" is not an IANA time zone`},
		{"a path", `{"time_zone":"../etc/passwd","weekly":[` + seg + `]}`, "schedule.time_zone", "not a known IANA time zone"},
		{"an absolute path", `{"time_zone":"/usr/share/zoneinfo/UTC","weekly":[` + seg + `]}`, "schedule.time_zone", "not a known IANA time zone"},
		{"no weekly", `{"time_zone":"UTC"}`, "schedule.weekly", "no segments"},
		{"empty weekly", `{"time_zone":"UTC","weekly":[]}`, "schedule.weekly", "no segments"},
		{"null weekly", `{"time_zone":"UTC","weekly":null}`, "schedule.weekly", "no segments"},
		{"too many segments", `{"time_zone":"UTC","weekly":[` + strings.Repeat(seg+",", MaxSegments) + seg + `]}`, "schedule.weekly", "65 segments, more than 64"},
		{"not a day", `{"time_zone":"UTC","weekly":[` + seg + `,{"days":["mo"],"from":"09:00","to":"17:00"}]}`, "schedule.weekly[1].days[0]", `"mo" is not a day (mon to sun)`},
		{"day in capitals", `{"time_zone":"UTC","weekly":[{"days":["mon","Tue"],"from":"09:00","to":"17:00"}]}`, "schedule.weekly[0].days[1]", `"Tue" is not a day`},
		{"no days", `{"time_zone":"UTC","weekly":[{"days":[],"from":"09:00","to":"17:00"}]}`, "schedule.weekly[0].days", "no days"},
		{"days missing", `{"time_zone":"UTC","weekly":[{"from":"09:00","to":"17:00"}]}`, "schedule.weekly[0].days", "no days"},
		{"duplicate day", `{"time_zone":"UTC","weekly":[{"days":["mon","tue","mon"],"from":"09:00","to":"17:00"}]}`, "schedule.weekly[0].days[2]", `"mon" is named twice`},
		{"from 24:00", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"24:00","to":"01:00"}]}`, "schedule.weekly[0].from", `"24:00" is not a time HH:MM from 00:00 to 23:59`},
		{"from 9:00", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"9:00","to":"17:00"}]}`, "schedule.weekly[0].from", `"9:00" is not a time`},
		{"from missing", `{"time_zone":"UTC","weekly":[{"days":["mon"],"to":"17:00"}]}`, "schedule.weekly[0].from", `"" is not a time`},
		{"to 24:01", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"24:01"}]}`, "schedule.weekly[0].to", `"24:01" is not a time HH:MM from 00:00 to 24:00`},
		{"to 17:60", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"17:60"}]}`, "schedule.weekly[0].to", `"17:60" is not a time`},
		{"to with seconds", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"17:00:00"}]}`, "schedule.weekly[0].to", `"17:00:00" is not a time`},
		{"to 17.00", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"17.00"}]}`, "schedule.weekly[0].to", `"17.00" is not a time`},
		{"from equal to", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"09:00"}]}`, "schedule.weekly[0].to", `"09:00" equals from`},
		{"midnight to midnight", `{"time_zone":"UTC","weekly":[` + seg + `,{"days":["sun"],"from":"00:00","to":"00:00"}]}`, "schedule.weekly[1].to", `"00:00" equals from`},
		{"to with a sign", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"+1:00"}]}`, "schedule.weekly[0].to", `"+1:00" is not a time`},
		{"unknown member", `{"time_zone":"UTC","weekly":[` + seg + `],"note":1}`, "schedule", `unknown member "note"`},
		{"member in another case", `{"Time_Zone":"UTC","weekly":[` + seg + `]}`, "schedule", `unknown member "Time_Zone"`},
		{"unknown segment member", `{"time_zone":"UTC","weekly":[` + seg + `,{"days":["mon"],"from":"09:00","to":"17:00","until":"x"}]}`, "schedule.weekly[1]", `unknown member "until"`},
		{"member twice", `{"time_zone":"UTC","time_zone":"Europe/Berlin","weekly":[` + seg + `]}`, "schedule", `member "time_zone" given twice`},
		{"segment member twice", `{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","from":"10:00","to":"17:00"}]}`, "schedule.weekly[0]", `member "from" given twice`},
		{"zone a number", `{"time_zone":1,"weekly":[` + seg + `]}`, "schedule.time_zone", "not a JSON string"},
		{"weekly an object", `{"time_zone":"UTC","weekly":{}}`, "schedule.weekly", "not a JSON array"},
		{"days a string", `{"time_zone":"UTC","weekly":[{"days":"mon","from":"09:00","to":"17:00"}]}`, "schedule.weekly.days", "not a JSON array"},
		{"an array", `[]`, "schedule", "not a JSON object"},
		{"null", `null`, "schedule.time_zone", "missing"},
		{"two values", `{"time_zone":"UTC","weekly":[` + seg + `]} {}`, "schedule", "more than one JSON value"},
		{"nothing", ``, "schedule", "no JSON value"},
		{"cut short", `{"time_zone":"UTC","weekly":[`, "schedule", "not valid JSON"},
		{"not JSON", `time_zone: UTC`, "schedule", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.raw))
			if err == nil {
				t.Fatalf("Parse accepted %s", tt.raw)
			}
			if s != nil {
				t.Error("a schedule with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("got field %q reason %q, want %q containing %q", fe.Field, fe.Reason, tt.field, tt.reason)
			}
			if err.Error() != "weekly: "+fe.Detail() {
				t.Errorf("Error() = %q, Detail() = %q", err.Error(), fe.Detail())
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse([]byte(`{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"17:00"},{"days":["mo"],"from":"09:00","to":"17:00"}]}`))
	const want = `weekly: schedule.weekly[1].days[0]: "mo" is not a day (mon to sun)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestValidateChangesNothingOnError(t *testing.T) {
	s := mustParse(t, one("UTC", `"mon"`, "00:00", "24:00"))
	monday := utc("2025-06-16T12:00:00Z")
	s.Weekly[0].Days = []string{"mo"}
	if err := s.Validate(); err == nil {
		t.Fatal("Validate accepted a bad day")
	}
	if !s.Active(monday) {
		t.Error("a failed Validate changed what is active")
	}

	var into Schedule
	if err := json.Unmarshal([]byte(one("Nowhere/Else", `"mon"`, "00:00", "24:00")), &into); err == nil {
		t.Fatal("Unmarshal accepted an unknown zone")
	}
	if into.TimeZone != "" || into.Weekly != nil || into.Active(monday) {
		t.Errorf("a failed Unmarshal changed the schedule: %+v", into)
	}
}

func TestCanonicalForm(t *testing.T) {
	const canonical = `{"time_zone":"Europe/Berlin","weekly":[{"days":["tue","mon"],"from":"09:00","to":"17:30"},{"days":["sun"],"from":"22:00","to":"24:00"}]}`
	inputs := []string{
		canonical,
		`{ "weekly" : [ { "to":"17:30", "from":"09:00", "days":[ "tue", "mon" ] },
		   {"days":["sun"],"to":"24:00","from":"22:00"} ],
		  "time_zone" : "Europe/Berlin" }`,
	}
	for i, in := range inputs {
		s := mustParse(t, in)
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != canonical {
			t.Errorf("input %d marshals as %s", i, out)
		}
		byValue, _ := json.Marshal(*s)
		if string(byValue) != canonical {
			t.Errorf("input %d by value marshals as %s", i, byValue)
		}
	}
}

// TestInsideAnAccessCode decodes a schedule as a member of a larger object,
// as a box reads an access code.
func TestInsideAnAccessCode(t *testing.T) {
	type accessCode struct {
		Code     string    `json:"code"`
		Schedule *Schedule `json:"schedule,omitempty"`
	}
	var ac accessCode
	raw := `{"code":"1234","schedule":{"time_zone":"Europe/Berlin","weekly":[{"days":["mon"],"from":"09:00","to":"17:00"}]}}`
	if err := json.Unmarshal([]byte(raw), &ac); err != nil {
		t.Fatal(err)
	}
	if !ac.Schedule.Active(utc("2025-06-16T07:00:00Z")) || ac.Schedule.Active(utc("2025-06-16T06:59:00Z")) {
		t.Error("the decoded schedule is not active at mon 09:00 Berlin only")
	}
	out, _ := json.Marshal(ac)
	if string(out) != raw {
		t.Errorf("reported as %s", out)
	}

	var none accessCode
	if err := json.Unmarshal([]byte(`{"code":"1","schedule":null}`), &none); err != nil || none.Schedule != nil {
		t.Errorf("schedule null: %v, %+v", err, none.Schedule)
	}

	err := json.Unmarshal([]byte(`{"code":"1","schedule":{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"9","to":"17:00"}]}}`), &ac)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "schedule.weekly[0].from" {
		t.Errorf("Unmarshal error %v", err)
	}
}

// TestImportsTZData keeps the embedded zone database in every binary that
// uses this package.
func TestImportsTZData(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !strings.Contains(" "+strings.TrimSpace(string(out))+" ", " time/tzdata ") {
		t.Errorf("the package imports %s, without time/tzdata", out)
	}
}

const childEnv = "WEEKLY_ZONE_CHILD"

// TestEmbeddedZones runs this test binary again with no zone database on
// disk: ZONEINFO names an empty directory and, where a mount namespace can
// be had (unshare(1)), the system's zone directories and Go's own
// zoneinfo.zip are hidden under empty file systems. Zones must still load.
func TestEmbeddedZones(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	empty := t.TempDir()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Under user-mode emulation (make test-arm) the child runs through
	// the emulator too.
	var prefix []string
	if w := os.Getenv("SMARTBOX_EXEC_WRAPPER"); w != "" {
		prefix = []string{w}
	}
	child := func(args ...string) []string { return append(append(append([]string(nil), prefix...), bin), args...) }
	run := func(t *testing.T, hidden []string, cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "ZONEINFO="+empty, childEnv+"="+strings.Join(hidden, ":"), "HIDE="+strings.Join(hidden, " "))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "zones loaded") {
			t.Fatalf("child: %v\n%s", err, out)
		}
	}
	t.Run("zoneinfo empty", func(t *testing.T) {
		argv := child("-test.run=^TestZoneChild$", "-test.v")
		run(t, nil, exec.Command(argv[0], argv[1:]...))
	})
	t.Run("no zone files at all", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("needs a Linux mount namespace")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("no unshare(1)")
		}
		if exec.Command(unshare, "--user", "--map-root-user", "--mount", "true").Run() != nil {
			t.Skip("no mount namespace for this user")
		}
		goroot, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			t.Fatalf("go env GOROOT: %v", err)
		}
		var hide []string
		for _, d := range []string{"/usr/share/zoneinfo", "/usr/share/lib/zoneinfo", "/usr/lib/locale/TZ", "/etc/zoneinfo",
			filepath.Join(strings.TrimSpace(string(goroot)), "lib", "time")} { // zoneinfo.zip
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				hide = append(hide, d)
			}
		}
		script := `for d in $HIDE; do mount -t tmpfs tmpfs "$d" || exit 1; done; exec "$@"`
		cmd := exec.Command(unshare, append([]string{"--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"}, child("-test.run=^TestZoneChild$", "-test.v")...)...)
		run(t, hide, cmd)
	})
}

// TestZoneChild is the child of TestEmbeddedZones.
func TestZoneChild(t *testing.T) {
	hidden, ok := os.LookupEnv(childEnv)
	if !ok {
		t.Skip("run by TestEmbeddedZones")
	}
	for _, d := range strings.Split(hidden, ":") {
		if d == "" {
			continue
		}
		if entries, err := os.ReadDir(d); err != nil || len(entries) != 0 {
			t.Fatalf("%s is not hidden: %v, %d entries", d, err, len(entries))
		}
	}
	s := mustParse(t, one("Europe/Berlin", `"sun"`, "02:00", "04:00"))
	if !s.Active(utc("2025-03-30T01:00:00Z")) || s.Active(utc("2025-03-30T00:59:59Z")) {
		t.Fatal("Europe/Berlin's 2025 spring change is wrong")
	}
	mustParse(t, one("America/Los_Angeles", `"mon"`, "02:00", "04:00"))
	if _, err := Parse([]byte(one("Mars/Olympus", `"mon"`, "02:00", "04:00"))); err == nil {
		t.Fatal("an unknown zone loaded")
	}
	fmt.Println("zones loaded")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		one("Europe/Berlin", `"mon","tue"`, "09:00", "17:30"),
		one("UTC", `"fri"`, "22:00", "02:00"),
		one("America/New_York", `"sun"`, "00:00", "24:00"),
		`{"time_zone":"UTC","weekly":[{"days":["mon"],"from":"09:00","to":"17:00"},{"days":["mo"]}]}`,
		`{"Time_Zone":"UTC"}`, `[]`, `null`, ``, `{"time_zone":"UTC","weekly":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	instants := []time.Time{utc("2025-03-30T01:00:00Z"), utc("2025-10-26T01:30:00Z"), utc("1970-01-01T00:00:00Z"), utc("2099-12-31T23:59:59Z")}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw)
		if err != nil {
			var fe *FieldError
			if s != nil || !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(fe.Field, "schedule") {
				t.Fatalf("Parse(%q) = %v, %v", raw, s, err)
			}
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", out, err)
		}
		out2, _ := json.Marshal(again)
		if string(out2) != string(out) {
			t.Fatalf("canonical form changes: %s, %s", out, out2)
		}
		for _, in := range instants {
			if s.Active(in) != again.Active(in) {
				t.Fatalf("%s and its canonical form differ at %s", raw, in)
			}
		}
	})
}
