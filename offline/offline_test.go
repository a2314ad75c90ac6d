package offline

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type vectorFile struct {
	KeyHex    string `json:"key_hex"`
	KeyBase64 string `json:"key_base64"`
	BoxID     string `json:"box_id"`
	Vectors   []struct {
		KeyID    string `json:"key_id"`
		Mode     Mode   `json:"mode"`
		ModeName string `json:"mode_name"`
		Class    int    `json:"class"`
		Hours    int    `json:"hours"`
		Start    string `json:"start"`
		S        int64  `json:"s"`
		Message  string `json:"message"`
		Code     string `json:"code"`
		From     string `json:"from"`
		To       string `json:"to"`
	} `json:"vectors"`
	Resolve []struct {
		HourMod int    `json:"hour_mod"`
		Now     string `json:"now"`
		S       int64  `json:"s"`
	} `json:"resolve"`
}

func loadVectors(t testing.TB) (vectorFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(vf.KeyHex)
	if err != nil {
		t.Fatal(err)
	}
	b64, err := base64.StdEncoding.DecodeString(vf.KeyBase64)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, b64) || len(key) != KeySize {
		t.Fatalf("key_hex and key_base64 differ or are not %d bytes", KeySize)
	}
	if len(vf.Vectors) == 0 || len(vf.Resolve) == 0 {
		t.Fatal("no vectors")
	}
	return vf, key
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	vf, key := loadVectors(t)
	k, err := NewKey(key)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[Mode]bool{}
	classes := map[int]bool{}
	for i, v := range vf.Vectors {
		t.Run(fmt.Sprintf("%d_%s_%s_c%d", i, v.Start, v.ModeName, v.Class), func(t *testing.T) {
			modes[v.Mode], classes[v.Class] = true, true
			start := mustTime(t, v.Start)
			if got := HourOf(start); got != v.S {
				t.Errorf("HourOf(%s) = %d, want %d", v.Start, got, v.S)
			}
			code, err := Generate(key, vf.BoxID, v.KeyID, v.Mode, v.Class, start)
			if err != nil {
				t.Fatal(err)
			}
			if code != v.Code {
				t.Errorf("Generate = %s, want %s (message %q)", code, v.Code, v.Message)
			}
			if code2, _ := k.Generate(vf.BoxID, v.KeyID, v.Mode, v.Class, start); code2 != v.Code {
				t.Errorf("Key.Generate = %s, want %s", code2, v.Code)
			}
			if tag := Tag(key, vf.BoxID, v.KeyID, v.Mode, v.Class, v.S); tag != v.Code[6:] {
				t.Errorf("Tag = %s, want %s", tag, v.Code[6:])
			}
			if v.Mode.String() != v.ModeName {
				t.Errorf("Mode(%d).String() = %q, want %q", v.Mode, v.Mode, v.ModeName)
			}
			if h, err := Hours(v.Class); err != nil || h != v.Hours {
				t.Errorf("Hours(%d) = %d, %v, want %d", v.Class, h, err, v.Hours)
			}

			p, err := Parse(v.Code)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != v.Mode || p.Class != v.Class || p.HourMod != int(v.S%10000) || p.Tag != v.Code[6:] {
				t.Errorf("Parse(%s) = %+v", v.Code, p)
			}
			// The box, at the start of the hour, resolves the same S.
			if s := p.Start(start); s != v.S {
				t.Errorf("Start(%s) = %d, want %d", v.Start, s, v.S)
			}
			from, to := p.Window(v.S)
			if f := from.Format(time.RFC3339); f != v.From {
				t.Errorf("from = %s, want %s", f, v.From)
			}
			if f := to.Format(time.RFC3339); f != v.To {
				t.Errorf("to = %s, want %s", f, v.To)
			}
			others := []string{"nobody", v.KeyID + "x", strings.ToUpper(v.KeyID)}
			if id, ok := k.Match(vf.BoxID, p, v.S, append(others, v.KeyID)); !ok || id != v.KeyID {
				t.Errorf("Match = %q, %v, want %q", id, ok, v.KeyID)
			}
			if id, ok := Match(key, vf.BoxID, p, v.S, others); ok {
				t.Errorf("Match without the key id = %q", id)
			}
			if _, ok := k.Match(vf.BoxID+"x", p, v.S, []string{v.KeyID}); ok {
				t.Error("matched on another box")
			}
			if _, ok := k.Match(vf.BoxID, p, v.S+HourModulus, []string{v.KeyID}); ok {
				t.Error("matched ten thousand hours later")
			}
		})
	}
	if len(modes) != 4 || len(classes) != Classes {
		t.Errorf("vectors cover modes %v and classes %v, want all", modes, classes)
	}
}

func TestResolveVectors(t *testing.T) {
	vf, _ := loadVectors(t)
	for _, r := range vf.Resolve {
		t.Run(fmt.Sprintf("%04d_at_%s", r.HourMod, r.Now), func(t *testing.T) {
			p := Parsed{Mode: Pickup, Class: 0, HourMod: r.HourMod, Tag: "00000000"}
			if s := p.Start(mustTime(t, r.Now)); s != r.S {
				t.Errorf("Start = %d, want %d", s, r.S)
			}
		})
	}
}

// TestStartEdges checks the box's resolution of S with codes made here: a
// code is made at one instant and entered at another.
func TestStartEdges(t *testing.T) {
	vf, key := loadVectors(t)
	k, _ := NewKey(key)
	wrapHour := HourTime(10000) // 2025-02-20T16:00:00Z, HHHH 0000
	tests := []struct {
		name       string
		made, used time.Time
		wantS      int64
		match      bool
	}{
		{"same hour", wrapHour, wrapHour.Add(59 * time.Minute), 10000, true},
		{"next hour used the hour before", wrapHour, wrapHour.Add(-time.Hour), 10000, true},
		{"next hour used at the last second before", wrapHour, wrapHour.Add(-time.Second), 10000, true},
		{"two hours ahead is taken as 10,000 hours ago", wrapHour, wrapHour.Add(-time.Hour - time.Second), 0, false},
		{"made before the wrap, used after it", HourTime(9999), wrapHour.Add(30 * time.Minute), 9999, true},
		{"made at 9998, used 600 hours later", HourTime(9998), HourTime(10598), 9998, true},
		{"made 9,998 hours ago", HourTime(1), HourTime(9999), 1, true},
		{"made 9,999 hours ago resolves to the next hour", HourTime(1), HourTime(10000), 10001, false},
		{"made 10,000 hours ago resolves to now", HourTime(1), HourTime(10001), 10001, false},
		{"epoch hour used at the epoch", Epoch, Epoch, 0, true},
		{"hour 1 used at the epoch", HourTime(1), Epoch, 1, true},
		{"hour 2 used at the epoch is before the epoch", HourTime(2), Epoch, -9998, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := k.Generate(vf.BoxID, "key-1", PickupOnce, 4, tt.made)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(code)
			if err != nil {
				t.Fatal(err)
			}
			s := p.Start(tt.used)
			if s != tt.wantS {
				t.Errorf("Start = %d, want %d", s, tt.wantS)
			}
			_, ok := k.Match(vf.BoxID, p, s, []string{"key-0", "key-1"})
			if ok != tt.match {
				t.Errorf("Match = %v, want %v", ok, tt.match)
			}
		})
	}
}

func TestHourOf(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{Epoch, 0},
		{Epoch.Add(time.Hour - time.Nanosecond), 0},
		{Epoch.Add(time.Hour), 1},
		{Epoch.Add(-time.Nanosecond), -1},
		{Epoch.Add(-time.Hour), -1},
		{Epoch.Add(-time.Hour - time.Second), -2},
		{time.Date(2024, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), 0},
		{time.Unix(0, 0), -473352},
	}
	for _, tt := range tests {
		if got := HourOf(tt.t); got != tt.want {
			t.Errorf("HourOf(%s) = %d, want %d", tt.t, got, tt.want)
		}
		if tt.want >= 0 && !HourTime(tt.want).Equal(tt.t.Truncate(time.Hour)) {
			t.Errorf("HourTime(%d) = %s", tt.want, HourTime(tt.want))
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		key   []byte
		box   string
		keyID string
		mode  Mode
		class int
		start time.Time
		want  error
	}{
		{"mode 0", key, "b", "k", 0, 0, now, ErrMode},
		{"mode 5", key, "b", "k", 5, 0, now, ErrMode},
		{"class -1", key, "b", "k", Pickup, -1, now, ErrClass},
		{"class 10", key, "b", "k", Pickup, 10, now, ErrClass},
		{"short key", key[:31], "b", "k", Pickup, 0, now, ErrKey},
		{"long key", append(key, 0), "b", "k", Pickup, 0, now, ErrKey},
		{"no key", nil, "b", "k", Pickup, 0, now, ErrKey},
		{"empty box id", key, "", "k", Pickup, 0, now, ErrID},
		{"empty key id", key, "b", "", Pickup, 0, now, ErrID},
		{"before the epoch", key, "b", "k", Pickup, 0, Epoch.Add(-time.Nanosecond), ErrStart},
		{"1970", key, "b", "k", Pickup, 0, time.Unix(0, 0), ErrStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := Generate(tt.key, tt.box, tt.keyID, tt.mode, tt.class, tt.start)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Generate = %q, %v, want %v", code, err, tt.want)
			}
			if code != "" {
				t.Errorf("code %q with an error", code)
			}
			if !strings.HasPrefix(err.Error(), "offline: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestGenerateTruncatesToTheHour(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeySize)
	h := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := Generate(key, "b", "k", Dropoff, 3, h)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(key, "b", "k", Dropoff, 3, h.Add(59*time.Minute+59*time.Second))
	c, _ := Generate(key, "b", "k", Dropoff, 3, h.Add(time.Hour))
	if a != b || a == c {
		t.Errorf("codes %s, %s (same hour), %s (next hour)", a, b, c)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		code string
		want Parsed
		err  error
	}{
		{"11000095031223", Parsed{Pickup, 1, 0, "95031223"}, nil},
		{"49999900000000", Parsed{DropoffOnce, 9, 9999, "00000000"}, nil},
		{"30123412345678", Parsed{PickupOnce, 0, 1234, "12345678"}, nil},
		{"", Parsed{}, ErrFormat},
		{"1100009503122", Parsed{}, ErrFormat},
		{"110000950312230", Parsed{}, ErrFormat},
		{"1100009503122a", Parsed{}, ErrFormat},
		{"11000095 31223", Parsed{}, ErrFormat},
		{"+1000095031223", Parsed{}, ErrFormat},
		{"١1000095031223", Parsed{}, ErrFormat}, // an Arabic-Indic one
		{"01000095031223", Parsed{}, ErrMode},
		{"51000095031223", Parsed{}, ErrMode},
		{"91000095031223", Parsed{}, ErrMode},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p, err := Parse(tt.code)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse = %+v, %v, want %v", p, err, tt.err)
			}
			if p != tt.want {
				t.Errorf("Parse = %+v, want %+v", p, tt.want)
			}
			if err == nil && p.String() != tt.code {
				t.Errorf("String = %s", p.String())
			}
		})
	}
}

func TestMode(t *testing.T) {
	tests := []struct {
		m                            Mode
		valid, pickup, dropoff, once bool
		name                         string
	}{
		{Pickup, true, true, false, false, "pickup"},
		{Dropoff, true, false, true, false, "dropoff"},
		{PickupOnce, true, true, false, true, "pickup_once"},
		{DropoffOnce, true, false, true, true, "dropoff_once"},
		{0, false, false, false, false, "mode(0)"},
		{5, false, false, false, false, "mode(5)"},
	}
	for _, tt := range tests {
		if tt.m.Valid() != tt.valid || tt.m.Pickup() != tt.pickup || tt.m.Dropoff() != tt.dropoff ||
			tt.m.Once() != tt.once || tt.m.String() != tt.name {
			t.Errorf("mode %d: valid %v pickup %v dropoff %v once %v %q", int(tt.m),
				tt.m.Valid(), tt.m.Pickup(), tt.m.Dropoff(), tt.m.Once(), tt.m.String())
		}
	}
}

func TestWindowBadClass(t *testing.T) {
	for _, c := range []int{-1, 10} {
		from, to := Window(5, c)
		if !from.Equal(to) || !from.Equal(HourTime(5)) {
			t.Errorf("Window(5, %d) = %s, %s", c, from, to)
		}
	}
}

func TestMatchRefusesInconsistentInput(t *testing.T) {
	key := bytes.Repeat([]byte{3}, KeySize)
	start := HourTime(12345)
	code, err := Generate(key, "b", "k", Pickup, 2, start)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(code)
	if _, ok := Match(key, "b", p, 12345, []string{"k"}); !ok {
		t.Fatal("the right input does not match")
	}
	bad := map[string]func(*Parsed, *int64){
		"negative s":      func(p *Parsed, s *int64) { *s = -10000 + 2345 },
		"s off HourMod":   func(p *Parsed, s *int64) { *s++ },
		"short tag":       func(p *Parsed, s *int64) { p.Tag = p.Tag[:7] },
		"bad mode":        func(p *Parsed, s *int64) { p.Mode = 0 },
		"bad class":       func(p *Parsed, s *int64) { p.Class = 10 },
		"other class":     func(p *Parsed, s *int64) { p.Class = 3 },
		"other mode":      func(p *Parsed, s *int64) { p.Mode = PickupOnce },
		"other tag digit": func(p *Parsed, s *int64) { p.Tag = p.Tag[:7] + string('0'+(p.Tag[7]-'0'+1)%10) },
	}
	for name, f := range bad {
		t.Run(name, func(t *testing.T) {
			q, s := p, int64(12345)
			f(&q, &s)
			if id, ok := Match(key, "b", q, s, []string{"k"}); ok {
				t.Errorf("matched %q", id)
			}
		})
	}
	if _, ok := Match(key[:31], "b", p, 12345, []string{"k"}); ok {
		t.Error("matched with a short key")
	}
}

// TestKeyConcurrent uses one Key from many goroutines, for the race detector
// and to show pooled states do not leak into each other.
func TestKeyConcurrent(t *testing.T) {
	vf, key := loadVectors(t)
	k, _ := NewKey(key)
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				v := vf.Vectors[(g*50+i)%len(vf.Vectors)]
				p, _ := Parse(v.Code)
				if id, ok := k.Match(vf.BoxID, p, v.S, []string{"x", "y", v.KeyID}); !ok || id != v.KeyID {
					done <- fmt.Errorf("vector %s: %q, %v", v.Code, id, ok)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestNewKeyCopies(t *testing.T) {
	key := bytes.Repeat([]byte{9}, KeySize)
	k, _ := NewKey(key)
	want := k.Tag("b", "k", Pickup, 0, 1)
	key[0] = 0
	if got := k.Tag("b", "k", Pickup, 0, 1); got != want {
		t.Errorf("tag changed with the caller's slice: %s, %s", got, want)
	}
}

// TestVectorsMarkdown checks that testdata/vectors.md, the table the
// README shows, says what vectors.json says.
func TestVectorsMarkdown(t *testing.T) {
	vf, key := loadVectors(t)
	md, err := os.ReadFile("testdata/vectors.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	for _, want := range []string{
		"box id `" + vf.BoxID + "`",
		"hex    " + hex.EncodeToString(key),
		"base64 " + base64.StdEncoding.EncodeToString(key),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("vectors.md lacks %q", want)
		}
	}
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		rows++
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 7 {
			t.Errorf("row %q: %d cells", line, len(cells))
			continue
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		keyID, start, code, from, to := cells[0], cells[3], cells[4], cells[5], cells[6]
		var mode Mode
		var class, hours int
		var name string
		if _, err := fmt.Sscanf(cells[1]+" "+cells[2], "%d %s %d (%d h)", &mode, &name, &class, &hours); err != nil {
			t.Errorf("row %q: %v", line, err)
			continue
		}
		got, err := Generate(key, vf.BoxID, keyID, mode, class, mustTime(t, start))
		if err != nil || got != code || name != mode.String() {
			t.Errorf("row %q: Generate = %s, %v", line, got, err)
		}
		p, _ := Parse(code)
		f, tt := p.Window(HourOf(mustTime(t, start)))
		if f.Format(time.RFC3339) != from || tt.Format(time.RFC3339) != to {
			t.Errorf("row %q: window %s to %s", line, f, tt)
		}
		if h, _ := Hours(class); h != hours {
			t.Errorf("row %q: class %d is %d hours", line, class, h)
		}
	}
	if rows < 8 {
		t.Errorf("vectors.md has %d vector rows", rows)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"11000095031223", "49999900000000", "01000095031223", "", "1100009503122a", "١1000095031223"} {
		f.Add(s)
	}
	key := bytes.Repeat([]byte{5}, KeySize)
	k, _ := NewKey(key)
	f.Fuzz(func(t *testing.T, code string) {
		p, err := Parse(code)
		if err != nil {
			if p != (Parsed{}) {
				t.Fatalf("Parse(%q) = %+v with error %v", code, p, err)
			}
			return
		}
		if p.String() != code {
			t.Fatalf("Parse(%q).String() = %q", code, p.String())
		}
		if !p.Mode.Valid() || p.Class < 0 || p.Class > 9 || p.HourMod < 0 || p.HourMod > 9999 || len(p.Tag) != 8 {
			t.Fatalf("Parse(%q) = %+v", code, p)
		}
		s := p.Start(HourTime(123456))
		if s > 123457 || s <= 123457-HourModulus || s%HourModulus != int64(p.HourMod) {
			t.Fatalf("Start = %d for %+v", s, p)
		}
		// A parsed code matches the key id it was made for and only if
		// its tag is the one Generate makes.
		want := k.Tag("box", "key", p.Mode, p.Class, s)
		if _, ok := k.Match("box", p, s, []string{"key"}); ok != (want == p.Tag) {
			t.Fatalf("Match = %v, tag %s, want tag %s", ok, p.Tag, want)
		}
	})
}
