package trust

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// step is one counter offered to a window and whether it is accepted.
type step struct {
	c  uint64
	ok bool
}

func TestWindow(t *testing.T) {
	const max = math.MaxUint64
	tests := []struct {
		name  string
		steps []step
	}{
		{"first counter", []step{{1, true}}},
		{"counter 0", []step{{0, false}, {1, true}, {0, false}}},
		{"in order", []step{{1, true}, {2, true}, {3, true}}},
		{"replay", []step{{1, true}, {1, false}, {2, true}, {1, false}, {2, false}}},
		{"starts high", []step{{5000, true}, {5000, false}, {4000, true}, {3976, false}, {3977, true}}},
		{"out of order inside", []step{{10, true}, {7, true}, {9, true}, {8, true}, {7, false}, {8, false}, {11, true}, {6, true}}},
		{"edge of the window", []step{{2000, true}, {977, true}, {976, false}, {977, false}}},
		{"far below", []step{{1025, true}, {1, false}, {2, true}}},
		{"jump of exactly the window", []step{{1, true}, {1025, true}, {1, false}, {2, true}}},
		{"big jump clears", []step{{5, true}, {6, true}, {10000, true}, {5, false}, {6, false}, {8977, true}, {8976, false}}},
		{"jump inside keeps", []step{{100, true}, {99, true}, {600, true}, {100, false}, {99, false}, {98, true}, {101, true}}},
		{"word boundary", []step{{200, true}, {136, true}, {137, true}, {264, true}, {136, false}, {137, false}, {200, false}, {135, true}}},
		{"uint64 top", []step{{max, true}, {max, false}, {max - 1, true}, {max - 1023, true}, {max - 1024, false}, {1, false}}},
		{"to the top from 1", []step{{1, true}, {max, true}, {1, false}, {max - 1, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			for i, s := range tt.steps {
				before := w
				err := w.Check(s.c)
				if (err == nil) != s.ok {
					t.Fatalf("step %d: Check(%d) = %v, want ok %v", i, s.c, err, s.ok)
				}
				if err != nil && !errors.Is(err, ErrReplayed) {
					t.Fatalf("step %d: Check(%d) = %v, not ErrReplayed", i, s.c, err)
				}
				if w != before {
					t.Fatalf("step %d: Check changed the window", i)
				}
				if err := w.Accept(s.c); (err == nil) != s.ok {
					t.Fatalf("step %d: Accept(%d) = %v after Check agreed", i, s.c, err)
				}
				if !s.ok && w != before {
					t.Fatalf("step %d: a refused counter changed the window", i)
				}
				if err := w.Check(s.c); err == nil {
					t.Fatalf("step %d: counter %d accepted twice", i, s.c)
				}
				roundTrip(t, &w)
			}
		})
	}
}

func TestMarkIgnoresRefused(t *testing.T) {
	var w Window
	w.Mark(0)
	if w != (Window{}) {
		t.Fatal("Mark(0) changed an empty window")
	}
	w.Mark(3000)
	before := w
	w.Mark(1)    // far below
	w.Mark(3000) // seen
	if w != before {
		t.Fatal("Mark of refused counters changed the window")
	}
	if w.Highest() != 3000 {
		t.Errorf("Highest = %d", w.Highest())
	}
}

// roundTrip checks w survives its binary encoding.
func roundTrip(t *testing.T, w *Window) {
	t.Helper()
	b, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != WindowEncodedSize {
		t.Fatalf("encoding has %d bytes, want %d", len(b), WindowEncodedSize)
	}
	var got Window
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary of MarshalBinary: %v", err)
	}
	if got != *w {
		t.Fatalf("round trip changed the window")
	}
}

// model is the replay rule stated plainly: every counter seen, and the
// highest.
type model struct {
	seen map[uint64]bool
	high uint64
}

func (m *model) accept(c uint64) bool {
	if c == 0 || m.seen[c] || (c < m.high && m.high-c >= WindowSize) {
		return false
	}
	m.seen[c] = true
	m.high = max(m.high, c)
	return true
}

func TestWindowAgainstModel(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		m := &model{seen: map[uint64]bool{}}
		var w Window
		base := r.Uint64N(5000)
		if seed%10 == 0 {
			base = math.MaxUint64 - 1<<20 // the jumps reach the top
		}
		for i := range 2000 {
			var c uint64
			switch r.IntN(10) {
			case 0: // a jump, sometimes past the window
				if j := r.Uint64N(3000); base <= math.MaxUint64-j {
					base += j
				} else {
					base = math.MaxUint64
				}
				c = base
			case 1: // far behind
				c = base - min(base, r.Uint64N(5000))
			default: // near the front, either side
				c = base - min(base, r.Uint64N(1100))
				if j := r.Uint64N(40); c <= math.MaxUint64-j {
					c += j
				}
			}
			if c > base {
				base = c
			}
			want := m.accept(c)
			got := w.Accept(c) == nil
			if got != want {
				t.Fatalf("seed %d step %d: Accept(%d) = %v, model says %v (high %d)", seed, i, c, got, want, m.high)
			}
			if r.IntN(50) == 0 {
				b, _ := w.MarshalBinary()
				w = Window{}
				if err := w.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	var w Window
	for _, c := range []uint64{3000, 2990, 2500} {
		w.Mark(c)
	}
	good, _ := w.MarshalBinary()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	set := func(b []byte, high uint64, bit int) []byte {
		for i := 1; i < len(b); i++ {
			b[i] = 0
		}
		for i := range 8 {
			b[1+i] = byte(high >> (56 - 8*i))
		}
		if bit >= 0 {
			word, off := bit/64, bit%64
			b[9+8*word+7-off/8] |= 1 << (off % 8)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:WindowEncodedSize-1]},
		{"long", append(bytes.Clone(good), 0)},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"marks without a highest", mod(func(b []byte) []byte { return set(b, 0, 5) })},
		{"highest not marked", mod(func(b []byte) []byte { return set(b, 10, 3) })},
		{"counter 0 marked", mod(func(b []byte) []byte { b = set(b, 10, 0); b[9+8*0+7-10/8] |= 1 << (10 % 8); return b })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := w
			if err := got.UnmarshalBinary(tt.b); !errors.Is(err, ErrWindowCorrupt) {
				t.Fatalf("err = %v, want ErrWindowCorrupt", err)
			}
			if got != w {
				t.Error("a refused encoding changed the window")
			}
		})
	}
	// The empty window and one just below the window's size are fine.
	for _, b := range [][]byte{
		mod(func(b []byte) []byte { return set(b, 0, -1) }),
		mod(func(b []byte) []byte { b = set(b, 10, 0); b[9+7-9/8] |= 1 << (9 % 8); return b }),
	} {
		var got Window
		if err := got.UnmarshalBinary(b); err != nil {
			t.Errorf("UnmarshalBinary: %v", err)
		}
	}
}

func FuzzWindowUnmarshal(f *testing.F) {
	var w Window
	b, _ := w.MarshalBinary()
	f.Add(b, uint64(1))
	for _, c := range []uint64{10, 7, 3000, math.MaxUint64} {
		w.Mark(c)
		b, _ = w.MarshalBinary()
		f.Add(b, c-1)
	}
	f.Fuzz(func(t *testing.T, b []byte, c uint64) {
		var w Window
		if err := w.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrWindowCorrupt) {
				t.Fatalf("error %v is not ErrWindowCorrupt", err)
			}
			return
		}
		again, _ := w.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
		// A window read from storage behaves: the highest is seen, and
		// a counter accepted once is refused the second time.
		if w.Highest() > 0 && w.Check(w.Highest()) == nil {
			t.Fatal("highest counter accepted")
		}
		if w.Accept(c) == nil && w.Check(c) == nil {
			t.Fatalf("counter %d accepted twice", c)
		}
		roundTrip(t, &w)
	})
}
