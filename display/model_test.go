package display

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestModelText(t *testing.T) {
	type step struct {
		at   time.Duration // since t0
		do   func(m *Model, now time.Time)
		want string // the text after the step
	}
	typed := func(n int) func(*Model, time.Time) { return func(m *Model, _ time.Time) { m.Typed(n) } }
	rejected := func(m *Model, now time.Time) { m.Rejected(now) }
	opened := func(b int) func(*Model, time.Time) { return func(m *Model, _ time.Time) { m.Opened(b) } }
	ended := func(b int) func(*Model, time.Time) { return func(m *Model, _ time.Time) { m.SessionEnded(b) } }
	lockout := func(d time.Duration) func(*Model, time.Time) {
		return func(m *Model, now time.Time) { m.LockedOut(now.Add(d)) }
	}
	lockoutEnded := func(m *Model, _ time.Time) { m.LockoutEnded() }
	wait := func(*Model, time.Time) {}

	tests := []struct {
		name  string
		steps []step
	}{
		{"idle is blank", []step{{0, wait, ""}}},
		{"dashes per digit", []step{{0, typed(1), "-"}, {0, typed(3), "---"}, {0, typed(4), "----"}, {0, typed(0), ""}}},
		{"dashes capped at the width", []step{{0, typed(12), "----"}}},
		{"err for 2 s", []step{
			{0, typed(5), "----"}, {0, typed(0), ""}, {0, rejected, "Err"},
			{1999 * time.Millisecond, wait, "Err"}, {2 * time.Second, wait, ""},
		}},
		{"err over dashes", []step{{0, rejected, "Err"}, {time.Second, typed(2), "Err"}, {2 * time.Second, wait, "--"}}},
		{"bin until its session ends", []step{
			{0, opened(7), "b 7"}, {time.Minute, typed(2), "b 7"}, {time.Minute, ended(7), "--"},
		}},
		{"two digit bin", []step{{0, opened(12), "b12"}}},
		{"bin over err", []step{{0, rejected, "Err"}, {0, opened(3), "b 3"}, {time.Second, ended(3), "Err"}}},
		{"latest bin, then the one before", []step{
			{0, opened(2), "b 2"}, {0, opened(9), "b 9"}, {0, ended(9), "b 2"}, {0, ended(2), ""},
		}},
		{"lockout seconds over all", []step{
			{0, opened(4), "b 4"}, {0, lockout(30 * time.Second), "30"},
			{500 * time.Millisecond, wait, "30"}, {time.Second, wait, "29"},
			{29500 * time.Millisecond, wait, "1"}, {30 * time.Second, wait, "b 4"},
		}},
		{"lockout capped", []step{{0, lockout(3 * time.Hour), "9999"}}},
		{"lockout ended early", []step{{0, lockout(time.Minute), "60"}, {time.Second, lockoutEnded, ""}}},
		{"open failed ends the session", []step{
			{0, opened(5), "b 5"}, {time.Second, func(m *Model, now time.Time) { m.OpenFailed(5, now) }, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewModel()
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				s.do(m, now)
				if got := m.Text(now); got != s.want {
					t.Fatalf("step %d at %s: text %q, want %q", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestModelLEDs(t *testing.T) {
	m := NewModel()
	m.Opened(1)
	m.Opened(2)
	m.OpenFailed(2, t0)
	for _, tc := range []struct {
		bin  int
		at   time.Duration
		led  LED
		lit  bool
		next time.Duration // Next from at
	}{
		{1, 0, LEDOn, true, 250 * time.Millisecond},
		{2, 0, LEDBlink, true, 250 * time.Millisecond},
		{2, 250 * time.Millisecond, LEDBlink, false, 500 * time.Millisecond},
		{2, 600 * time.Millisecond, LEDBlink, true, 750 * time.Millisecond},
		{2, 29999 * time.Millisecond, LEDBlink, false, 30 * time.Second},
		{2, 30 * time.Second, LEDOff, false, 0},
		{3, 0, LEDOff, false, 0},
	} {
		now := t0.Add(tc.at)
		if got := m.LED(tc.bin, now); got != tc.led {
			t.Errorf("bin %d at %s: LED %s, want %s", tc.bin, tc.at, got, tc.led)
		}
		if got := m.Lit(tc.bin, now); got != tc.lit {
			t.Errorf("bin %d at %s: lit %v, want %v", tc.bin, tc.at, got, tc.lit)
		}
		want := time.Time{}
		if tc.next != 0 {
			want = t0.Add(tc.next)
		}
		if tc.bin == 2 {
			if got := m.Next(now); !got.Equal(want) {
				t.Errorf("at %s: Next %s, want %s", tc.at, got, want)
			}
		}
	}
	// Opening the bin again stops the blinking at once.
	m.OpenFailed(3, t0)
	m.Opened(3)
	if got := m.LED(3, t0); got != LEDOn {
		t.Errorf("bin 3 opened again: LED %s, want on", got)
	}
}

func TestModelNextLockout(t *testing.T) {
	m := NewModel()
	m.LockedOut(t0.Add(2500 * time.Millisecond))
	for _, tc := range []struct{ at, next time.Duration }{
		{0, 500 * time.Millisecond},
		{500 * time.Millisecond, 1500 * time.Millisecond},
		{1500 * time.Millisecond, 2500 * time.Millisecond},
	} {
		if got := m.Next(t0.Add(tc.at)); !got.Equal(t0.Add(tc.next)) {
			t.Errorf("Next at %s = %s, want %s", tc.at, got.Sub(t0), tc.next)
		}
	}
	if got := m.Next(t0.Add(3 * time.Second)); !got.IsZero() {
		t.Errorf("Next after the lockout = %s", got)
	}
}

// No input of the model or the panel can carry a code: no method takes a
// string, a byte slice or a rune.
func TestNoInputCarriesDigits(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[*Model](), reflect.TypeFor[*Panel]()} {
		for i := range typ.NumMethod() {
			mt := typ.Method(i).Type
			for a := 1; a < mt.NumIn(); a++ { // 0 is the receiver
				switch k := mt.In(a); {
				case k.Kind() == reflect.String, k.Kind() == reflect.Slice, k.Kind() == reflect.Int32:
					t.Errorf("%s.%s takes a %s", typ, typ.Method(i).Name, k)
				}
			}
		}
	}
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []byte
	}{
		{"", []byte{0, 0, 0, 0}},
		{"b 7", []byte{0x7c, 0, 0x07, 0}},
		{"b12", []byte{0x7c, 0x06, 0x5b, 0}},
		{"Err", []byte{0x79, 0x50, 0x50, 0}},
		{"--", []byte{0x40, 0x40, 0, 0}},
		{"30", []byte{0, 0, 0x4f, 0x3f}},
		{"9999", []byte{0x6f, 0x6f, 0x6f, 0x6f}},
		{"b123", []byte{0x7c, 0x06, 0x5b, 0x4f}},
		{"x?", []byte{0, 0, 0, 0}},
	} {
		if got := Segments(tc.text, 4); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Segments(%q) = % x, want % x", tc.text, got, tc.want)
		}
	}
}
