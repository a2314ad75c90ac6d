package keypad

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// recorder is a Sink that keeps the entries it gets.
type recorder struct {
	mu      sync.Mutex
	entries []string
}

func (r *recorder) KeypadEntry(entry string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, entry)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.entries...)
}

// countingFeedback counts Feedback calls.
type countingFeedback struct {
	mu                      sync.Mutex
	keys, accepted, rejects int
}

func (f *countingFeedback) Key()      { f.mu.Lock(); f.keys++; f.mu.Unlock() }
func (f *countingFeedback) Accepted() { f.mu.Lock(); f.accepted++; f.mu.Unlock() }
func (f *countingFeedback) Rejected() { f.mu.Lock(); f.rejects++; f.mu.Unlock() }

var _ Sink = (*recorder)(nil)
var _ Feedback = (*countingFeedback)(nil)

func pressAll(c *Collector, keys string) {
	for _, k := range keys {
		c.Press(k)
	}
}

func TestCollector(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want []string
	}{
		{"four digits", "1234#", []string{"1234"}},
		{"sixteen digits", "1234567890123456#", []string{"1234567890123456"}},
		{"seventeen digits kept", "12345678901234567#", []string{"12345678901234567"}},
		{"digits past seventeen dropped", "1234567890123456789012345#", []string{"12345678901234567"}},
		{"star in the middle clears", "12*3456#", []string{"3456"}},
		{"star at the end clears", "1234*#", nil},
		{"hash on empty submits nothing", "#", nil},
		{"hash twice submits once", "1234##", []string{"1234"}},
		{"two entries", "1111#2222#", []string{"1111", "2222"}},
		{"other runes ignored", "1a2 3\n4x#", []string{"1234"}},
		{"non-ascii digits ignored", "12٣4#", []string{"124"}},
		{"short entries passed on", "1#", []string{"1"}},
		{"over-long entry then fresh one", "123456789012345678#42#", []string{"12345678901234567", "42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink recorder
			c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock()})
			pressAll(c, tt.keys)
			got := sink.got()
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || len(got) != len(tt.want) {
				t.Fatalf("entries = %q, want %q", got, tt.want)
			}
			if n := c.Pending(); n != 0 {
				t.Errorf("Pending() = %d after the last key, want 0", n)
			}
		})
	}
}

func TestCollectorPendingAndWipe(t *testing.T) {
	var sink recorder
	c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock()})
	pressAll(c, "123")
	if n := c.Pending(); n != 3 {
		t.Fatalf("Pending() = %d, want 3", n)
	}
	c.Press('#')
	for i, b := range c.buf {
		if b != 0 {
			t.Fatalf("buf[%d] = %q after submit, want wiped", i, b)
		}
	}
	pressAll(c, "98765432109876543210")
	c.Press('*')
	for i, b := range c.buf {
		if b != 0 {
			t.Fatalf("buf[%d] = %q after clear, want wiped", i, b)
		}
	}
}

func TestCollectorFeedback(t *testing.T) {
	var sink recorder
	var fb countingFeedback
	c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock(), Feedback: &fb})
	pressAll(c, "12x*34#?#")
	if fb.keys != 7 {
		t.Errorf("Key() called %d times, want 7 (one per key, none for ignored runes)", fb.keys)
	}
	if fb.accepted != 0 || fb.rejects != 0 {
		t.Errorf("Accepted/Rejected called by the collector: %d/%d", fb.accepted, fb.rejects)
	}
}

func TestCollectorIdleTimeout(t *testing.T) {
	const timeout = 10 * time.Second
	tests := []struct {
		name  string
		steps []any // string: keys to press; time.Duration: advance the clock
		want  []string
	}{
		{"idle for the timeout clears", []any{"1234", timeout, "#"}, nil},
		{"idle clears, next entry stands alone", []any{"1234", timeout, "5678#"}, []string{"5678"}},
		{"just under the timeout keeps", []any{"1234", timeout - time.Millisecond, "#"}, []string{"1234"}},
		{"each key restarts the wait", []any{"12", timeout - time.Millisecond, "34", timeout - time.Millisecond, "#"}, []string{"1234"}},
		{"long idle clears", []any{"99", 5 * timeout, "1#"}, []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink recorder
			clk := clockwork.NewFakeClock()
			c := NewCollector(&sink, CollectorConfig{Clock: clk, Timeout: timeout})
			for _, s := range tt.steps {
				switch s := s.(type) {
				case string:
					pressAll(c, s)
				case time.Duration:
					clk.Advance(s)
				}
			}
			got := sink.got()
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || len(got) != len(tt.want) {
				t.Fatalf("entries = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCollectorIdleTimerWipes checks the entry is wiped by the idle timer
// itself, with no key needed to notice the timeout.
func TestCollectorIdleTimerWipes(t *testing.T) {
	var sink recorder
	clk := clockwork.NewFakeClock()
	c := NewCollector(&sink, CollectorConfig{Clock: clk}) // default timeout
	pressAll(c, "4321")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("idle timer never armed:", err)
	}
	clk.Advance(DefaultKeyTimeout - time.Millisecond)
	if n := c.Pending(); n != 4 {
		t.Fatalf("Pending() = %d before the timeout, want 4", n)
	}
	clk.Advance(time.Millisecond)
	// The fake clock runs the timer function on its own goroutine.
	for c.Pending() != 0 {
		if ctx.Err() != nil {
			t.Fatal("entry not wiped after the idle timeout")
		}
		time.Sleep(time.Millisecond)
	}
	c.mu.Lock()
	for i, b := range c.buf {
		if b != 0 {
			t.Errorf("buf[%d] = %q after timeout, want wiped", i, b)
		}
	}
	c.mu.Unlock()
	if got := sink.got(); len(got) != 0 {
		t.Fatalf("timeout submitted %q", got)
	}
}

func TestCollectorConcurrentPress(t *testing.T) {
	var sink recorder
	c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock()})
	// Each goroutine submits after every 4 of its digits, so between two
	// submits no goroutine adds more than 4 digits: with 4 goroutines no
	// entry can overflow and every digit pressed must come out.
	const goroutines, rounds = 4, 400
	var wg sync.WaitGroup
	var pressed [10]int
	for g := range goroutines {
		for i := range rounds {
			pressed[(g+i)%10]++
		}
		wg.Go(func() {
			for i := range rounds {
				c.Press(rune('0' + (g+i)%10))
				if i%4 == 3 {
					c.Press('#')
				}
				_ = c.Pending()
			}
		})
	}
	wg.Wait()
	c.Press('#')
	var got [10]int
	for _, e := range sink.got() {
		if len(e) < 1 || len(e) > MaxDigits || strings.Trim(e, "0123456789") != "" {
			t.Fatalf("bad entry of %d bytes: %q", len(e), e)
		}
		for _, d := range e {
			got[d-'0']++
		}
	}
	if got != pressed {
		t.Fatalf("digits delivered %v, pressed %v", got, pressed)
	}
}

// model is the collector's rule written the obvious way, without timeouts.
func model(keys []rune) []string {
	var out []string
	cur := ""
	for _, k := range keys {
		switch {
		case k == '*':
			cur = ""
		case k == '#':
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
		case k >= '0' && k <= '9':
			if len(cur) < MaxDigits+1 {
				cur += string(k)
			}
		}
	}
	return out
}

func FuzzCollector(f *testing.F) {
	f.Add("1234#")
	f.Add("12345678901234567890#*#")
	f.Add("*#*#1*2#")
	f.Add("\x00\xff#9")
	f.Fuzz(func(t *testing.T, keys string) {
		var sink recorder
		c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock()})
		runes := []rune(keys)
		for _, k := range runes {
			c.Press(k)
		}
		got := sink.got()
		for _, e := range got {
			if len(e) < 1 || len(e) > MaxDigits+1 || strings.Trim(e, "0123456789") != "" {
				t.Fatalf("bad entry %q", e)
			}
		}
		want := model(runes)
		if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != len(want) {
			t.Fatalf("entries = %q, want %q", got, want)
		}
	})
}

// The Typed observer follows the entry's length, and only its length.
func TestCollectorTypedObserver(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want []int
	}{
		{"digits then submit", "12#", []int{1, 2, 0}},
		{"star clears", "12*3", []int{1, 2, 0, 1}},
		{"star on empty says nothing", "*#", nil},
		{"digits past the kept ones say nothing", "123456789012345678", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			var sink recorder
			c := NewCollector(&sink, CollectorConfig{Clock: clockwork.NewFakeClock(), Typed: func(n int) { got = append(got, n) }})
			pressAll(c, tt.keys)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Typed calls = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("timeout clears", func(t *testing.T) {
		clock := clockwork.NewFakeClock()
		var mu sync.Mutex
		var got []int
		c := NewCollector(&recorder{}, CollectorConfig{Clock: clock, Timeout: time.Second, Typed: func(n int) {
			mu.Lock()
			got = append(got, n)
			mu.Unlock()
		}})
		pressAll(c, "12")
		clock.Advance(2 * time.Second)
		c.Press('3') // finds the entry timed out even if the timer has not run
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, []int{1, 2, 0, 1}) {
			t.Errorf("Typed calls = %v, want [1 2 0 1]", got)
		}
	})
}
