package wiegand

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

const bit = 2 * time.Millisecond // a typical pulse interval

// closedBits returns a closed Edges playing a bit string.
func closedBits(t testing.TB, bits string) *Edges {
	t.Helper()
	e, err := ParseBits(bits, bit)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	return e
}

// drain returns every frame of f until its source ends.
func drain(t testing.TB, f *Framer) ([]Frame, error) {
	t.Helper()
	var frames []Frame
	for {
		fr, err := f.Next(context.Background())
		if err != nil {
			return frames, err
		}
		frames = append(frames, fr)
		if len(frames) > 10000 {
			t.Fatal("framer does not end")
		}
	}
}

func TestFramer(t *testing.T) {
	card26 := "1 10101011 1100110111101111 1"
	card34 := "1 0001001000110100 0101011001111000 1"
	tests := []struct {
		name     string
		edges    *Edges
		opts     []Option
		want     []string // frames as bit strings
		overlong uint64
	}{
		{name: "one 26-bit frame", edges: closedBits(t, card26), want: []string{card26}},
		{name: "one 34-bit frame", edges: closedBits(t, card34), want: []string{card34}},
		{name: "frames split by pauses", edges: closedBits(t, card26+"|"+card34+"||"+"0101"), want: []string{card26, card34, "0101"}},
		{name: "leading silence", edges: closedBits(t, "|||"+card26), want: []string{card26}},
		{name: "no edges", edges: closedBits(t, ""), want: nil},
		{
			name:  "gap of exactly 25 ms keeps the frame",
			edges: closed(NewEdges(Edge{1, bit}, Edge{0, DefaultGap}, Edge{1, bit})),
			want:  []string{"101"},
		},
		{
			name:  "gap over 25 ms ends the frame",
			edges: closed(NewEdges(Edge{1, bit}, Edge{0, DefaultGap + time.Millisecond}, Edge{1, bit})),
			want:  []string{"1", "01"},
		},
		{
			name: "jitter below the gap",
			edges: closed(NewEdges(Edge{1, 0}, Edge{1, 20 * time.Millisecond}, Edge{0, time.Millisecond},
				Edge{0, 24 * time.Millisecond}, Edge{1, 3 * time.Millisecond})),
			want: []string{"11001"},
		},
		{
			name:  "longer gap option",
			edges: closed(NewEdges(Edge{1, bit}, Edge{0, 40 * time.Millisecond}, Edge{1, bit})),
			opts:  []Option{WithGap(50 * time.Millisecond)},
			want:  []string{"101"},
		},
		{
			name:  "shorter gap option",
			edges: closed(NewEdges(Edge{1, bit}, Edge{0, 10 * time.Millisecond}, Edge{1, bit})),
			opts:  []Option{WithGap(5 * time.Millisecond)},
			want:  []string{"1", "01"},
		},
		{
			name:  "zero options keep the defaults",
			edges: closed(NewEdges(Edge{1, bit}, Edge{0, DefaultGap}, Edge{1, 2 * DefaultPoll})),
			opts:  []Option{WithGap(0), WithPoll(-1)},
			want:  []string{"10", "1"},
		},
		{name: "64 bits are kept", edges: closedBits(t, strings.Repeat("1", 64)), want: []string{strings.Repeat("1", 64)}},
		{
			name:     "65 bits are noise",
			edges:    closedBits(t, strings.Repeat("1", 65)+"|"+card26),
			want:     []string{card26},
			overlong: 1,
		},
		{
			name:     "a long burst is noise",
			edges:    closedBits(t, card26+"|"+strings.Repeat("10", 500)+"|"+card26),
			want:     []string{card26, card26},
			overlong: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFramer(tt.edges, tt.opts...)
			frames, err := drain(t, f)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end err = %v, want io.EOF", err)
			}
			if len(frames) != len(tt.want) {
				t.Fatalf("got %d frames %+v, want %d", len(frames), frames, len(tt.want))
			}
			for i, w := range tt.want {
				if want := frameOf(t, w); frames[i] != want {
					t.Errorf("frame %d = %+v, want %+v", i, frames[i], want)
				}
			}
			if got := f.Overlong(); got != tt.overlong {
				t.Errorf("Overlong() = %d, want %d", got, tt.overlong)
			}
			if got := f.Frames(); got != uint64(len(tt.want)) {
				t.Errorf("Frames() = %d, want %d", got, len(tt.want))
			}
		})
	}
}

func closed(e *Edges) *Edges {
	e.Close()
	return e
}

func TestFramerBadLine(t *testing.T) {
	f := NewFramer(closed(NewEdges(Edge{1, bit}, Edge{2, bit})))
	if _, err := f.Next(context.Background()); !errors.Is(err, ErrLine) {
		t.Fatalf("err = %v, want ErrLine", err)
	}
}

// failing reports its edges, then fails.
type failing struct {
	edges []int
	err   error
}

func (s *failing) WaitForEdge(time.Duration) (int, error) {
	if len(s.edges) == 0 {
		return NoEdge, s.err
	}
	l := s.edges[0]
	s.edges = s.edges[1:]
	return l, nil
}

func TestFramerSourceErrorDropsPartialFrame(t *testing.T) {
	boom := errors.New("line request gone")
	f := NewFramer(&failing{edges: []int{1, 0, 1}, err: boom})
	fr, err := f.Next(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if fr != (Frame{}) {
		t.Errorf("frame = %+v, want none", fr)
	}
	if !strings.HasPrefix(err.Error(), "wiegand: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestFramerContext(t *testing.T) {
	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := NewFramer(NewEdges(Edge{1, 0}))
		if _, err := f.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("canceled while the line is silent", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := NewFramer(NewEdges(), WithPoll(time.Millisecond))
		done := make(chan error, 1)
		go func() {
			_, err := f.Next(ctx)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestFramerLiveEdges(t *testing.T) {
	// An open Edges fed while Next waits, as a GPIO line would be.
	e := NewEdges()
	f := NewFramer(e, WithPoll(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Frame, 2)
	errc := make(chan error, 1)
	go func() {
		for {
			fr, err := f.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			got <- fr
		}
	}()
	card := "1 10101011 1100110111101111 1"
	for range 2 {
		if err := e.AddBits(card, bit); err != nil {
			t.Fatal(err)
		}
		select {
		case fr := <-got:
			if want := frameOf(t, card); fr != want {
				t.Fatalf("frame = %+v, want %+v", fr, want)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no frame")
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestParseBits(t *testing.T) {
	e, err := ParseBits("1_0 |1", bit)
	if err != nil {
		t.Fatal(err)
	}
	want := []Edge{{1, bit}, {0, bit}, {1, bit + Pause}}
	if e.Len() != len(want) {
		t.Fatalf("len = %d, want %d", e.Len(), len(want))
	}
	for i, w := range want {
		if e.edges[i] != w {
			t.Errorf("edge %d = %+v, want %+v", i, e.edges[i], w)
		}
	}
	if _, err := ParseBits("10x", bit); err == nil {
		t.Error("ParseBits accepted 'x'")
	}
}

// FuzzFramer plays random edges, each byte one edge: the low bit is the
// line, the rest the silence before it in milliseconds. The frames must be
// what a plain split at every silence longer than the gap gives, with
// bursts over 64 bits dropped and counted.
func FuzzFramer(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 255, 1})
	f.Add([]byte{0x33, 0x32, 0x35})
	f.Add(make([]byte, 70))
	f.Add([]byte{200, 201, 50, 51, 52})
	f.Fuzz(func(t *testing.T, data []byte) {
		gap := DefaultGap
		var edges []Edge
		var want []Frame
		var cur Frame
		var overlong uint64
		end := func() {
			switch {
			case cur.N > MaxBits:
				overlong++
			case cur.N > 0:
				want = append(want, cur)
			}
			cur = Frame{}
		}
		for _, b := range data {
			e := Edge{Line: int(b & 1), After: time.Duration(b>>1) * time.Millisecond}
			edges = append(edges, e)
			if e.After > gap {
				end()
			}
			if cur.N < MaxBits {
				cur.Bits = cur.Bits<<1 | uint64(e.Line)
			}
			cur.N++
		}
		end()

		fr := NewFramer(closed(NewEdges(edges...)), WithGap(gap))
		got, err := drain(t, fr)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("end err = %v, want io.EOF", err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d frames, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("frame %d = %+v, want %+v", i, got[i], want[i])
			}
			if got[i].N < 1 || got[i].N > MaxBits {
				t.Fatalf("frame %d has %d bits", i, got[i].N)
			}
		}
		if fr.Overlong() != overlong {
			t.Fatalf("Overlong() = %d, want %d", fr.Overlong(), overlong)
		}
	})
}
