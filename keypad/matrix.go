package keypad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// Matrix keypad defaults.
const (
	DefaultDebounce     = 8 * time.Millisecond
	DefaultScanInterval = 2 * time.Millisecond
)

// DefaultLayout is the usual 4x3 telephone keypad.
var DefaultLayout = []string{"123", "456", "789", "*0#"}

// MatrixConfig configures a Matrix keypad. Zero values pick defaults.
type MatrixConfig struct {
	// Rows are the row outputs, top to bottom; Cols the column inputs,
	// left to right.
	Rows []gpio.PinOut
	Cols []gpio.PinIn
	// Layout maps row r, column c to the rune at Layout[r][c] (counting
	// runes); default DefaultLayout. Keys the Presser does not know, like
	// the A-D of a 4x4 keypad, are passed on and ignored there.
	Layout []string
	// ActiveHigh drives the scanned row High and reads a High column as a
	// key down, with pull-downs on the columns. The default is active low:
	// the scanned row Low, the others High, pull-ups on the columns and a
	// Low column for a key down.
	ActiveHigh bool
	// Debounce is how long a key must read down, alone, before it is
	// reported, and how long it must read up before it can be reported
	// again; default DefaultDebounce (config keypad.debounce_ms).
	Debounce time.Duration
	// ScanInterval is the time between scans; default DefaultScanInterval.
	ScanInterval time.Duration
	// Clock times the scans and the debounce; default the real clock.
	Clock clockwork.Clock
	// Logger gets debug records about ignored scans, never about keys.
	Logger *slog.Logger
}

// noKey is the debounced state with no key down.
const noKey rune = 0

// multiKeys is the raw reading of a scan with two or more keys down. It
// never becomes the debounced state: it only breaks a key's stable time.
const multiKeys rune = -1

// Matrix scans a row/column keypad: it drives one row at a time and reads
// the columns. A key is reported once it has read down, as the only key,
// for the debounce time, and once per press: it must be released (read up
// for the debounce time) before it can be reported again. A scan with two
// or more keys down is ignored.
type Matrix struct {
	rows     []gpio.PinOut
	cols     []gpio.PinIn
	layout   [][]rune
	active   gpio.Level
	debounce time.Duration
	interval time.Duration
	clock    clockwork.Clock
	keys     Presser
	log      *slog.Logger

	// Scan state, owned by Run's goroutine.
	raw      rune      // the last reading: a key, noKey or multiKeys
	rawSince time.Time // when the reading became raw
	stable   rune      // the debounced key down, or noKey

	nKeys    atomic.Uint64
	nDropped atomic.Uint64
}

// NewMatrix returns a Matrix keypad passing its keys to keys. It returns
// ErrInvalidConfig when the layout does not match the pins.
func NewMatrix(keys Presser, cfg MatrixConfig) (*Matrix, error) {
	layout := cfg.Layout
	if len(layout) == 0 {
		layout = DefaultLayout
	}
	if len(cfg.Rows) == 0 || len(cfg.Cols) == 0 {
		return nil, fmt.Errorf("%w: matrix needs at least one row and one column pin", ErrInvalidConfig)
	}
	if len(layout) != len(cfg.Rows) {
		return nil, fmt.Errorf("%w: matrix layout has %d rows for %d row pins", ErrInvalidConfig, len(layout), len(cfg.Rows))
	}
	m := &Matrix{
		rows:     cfg.Rows,
		cols:     cfg.Cols,
		active:   gpio.Level(cfg.ActiveHigh),
		debounce: cfg.Debounce,
		interval: cfg.ScanInterval,
		clock:    cfg.Clock,
		keys:     keys,
		log:      cfg.Logger,
	}
	for r, row := range layout {
		rr := []rune(row)
		if len(rr) != len(cfg.Cols) {
			return nil, fmt.Errorf("%w: matrix layout row %d has %d keys for %d column pins", ErrInvalidConfig, r, len(rr), len(cfg.Cols))
		}
		for c, k := range rr {
			if k == noKey || k == multiKeys {
				return nil, fmt.Errorf("%w: matrix layout row %d column %d has no key", ErrInvalidConfig, r, c)
			}
		}
		m.layout = append(m.layout, rr)
	}
	if m.debounce <= 0 {
		m.debounce = DefaultDebounce
	}
	if m.interval <= 0 {
		m.interval = DefaultScanInterval
	}
	if m.clock == nil {
		m.clock = clockwork.NewRealClock()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Run sets up the pins and scans until ctx is done, then leaves every row
// inactive and returns nil. A pin that cannot be set up ends Run with the
// error wrapped.
func (m *Matrix) Run(ctx context.Context) (err error) {
	pull := gpio.PullUp
	if m.active == gpio.High {
		pull = gpio.PullDown
	}
	defer func() {
		if herr := m.idle(); herr != nil && err == nil {
			err = herr
		}
	}()
	if err := m.idle(); err != nil {
		return err
	}
	for _, c := range m.cols {
		if err := c.In(pull, gpio.NoEdge); err != nil {
			return fmt.Errorf("keypad: matrix column %s: %w", c.Name(), err)
		}
	}
	m.raw, m.stable = noKey, noKey
	m.rawSince = m.clock.Now()

	// A timer re-armed after each scan, rather than a ticker: scans never
	// pile up behind a slow one.
	t := m.clock.NewTimer(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
			if err := m.scan(); err != nil {
				return err
			}
			t.Reset(m.interval)
		}
	}
}

// idle drives every row inactive.
func (m *Matrix) idle() error {
	var errs []error
	for _, r := range m.rows {
		if err := r.Out(!m.active); err != nil {
			errs = append(errs, fmt.Errorf("keypad: matrix row %s: %w", r.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// scan reads the whole matrix once and updates the debounced state.
func (m *Matrix) scan() error {
	reading, down := noKey, 0
	for r, row := range m.rows {
		if err := row.Out(m.active); err != nil {
			return fmt.Errorf("keypad: matrix row %s: %w", row.Name(), err)
		}
		for c, col := range m.cols {
			if col.Read() == m.active {
				down++
				reading = m.layout[r][c]
			}
		}
		if err := row.Out(!m.active); err != nil {
			return fmt.Errorf("keypad: matrix row %s: %w", row.Name(), err)
		}
	}
	if down > 1 {
		reading = multiKeys
	}
	m.update(reading, m.clock.Now())
	return nil
}

// update feeds one scan's reading, taken at now, to the debouncer.
func (m *Matrix) update(reading rune, now time.Time) {
	if reading != m.raw {
		if reading == multiKeys {
			n := m.nDropped.Add(1)
			m.log.Debug("keypad: matrix scan with several keys ignored", "dropped", n)
		}
		m.raw, m.rawSince = reading, now
	}
	if m.raw == multiKeys || m.raw == m.stable || now.Sub(m.rawSince) < m.debounce {
		return
	}
	m.stable = m.raw
	if m.stable != noKey {
		m.nKeys.Add(1)
		m.keys.Press(m.stable)
	}
}

// Stats returns the keys reported and the several-keys readings ignored so
// far (one per run of such scans).
func (m *Matrix) Stats() Stats {
	return Stats{Keys: m.nKeys.Load(), Dropped: m.nDropped.Load()}
}
