package keypad

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// waitLevel waits for pin to reach want: the fake clock runs timer
// functions on goroutines of their own.
func waitLevel(t *testing.T, pin *gpiotest.Pin, want gpio.Level) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pin.Read() != want {
		if time.Now().After(deadline) {
			t.Fatalf("pin is %s, want %s", pin.Read(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// armed waits until the buzzer has armed its next step's timer, which it
// does after setting the step's level.
func armed(t *testing.T, clk *clockwork.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("buzzer timer not armed:", err)
	}
}

func expectLevel(t *testing.T, pin *gpiotest.Pin, want gpio.Level, when string) {
	t.Helper()
	if got := pin.Read(); got != want {
		t.Fatalf("%s: pin is %s, want %s", when, got, want)
	}
}

func newTestBuzzer() (*Buzzer, *gpiotest.Pin, *clockwork.FakeClock) {
	pin := &gpiotest.Pin{N: "BUZZ"}
	clk := clockwork.NewFakeClock()
	return NewBuzzer(pin, clk, nil), pin, clk
}

func TestBuzzerSingleBeeps(t *testing.T) {
	tests := []struct {
		name string
		play func(*Buzzer)
		d    time.Duration
	}{
		{"key", (*Buzzer).Key, KeyBeep},
		{"rejected", (*Buzzer).Rejected, RejectBeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, pin, clk := newTestBuzzer()
			tt.play(b)
			expectLevel(t, pin, gpio.High, "at once")
			armed(t, clk)
			clk.Advance(tt.d - time.Millisecond)
			expectLevel(t, pin, gpio.High, "just before the end")
			clk.Advance(time.Millisecond)
			waitLevel(t, pin, gpio.Low)
		})
	}
}

func TestBuzzerAccepted(t *testing.T) {
	b, pin, clk := newTestBuzzer()
	b.Accepted()
	expectLevel(t, pin, gpio.High, "first beep")
	armed(t, clk)
	clk.Advance(AcceptBeep)
	armed(t, clk)
	expectLevel(t, pin, gpio.Low, "gap")
	clk.Advance(AcceptGap)
	armed(t, clk)
	expectLevel(t, pin, gpio.High, "second beep")
	clk.Advance(AcceptBeep - time.Millisecond)
	expectLevel(t, pin, gpio.High, "just before the end of the second beep")
	clk.Advance(time.Millisecond)
	waitLevel(t, pin, gpio.Low)
}

// TestBuzzerNewPatternCutsIn checks a key beep during a reject beep cuts
// it short: the pin goes low after the key beep, long before the reject
// beep would have ended.
func TestBuzzerNewPatternCutsIn(t *testing.T) {
	b, pin, clk := newTestBuzzer()
	b.Rejected()
	armed(t, clk)
	clk.Advance(100 * time.Millisecond)
	b.Key()
	expectLevel(t, pin, gpio.High, "key beep")
	armed(t, clk)
	clk.Advance(KeyBeep)
	waitLevel(t, pin, gpio.Low)
}

func TestBuzzerHalt(t *testing.T) {
	b, pin, clk := newTestBuzzer()
	b.Rejected()
	expectLevel(t, pin, gpio.High, "reject beep")
	if err := b.Halt(); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, pin, gpio.Low, "after Halt")
	b.Key()
	b.Accepted()
	expectLevel(t, pin, gpio.Low, "beeps after Halt")
	clk.Advance(time.Second)
	expectLevel(t, pin, gpio.Low, "a second after Halt")
}

// failingPin is an output that refuses every level.
type failingPin struct{ gpiotest.Pin }

var errPin = errors.New("pin broken")

func (p *failingPin) Out(gpio.Level) error { return errPin }

func TestBuzzerHaltError(t *testing.T) {
	b := NewBuzzer(&failingPin{Pin: gpiotest.Pin{N: "BAD"}}, clockwork.NewFakeClock(), nil)
	b.Key() // must not panic or block
	if err := b.Halt(); !errors.Is(err, errPin) {
		t.Fatalf("Halt() = %v, want it to wrap %v", err, errPin)
	}
}
