package display

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
)

func newPanel(t *testing.T) (*Panel, *Sim, map[int]*gpiotest.Pin, *clockwork.FakeClock) {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	pins := map[int]*gpiotest.Pin{1: {N: "led1", L: gpio.High}, 2: {N: "led2", L: gpio.High}}
	leds := map[int]gpio.PinOut{1: pins[1], 2: pins[2]}
	sim := &Sim{}
	p, err := NewPanel(PanelConfig{Driver: sim, LEDs: leds, LEDOn: gpio.High, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p, sim, pins, clock
}

func TestPanelRefreshesOnChange(t *testing.T) {
	p, sim, pins, clock := newPanel(t)
	for bin, pin := range pins {
		if pin.Read() != gpio.Low {
			t.Errorf("led %d lit after NewPanel", bin)
		}
	}
	shows := sim.Shows()
	p.Typed(2)
	p.Refresh()
	p.Refresh()
	if sim.Text() != "--" || sim.Shows() != shows+1 {
		t.Errorf("text %q after %d shows, want -- after one more than %d", sim.Text(), sim.Shows(), shows)
	}
	p.Typed(0)
	p.Opened(2)
	p.Refresh()
	if sim.Text() != "b 2" || p.Text() != "b 2" || pins[2].Read() != gpio.High || pins[1].Read() != gpio.Low {
		t.Errorf("text %q, leds %s %s", sim.Text(), pins[1].Read(), pins[2].Read())
	}
	p.OpenFailed(2)
	var seen []gpio.Level
	for range 4 {
		next, err := p.Refresh()
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, pins[2].Read())
		clock.Advance(next.Sub(clock.Now()))
	}
	want := []gpio.Level{gpio.High, gpio.Low, gpio.High, gpio.Low}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("blinking led: %v, want %v", seen, want)
		}
	}
	clock.Advance(DefaultBlinkFor)
	p.Refresh()
	if pins[2].Read() != gpio.Low || p.LEDs()[2] != LEDOff {
		t.Errorf("led 2 %s (%s) after the blink ended", pins[2].Read(), p.LEDs()[2])
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
}

// flaky is a Driver that fails while fail is set.
type flaky struct {
	Sim
	mu   sync.Mutex
	fail bool
}

func (f *flaky) Show(text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("i2c: no ACK")
	}
	return f.Sim.Show(text)
}

func TestPanelRetriesAfterDisplayError(t *testing.T) {
	d := &flaky{}
	p, err := NewPanel(PanelConfig{Driver: d, Clock: clockwork.NewFakeClockAt(t0)})
	if err != nil {
		t.Fatal(err)
	}
	d.fail = true
	p.Rejected()
	if _, err := p.Refresh(); err == nil {
		t.Fatal("Refresh hid a display error")
	}
	d.fail = false
	if _, err := p.Refresh(); err != nil || d.Text() != "Err" {
		t.Errorf("Refresh = %v, text %q, want Err written again", err, d.Text())
	}
}

func TestPanelRun(t *testing.T) {
	p, sim, pins, clock := newPanel(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	p.LockedOut(clock.Now().Add(2 * time.Second))
	// Run waits on the timer of the next second once it applied the input.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := sim.Text(); got != "2" {
		t.Errorf("text %q, want 2", got)
	}
	clock.Advance(time.Second)
	clock.BlockUntilContext(ctx, 1)
	if got := sim.Text(); got != "1" {
		t.Errorf("text %q, want 1", got)
	}
	p.Opened(1)
	p.LockoutEnded()
	clock.BlockUntilContext(ctx, 0) // nothing timed is pending
	for sim.Text() != "b 1" {       // Run applies the inputs in its own time
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sim.Text() != "" || pins[1].Read() != gpio.Low {
		t.Errorf("after Run: text %q, led 1 %s", sim.Text(), pins[1].Read())
	}
}

// wire is a shared log of the levels driven on two recording pins.
type wire struct {
	mu  sync.Mutex
	log []edge
}

type edge struct {
	pin   string
	level gpio.Level
}

type recPin struct {
	gpiotest.Pin
	w *wire
}

func (p *recPin) Out(l gpio.Level) error {
	p.w.mu.Lock()
	p.w.log = append(p.w.log, edge{p.N, l})
	p.w.mu.Unlock()
	return p.Pin.Out(l)
}

func (p *recPin) PWM(gpio.Duty, physic.Frequency) error { return errors.New("no PWM") }

// decode reads the TM1637 conversation from the log: a start is DIO
// falling while CLK is high, a bit is DIO at a CLK rising edge (LSB first,
// 8 data bits then an ACK clock), a stop is DIO rising while CLK is high.
func (w *wire) decode() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	var frames [][]byte
	clk, dio := gpio.High, gpio.High
	var cur []byte
	var bits, n int
	in := false
	for _, e := range w.log {
		switch e.pin {
		case "dio":
			if clk == gpio.High && dio == gpio.High && e.level == gpio.Low {
				in, cur, bits, n = true, nil, 0, 0
			}
			if clk == gpio.High && dio == gpio.Low && e.level == gpio.High && in {
				frames = append(frames, cur)
				in = false
			}
			dio = e.level
		case "clk":
			if clk == gpio.Low && e.level == gpio.High && in {
				if n < 8 {
					if dio == gpio.High {
						bits |= 1 << n
					}
					n++
				} else { // the ACK clock
					cur = append(cur, byte(bits))
					bits, n = 0, 0
				}
			}
			clk = e.level
		}
	}
	return frames
}

func TestTM1637(t *testing.T) {
	w := &wire{}
	clk := &recPin{Pin: gpiotest.Pin{N: "clk"}, w: w}
	dio := &recPin{Pin: gpiotest.Pin{N: "dio"}, w: w}
	d, err := NewTM1637(clk, dio)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Show("b 7"); err != nil {
		t.Fatal(err)
	}
	got := w.decode()
	want := [][]byte{
		{0x40}, {0xC0, 0, 0, 0, 0, 0, 0}, // blank at start
		{0x8B},                                 // display on, 10/16
		{0x40}, {0xC0, 0x7c, 0, 0x07, 0, 0, 0}, // b 7
	}
	if len(got) != len(want) {
		t.Fatalf("frames % x, want % x", got, want)
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Errorf("frame %d = % x, want % x", i, got[i], want[i])
		}
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if got := w.decode(); string(got[len(got)-1]) != "\x80" {
		t.Errorf("Halt's last frame % x, want 80 (display off)", got[len(got)-1])
	}
}
