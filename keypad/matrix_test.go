package keypad

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// fakeMatrix wires row outputs to column inputs through a set of pressed
// keys: a column reads the active level while a row at the active level
// has a pressed key on it, else its pull level.
type fakeMatrix struct {
	rows   []*gpiotest.Pin
	cols   []*fakeCol
	active gpio.Level

	mu   sync.Mutex
	down map[[2]int]bool
}

// fakeCol is a column input whose level depends on the driven rows.
type fakeCol struct {
	gpiotest.Pin
	m *fakeMatrix
	c int
}

func (p *fakeCol) Read() gpio.Level {
	for r, row := range p.m.rows {
		if row.Read() == p.m.active && p.m.isDown(r, p.c) {
			return p.m.active
		}
	}
	return !p.m.active
}

func newFakeMatrix(nRows, nCols int, active gpio.Level) *fakeMatrix {
	m := &fakeMatrix{active: active, down: map[[2]int]bool{}}
	for r := range nRows {
		m.rows = append(m.rows, &gpiotest.Pin{N: "ROW", Num: r})
	}
	for c := range nCols {
		m.cols = append(m.cols, &fakeCol{Pin: gpiotest.Pin{N: "COL", Num: c}, m: m, c: c})
	}
	return m
}

func (m *fakeMatrix) isDown(r, c int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down[[2]int{r, c}]
}

func (m *fakeMatrix) set(r, c int, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[[2]int{r, c}] = down
}

func (m *fakeMatrix) config(clk clockwork.Clock) MatrixConfig {
	cfg := MatrixConfig{Clock: clk, ActiveHigh: bool(m.active)}
	for _, r := range m.rows {
		cfg.Rows = append(cfg.Rows, r)
	}
	for _, c := range m.cols {
		cfg.Cols = append(cfg.Cols, c)
	}
	return cfg
}

// matrixRig runs a Matrix on a fakeMatrix with a fake clock.
type matrixRig struct {
	t    *testing.T
	fake *fakeMatrix
	mx   *Matrix
	keys *keyLog
	clk  *clockwork.FakeClock
	ctx  context.Context
	stop func() error
}

const testScan = DefaultScanInterval

func newMatrixRig(t *testing.T, fake *fakeMatrix, layout []string) *matrixRig {
	t.Helper()
	clk := clockwork.NewFakeClock()
	keys := &keyLog{}
	cfg := fake.config(clk)
	cfg.Layout = layout
	mx, err := NewMatrix(keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mx.Run(runCtx) }()
	stop := sync.OnceValue(func() error {
		stopRun()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			t.Error("Run did not return")
			return nil
		}
	})
	t.Cleanup(func() {
		stop()
		cancel()
	})
	rig := &matrixRig{t: t, fake: fake, mx: mx, keys: keys, clk: clk, ctx: ctx, stop: stop}
	rig.settled()
	return rig
}

// settled waits until Run has armed its scan timer: after set-up, or after
// the scan the last Advance triggered.
func (g *matrixRig) settled() {
	g.t.Helper()
	if err := g.clk.BlockUntilContext(g.ctx, 1); err != nil {
		g.t.Fatal("scan timer not armed:", err)
	}
}

// run lets d of scanning pass, one scan at a time.
func (g *matrixRig) run(d time.Duration) {
	g.t.Helper()
	for elapsed := time.Duration(0); elapsed < d; elapsed += testScan {
		g.clk.Advance(testScan)
		g.settled()
	}
}

func (g *matrixRig) expectKeys(want string) {
	g.t.Helper()
	if got := g.keys.String(); got != want {
		g.t.Fatalf("keys = %q, want %q", got, want)
	}
}

func TestMatrixLayout(t *testing.T) {
	layout := DefaultLayout
	for r, row := range layout {
		for c, k := range []rune(row) {
			t.Run(string(k), func(t *testing.T) {
				g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
				g.fake.set(r, c, true)
				g.run(20 * time.Millisecond)
				g.expectKeys(string(k))
			})
		}
	}
}

func TestMatrixCustomLayout(t *testing.T) {
	g := newMatrixRig(t, newFakeMatrix(4, 4, gpio.Low), []string{"123A", "456B", "789C", "*0#D"})
	for _, rc := range [][2]int{{0, 3}, {3, 1}, {2, 3}} {
		g.fake.set(rc[0], rc[1], true)
		g.run(20 * time.Millisecond)
		g.fake.set(rc[0], rc[1], false)
		g.run(20 * time.Millisecond)
	}
	g.expectKeys("A0C")
}

func TestMatrixOnePressOnce(t *testing.T) {
	g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
	g.fake.set(1, 1, true) // '5'
	g.run(DefaultDebounce - testScan)
	g.expectKeys("") // not yet stable for the debounce time
	g.run(2 * testScan)
	g.expectKeys("5")
	g.run(time.Second) // held down: no repeat
	g.expectKeys("5")
	g.fake.set(1, 1, false)
	g.run(20 * time.Millisecond)
	g.fake.set(1, 1, true)
	g.run(20 * time.Millisecond)
	g.expectKeys("55")
	if st := g.mx.Stats(); st.Keys != 2 || st.Dropped != 0 {
		t.Fatalf("Stats() = %+v, want 2 keys, 0 dropped", st)
	}
}

func TestMatrixBounce(t *testing.T) {
	tests := []struct {
		name string
		// pattern of (down, duration) phases, then the key is released
		phases []struct {
			down bool
			d    time.Duration
		}
		want string
	}{
		{"bounces shorter than debounce ignored", []struct {
			down bool
			d    time.Duration
		}{
			{true, 4 * time.Millisecond}, {false, 2 * time.Millisecond},
			{true, 6 * time.Millisecond}, {false, 4 * time.Millisecond},
			{true, 2 * time.Millisecond}, {false, 50 * time.Millisecond},
		}, ""},
		{"bouncy press then a steady hold reported once", []struct {
			down bool
			d    time.Duration
		}{
			{true, 2 * time.Millisecond}, {false, 2 * time.Millisecond},
			{true, 4 * time.Millisecond}, {false, 2 * time.Millisecond},
			{true, 100 * time.Millisecond}, {false, 50 * time.Millisecond},
		}, "8"},
		{"chatter on release does not repeat", []struct {
			down bool
			d    time.Duration
		}{
			{true, 50 * time.Millisecond},
			{false, 2 * time.Millisecond}, {true, 2 * time.Millisecond},
			{false, 4 * time.Millisecond}, {true, 6 * time.Millisecond},
			{false, 50 * time.Millisecond},
		}, "8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
			for _, p := range tt.phases {
				g.fake.set(2, 1, p.down) // '8'
				g.run(p.d)
			}
			g.expectKeys(tt.want)
		})
	}
}

func TestMatrixTwoKeysIgnored(t *testing.T) {
	t.Run("pressed together", func(t *testing.T) {
		g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
		g.fake.set(0, 0, true) // '1'
		g.fake.set(2, 2, true) // '9'
		g.run(100 * time.Millisecond)
		g.fake.set(0, 0, false)
		g.fake.set(2, 2, false)
		g.run(50 * time.Millisecond)
		g.expectKeys("")
		if st := g.mx.Stats(); st.Dropped != 1 {
			t.Fatalf("Dropped = %d, want 1", st.Dropped)
		}
	})
	t.Run("same column", func(t *testing.T) {
		g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
		g.fake.set(0, 1, true) // '2'
		g.fake.set(3, 1, true) // '0'
		g.run(100 * time.Millisecond)
		g.expectKeys("")
	})
	t.Run("second key while the first is held", func(t *testing.T) {
		g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
		g.fake.set(0, 0, true) // '1'
		g.run(50 * time.Millisecond)
		g.fake.set(0, 1, true) // '2' too
		g.run(50 * time.Millisecond)
		g.fake.set(0, 1, false) // back to '1' alone: still the same press
		g.run(50 * time.Millisecond)
		g.fake.set(0, 0, false)
		g.run(50 * time.Millisecond)
		g.expectKeys("1")
	})
	t.Run("rollover to the second key", func(t *testing.T) {
		g := newMatrixRig(t, newFakeMatrix(4, 3, gpio.Low), nil)
		g.fake.set(0, 0, true) // '1'
		g.run(50 * time.Millisecond)
		g.fake.set(0, 1, true) // '2' too
		g.run(50 * time.Millisecond)
		g.fake.set(0, 0, false) // '2' alone: a new key
		g.run(50 * time.Millisecond)
		g.expectKeys("12")
	})
}

func TestMatrixActiveLevels(t *testing.T) {
	tests := []struct {
		name     string
		active   gpio.Level
		pull     gpio.Pull
		inactive gpio.Level
	}{
		{"active low", gpio.Low, gpio.PullUp, gpio.High},
		{"active high", gpio.High, gpio.PullDown, gpio.Low},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeMatrix(4, 3, tt.active)
			g := newMatrixRig(t, fake, nil)
			for _, c := range fake.cols {
				if c.Pull() != tt.pull {
					t.Errorf("column %d pull = %s, want %s", c.Num, c.Pull(), tt.pull)
				}
			}
			fake.set(3, 2, true) // '#'
			g.run(20 * time.Millisecond)
			g.expectKeys("#")
			// The key is still down when Run stops.
			if err := g.stop(); err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			for r, row := range fake.rows {
				if row.Read() != tt.inactive {
					t.Errorf("row %d left %s after stop, want %s", r, row.Read(), tt.inactive)
				}
			}
		})
	}
}

func TestNewMatrixInvalid(t *testing.T) {
	fake := newFakeMatrix(4, 3, gpio.Low)
	tests := []struct {
		name   string
		edit   func(*MatrixConfig)
		layout []string
	}{
		{"layout rows short", nil, []string{"123", "456", "789"}},
		{"layout row too long", nil, []string{"123", "456", "789", "*0#D"}},
		{"no rows", func(c *MatrixConfig) { c.Rows = nil }, nil},
		{"no cols", func(c *MatrixConfig) { c.Cols = nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fake.config(clockwork.NewFakeClock())
			cfg.Layout = tt.layout
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			if _, err := NewMatrix(&keyLog{}, cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewMatrix() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// brokenRow is a row output that fails.
type brokenRow struct{ gpiotest.Pin }

func (p *brokenRow) Out(gpio.Level) error { return errPin }

func TestMatrixPinError(t *testing.T) {
	fake := newFakeMatrix(1, 3, gpio.Low)
	cfg := fake.config(clockwork.NewFakeClock())
	cfg.Rows = []gpio.PinOut{&brokenRow{Pin: gpiotest.Pin{N: "R0"}}}
	cfg.Layout = []string{"123"}
	mx, err := NewMatrix(&keyLog{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Run(context.Background()); !errors.Is(err, errPin) {
		t.Fatalf("Run() = %v, want it to wrap %v", err, errPin)
	}
}
