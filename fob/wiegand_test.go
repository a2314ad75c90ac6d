package fob

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/internal/wiegand"
)

const (
	card26 = "1 10101011 1100110111101111 1"         // facility AB, card CDEF
	card34 = "1 0001001000110100 0101011001111000 1" // facility 1234, card 5678
	pulse  = 2 * time.Millisecond
)

func newWiegand(t testing.TB, cfg WiegandConfig) *WiegandReader {
	t.Helper()
	r, err := NewWiegandReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addBits(t testing.TB, e *wiegand.Edges, bits string) {
	t.Helper()
	if err := e.AddBits(bits, pulse); err != nil {
		t.Fatal(err)
	}
}

func TestWiegandReaderPresence(t *testing.T) {
	edges := wiegand.NewEdges()
	framer := wiegand.NewFramer(edges, wiegand.WithPoll(5*time.Millisecond))
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	const name = "wiegand:GPIO5/GPIO6"
	r := newWiegand(t, WiegandConfig{
		Name:   name,
		Bin:    2,
		Source: framer,
		Bits:   26,
		Sink:   sink,
		Clock:  clock,
	})
	runReader(t, r.Run)

	// A card held in the field, read again and again.
	addBits(t, edges, card26+"|"+card26+"|"+card26)
	waitStats(t, r.Stats, "3 frames", func(s Stats) bool { return s.Frames == 3 })
	sink.expect(t, present(2, "ABCDEF"))
	if s := r.Stats(); s.Present != "ABCDEF" || s.Name != name || s.Type != TypeWiegand || s.Bin != 2 {
		t.Errorf("stats = %+v", s)
	}

	clock.Advance(DefaultAbsentAfter - time.Millisecond)
	sink.expect(t, present(2, "ABCDEF"))
	clock.Advance(time.Millisecond)
	sink.wait(t, present(2, "ABCDEF"), absent(2))

	// Frames of the wrong length, bad parity and overlong bursts are
	// counted and never reported.
	addBits(t, edges, card34+"|"+"0 10101011 1100110111101111 1"+"|"+strings.Repeat("1", 70)+"|"+"0101")
	s := waitStats(t, r.Stats, "noise and bad parity", func(s Stats) bool {
		return s.Noise == 3 && s.BadChecksum == 1
	})
	if s.Frames != 3 || s.Present != "" {
		t.Errorf("stats = %+v", s)
	}
	sink.expect(t, present(2, "ABCDEF"), absent(2))

	// The card comes back.
	addBits(t, edges, card26)
	sink.wait(t, present(2, "ABCDEF"), absent(2), present(2, "ABCDEF"))
}

func TestWiegandReaderFirstReportAbsent(t *testing.T) {
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	r := newWiegand(t, WiegandConfig{
		Name:   "w",
		Bin:    7,
		Source: wiegand.NewFramer(wiegand.NewEdges(), wiegand.WithPoll(5*time.Millisecond)),
		Bits:   34,
		Sink:   sink,
		Clock:  clock,
	})
	runReader(t, r.Run)
	if err := clock.BlockUntilContext(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultAbsentAfter)
	sink.wait(t, absent(7))
}

func TestWiegandReaderSerialFormat(t *testing.T) {
	tests := []struct {
		name   string
		bits   int
		format wiegand.SerialFormat
		frame  string
		want   string
	}{
		{"26 raw", 26, wiegand.FormatRaw, card26, "ABCDEF"},
		{"26 facility_card", 26, wiegand.FormatFacilityCard, card26, "ABCDEF"},
		{"34 raw", 34, wiegand.FormatRaw, card34, "12345678"},
		{"34 facility_card", 34, wiegand.FormatFacilityCard, card34, "12345678"},
		{"34 small numbers", 34, wiegand.FormatFacilityCard, "1 0000000000000001 0000000000000010 0", "00010002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edges := wiegand.NewEdges()
			sink := newRecorder()
			r := newWiegand(t, WiegandConfig{
				Name:   "w",
				Bin:    1,
				Source: wiegand.NewFramer(edges, wiegand.WithPoll(5*time.Millisecond)),
				Bits:   tt.bits,
				Format: tt.format,
				Sink:   sink,
				Clock:  clockwork.NewFakeClock(),
			})
			runReader(t, r.Run)
			addBits(t, edges, tt.frame)
			sink.wait(t, present(1, tt.want))
		})
	}
}

// script is a FrameSource fed by a test.
type script chan result

type result struct {
	f   wiegand.Frame
	err error
}

func (s script) Next(ctx context.Context) (wiegand.Frame, error) {
	select {
	case r := <-s:
		return r.f, r.err
	case <-ctx.Done():
		return wiegand.Frame{}, ctx.Err()
	}
}

func TestWiegandReaderSourceFault(t *testing.T) {
	src := make(script)
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	card, err := wiegand.NewCard(26, 0xAB, 0xCDEF)
	if err != nil {
		t.Fatal(err)
	}
	r := newWiegand(t, WiegandConfig{
		Name:   "w",
		Bin:    1,
		Source: src,
		Bits:   26,
		Sink:   sink,
		Clock:  clock,
	})
	runReader(t, r.Run)
	ctx := testContext(t)

	src <- result{f: card.Frame()}
	sink.wait(t, present(1, "ABCDEF"))

	lineErr := errors.New("line request revoked")
	src <- result{err: lineErr}
	sink.wait(t, present(1, "ABCDEF"), fault(1))
	if s := r.Stats(); !s.Faulted || s.Present != "" || !strings.Contains(s.LastError, "line request revoked") {
		t.Errorf("stats while faulted = %+v", s)
	}
	// Only the backoff timer is left: the absent timer stopped with the
	// fault, since presence is unknown now.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultMinBackoff)
	src <- result{err: lineErr} // still failing: no second report
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	sink.expect(t, present(1, "ABCDEF"), fault(1))
	clock.Advance(2 * DefaultMinBackoff)
	src <- result{f: card.Frame()}
	sink.wait(t, present(1, "ABCDEF"), fault(1), ok(1), present(1, "ABCDEF"))
	s := waitStats(t, r.Stats, "2 frames", func(s Stats) bool { return s.Frames == 2 })
	if s.Reopens != 1 || s.Faulted {
		t.Errorf("stats after recovery = %+v", s)
	}
	sink.mu.Lock()
	ferr := sink.errs[0]
	sink.mu.Unlock()
	if !errors.Is(ferr, lineErr) {
		t.Errorf("fault error %v does not wrap %v", ferr, lineErr)
	}
}

func TestWiegandReaderRunOnce(t *testing.T) {
	r := newWiegand(t, WiegandConfig{Name: "w", Source: make(script), Bits: 26, Sink: newRecorder()})
	runReader(t, r.Run)
	deadline := time.Now().Add(10 * time.Second)
	for !r.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if err := r.Run(testContext(t)); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestNewWiegandReader(t *testing.T) {
	sink := newRecorder()
	src := make(script)
	tests := []struct {
		name string
		cfg  WiegandConfig
	}{
		{"no name", WiegandConfig{Source: src, Bits: 26, Sink: sink}},
		{"no source", WiegandConfig{Name: "w", Bits: 26, Sink: sink}},
		{"no sink", WiegandConfig{Name: "w", Source: src, Bits: 26}},
		{"no bits", WiegandConfig{Name: "w", Source: src, Sink: sink}},
		{"30 bits", WiegandConfig{Name: "w", Source: src, Bits: 30, Sink: sink}},
		{"bad format", WiegandConfig{Name: "w", Source: src, Bits: 26, Sink: sink, Format: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWiegandReader(tt.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := NewWiegandReader(WiegandConfig{Name: "w", Source: src, Bits: 34, Sink: sink}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
