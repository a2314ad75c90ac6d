package keypad

import (
	"context"
	"errors"
	"testing"

	"smartboxd/internal/wiegand"
)

// frames is an in-memory FrameSource: it yields its frames, then err, or
// blocks until ctx is done when err is nil.
type frames struct {
	list []wiegand.Frame
	err  error
}

func (s *frames) Next(ctx context.Context) (wiegand.Frame, error) {
	if len(s.list) > 0 {
		f := s.list[0]
		s.list = s.list[1:]
		return f, nil
	}
	if s.err != nil {
		return wiegand.Frame{}, s.err
	}
	<-ctx.Done()
	return wiegand.Frame{}, ctx.Err()
}

var _ FrameSource = (*frames)(nil)

// eight builds an 8-bit keypad frame: the complement of v, then v.
func eight(v uint64) wiegand.Frame {
	return wiegand.Frame{Bits: (^v&0xF)<<4 | v, N: 8}
}

func TestWiegandKey(t *testing.T) {
	tests := []struct {
		name       string
		star, hash int
		f          wiegand.Frame
		want       rune // 0: noise
	}{
		{"4-bit 0", 0, 0, wiegand.Frame{Bits: 0, N: 4}, '0'},
		{"4-bit 5", 0, 0, wiegand.Frame{Bits: 5, N: 4}, '5'},
		{"4-bit 9", 0, 0, wiegand.Frame{Bits: 9, N: 4}, '9'},
		{"4-bit star", 0, 0, wiegand.Frame{Bits: 10, N: 4}, '*'},
		{"4-bit hash", 0, 0, wiegand.Frame{Bits: 11, N: 4}, '#'},
		{"4-bit 12 unmapped", 0, 0, wiegand.Frame{Bits: 12, N: 4}, 0},
		{"4-bit 15 unmapped", 0, 0, wiegand.Frame{Bits: 15, N: 4}, 0},
		{"4-bit with stray high bits", 0, 0, wiegand.Frame{Bits: 0x13, N: 4}, 0},
		{"8-bit 0", 0, 0, eight(0), '0'},
		{"8-bit 0 literal", 0, 0, wiegand.Frame{Bits: 0xF0, N: 8}, '0'},
		{"8-bit 7 literal", 0, 0, wiegand.Frame{Bits: 0x87, N: 8}, '7'},
		{"8-bit 9", 0, 0, eight(9), '9'},
		{"8-bit star", 0, 0, eight(10), '*'},
		{"8-bit hash", 0, 0, eight(11), '#'},
		{"8-bit bad complement", 0, 0, wiegand.Frame{Bits: 0x07, N: 8}, 0},
		{"8-bit one bit off", 0, 0, wiegand.Frame{Bits: 0x97, N: 8}, 0},
		{"8-bit 14 unmapped", 0, 0, eight(14), 0},
		{"8-bit with stray high bits", 0, 0, wiegand.Frame{Bits: 0x1F0, N: 8}, 0},
		{"remapped star", 14, 15, wiegand.Frame{Bits: 14, N: 4}, '*'},
		{"remapped hash", 14, 15, eight(15), '#'},
		{"old star value unmapped after remap", 14, 15, wiegand.Frame{Bits: 10, N: 4}, 0},
		{"swapped star and hash", 11, 10, wiegand.Frame{Bits: 10, N: 4}, '#'},
		{"26-bit PIN frame", 0, 0, wiegand.Frame{Bits: 0x1234, N: 26}, 0},
		{"34-bit card", 0, 0, wiegand.Frame{Bits: 0x1234, N: 34}, 0},
		{"no bits", 0, 0, wiegand.Frame{}, 0},
		{"one bit", 0, 0, wiegand.Frame{Bits: 1, N: 1}, 0},
		{"negative length", 0, 0, wiegand.Frame{Bits: 1, N: -4}, 0},
		{"6 bits", 0, 0, wiegand.Frame{Bits: 5, N: 6}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWiegand(&frames{}, &keyLog{}, WiegandConfig{Star: tt.star, Hash: tt.hash})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := w.Key(tt.f)
			if tt.want == 0 {
				if ok {
					t.Fatalf("Key(%#x/%d) = %q, want noise", tt.f.Bits, tt.f.N, got)
				}
				return
			}
			if !ok || got != tt.want {
				t.Fatalf("Key(%#x/%d) = %q, %v; want %q", tt.f.Bits, tt.f.N, got, ok, tt.want)
			}
		})
	}
}

func TestNewWiegandMapping(t *testing.T) {
	tests := []struct {
		star, hash int
		ok         bool
	}{
		{0, 0, true},
		{10, 11, true},
		{15, 14, true},
		{12, 0, true}, // hash defaults to 11
		{11, 0, false},
		{9, 11, false},
		{10, 16, false},
		{-1, 11, false},
		{13, 13, false},
	}
	for _, tt := range tests {
		_, err := NewWiegand(&frames{}, &keyLog{}, WiegandConfig{Star: tt.star, Hash: tt.hash})
		if tt.ok && err != nil {
			t.Errorf("star %d hash %d: %v", tt.star, tt.hash, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("star %d hash %d: err = %v, want ErrInvalidConfig", tt.star, tt.hash, err)
		}
	}
}

func TestWiegandRun(t *testing.T) {
	src := &frames{list: []wiegand.Frame{
		{Bits: 1, N: 4},
		eight(2),
		{Bits: 0x27, N: 8}, // bad complement
		{Bits: 3, N: 4},
		{Bits: 0x2A5A5A5, N: 26}, // a whole-PIN frame: noise
		{Bits: 13, N: 4},         // unmapped
		eight(4),
		{Bits: 11, N: 4},
	}}
	var sink recorder
	w, err := NewWiegand(src, NewCollector(&sink, CollectorConfig{}), WiegandConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	eventually(t, "the entry", func() bool { return len(sink.got()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v after cancel, want nil", err)
	}
	if got := sink.got()[0]; got != "1234" {
		t.Fatalf("entry = %q, want 1234", got)
	}
	if st := w.Stats(); st.Keys != 5 || st.Dropped != 3 {
		t.Fatalf("Stats() = %+v, want 5 keys and 3 dropped", st)
	}
}

func TestWiegandRunSourceError(t *testing.T) {
	errGone := errors.New("line stuck low")
	keys := &keyLog{}
	w, err := NewWiegand(&frames{list: []wiegand.Frame{{Bits: 7, N: 4}}, err: errGone}, keys, WiegandConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); !errors.Is(err, errGone) {
		t.Fatalf("Run() = %v, want it to wrap %v", err, errGone)
	}
	if keys.String() != "7" {
		t.Fatalf("keys = %q, want 7", keys.String())
	}
}

func FuzzWiegandKey(f *testing.F) {
	f.Add(uint64(5), 4, 0, 0)
	f.Add(uint64(0xA5), 8, 14, 15)
	f.Add(uint64(0x1234567), 26, 10, 11)
	f.Fuzz(func(t *testing.T, bits uint64, n, star, hash int) {
		w, err := NewWiegand(&frames{}, &keyLog{}, WiegandConfig{Star: star, Hash: hash})
		if err != nil {
			return
		}
		k, ok := w.Key(wiegand.Frame{Bits: bits, N: n})
		if !ok {
			return
		}
		if n != 4 && n != 8 {
			t.Fatalf("a %d-bit frame gave key %q", n, k)
		}
		v := bits & 0xF
		if n == 8 && bits>>4 != ^v&0xF {
			t.Fatalf("8-bit frame %#x with a bad complement gave key %q", bits, k)
		}
		if bits>>n != 0 {
			t.Fatalf("frame %#x/%d with stray high bits gave key %q", bits, n, k)
		}
		var want rune
		switch {
		case v <= 9:
			want = rune('0' + v)
		case w.star == v:
			want = '*'
		case w.hash == v:
			want = '#'
		default:
			t.Fatalf("unmapped value %d gave key %q", v, k)
		}
		if k != want {
			t.Fatalf("frame %#x/%d gave %q, want %q", bits, n, k, want)
		}
	})
}
