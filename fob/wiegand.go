package fob

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/internal/wiegand"
)

// FrameSource delivers Wiegand frames; a *wiegand.Framer is one.
type FrameSource interface {
	Next(ctx context.Context) (wiegand.Frame, error)
}

var _ FrameSource = (*wiegand.Framer)(nil)

// overlongCounter is a FrameSource that counts the bursts it dropped.
type overlongCounter interface {
	Overlong() uint64
}

// WiegandConfig configures a WiegandReader.
type WiegandConfig struct {
	// Name names the reader in reports, such as "wiegand:GPIO5/GPIO6".
	Name string
	// Bin is the bin the reader watches.
	Bin int
	// Source delivers the frames.
	Source FrameSource
	// Bits is the card frame length, 26 or 34; frames of other lengths
	// are counted as noise.
	Bits int
	// Format turns a card into a fob serial.
	Format wiegand.SerialFormat
	// Sink receives the reports.
	Sink Sink
	// AbsentAfter is how long without a good frame makes a fob absent;
	// DefaultAbsentAfter when zero.
	AbsentAfter time.Duration
	// MinBackoff and MaxBackoff bound the wait before asking a failed
	// Source again, doubling from MinBackoff up to MaxBackoff;
	// DefaultMinBackoff and DefaultMaxBackoff when zero.
	MinBackoff, MaxBackoff time.Duration
	// Clock is the clock for the absent timer and the backoff; a real
	// clock when nil.
	Clock clockwork.Clock
	// Logger receives the reader's logs; they are discarded when nil.
	Logger *slog.Logger
}

// WiegandReader reads card frames from a Wiegand framer and reports the
// fobs in its bin. It does not own the lines behind its Source: whoever
// made the Source releases them after Run returns.
type WiegandReader struct {
	name   string
	src    FrameSource
	bits   int
	format wiegand.SerialFormat
	timing timing
	rep    *reporter

	running atomic.Bool
	// Counters, written by Run only.
	frames, bad, noise uint64
}

// NewWiegandReader checks cfg and returns a reader.
func NewWiegandReader(cfg WiegandConfig) (*WiegandReader, error) {
	switch {
	case cfg.Name == "":
		return nil, fmt.Errorf("%w: wiegand reader without a name", ErrConfig)
	case cfg.Source == nil:
		return nil, fmt.Errorf("%w: wiegand reader %s without a frame source", ErrConfig, cfg.Name)
	case cfg.Sink == nil:
		return nil, fmt.Errorf("%w: wiegand reader %s without a sink", ErrConfig, cfg.Name)
	case cfg.Bits != 26 && cfg.Bits != 34:
		return nil, fmt.Errorf("%w: wiegand reader %s: bits %d, want 26 or 34", ErrConfig, cfg.Name, cfg.Bits)
	case cfg.Format != wiegand.FormatRaw && cfg.Format != wiegand.FormatFacilityCard:
		return nil, fmt.Errorf("%w: wiegand reader %s: serial format %d", ErrConfig, cfg.Name, cfg.Format)
	}
	t := newTiming(cfg.AbsentAfter, cfg.MinBackoff, cfg.MaxBackoff, cfg.Clock, cfg.Logger)
	return &WiegandReader{
		name:   cfg.Name,
		src:    cfg.Source,
		bits:   cfg.Bits,
		format: cfg.Format,
		timing: t,
		rep:    newReporter(cfg.Name, TypeWiegand, cfg.Bin, cfg.Sink, t),
	}, nil
}

// Stats returns a snapshot of the reader's counters and state; Noise
// includes the overlong bursts its Source dropped. It is safe for
// concurrent use.
func (r *WiegandReader) Stats() Stats {
	s := r.rep.snapshot()
	if o, ok := r.src.(overlongCounter); ok {
		s.Noise += o.Overlong()
	}
	return s
}

// Run reads frames until ctx is done, then returns nil. An error from the
// Source reports a fault and Run asks again after a backoff; the next
// frame reports ReaderOK and starts presence tracking afresh. Run returns
// ErrRunning if it is running already.
func (r *WiegandReader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	defer r.rep.halt()
	r.rep.begin()
	backoff := r.timing.minBackoff
	for {
		f, err := r.src.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.rep.fault(fmt.Errorf("fob: read %s: %w", r.name, err))
			if !r.sleep(ctx, backoff) {
				return nil
			}
			backoff = r.timing.nextBackoff(backoff)
			continue
		}
		backoff = r.timing.minBackoff
		if r.rep.isFaulted() {
			r.rep.recovered()
		}
		r.handle(f)
	}
}

func (r *WiegandReader) handle(f wiegand.Frame) {
	if f.N != r.bits {
		r.noise++
		r.rep.count(r.frames, r.bad, r.noise)
		return
	}
	card, err := wiegand.DecodeCard(f)
	if err != nil {
		r.bad++
		r.rep.count(r.frames, r.bad, r.noise)
		return
	}
	r.frames++
	r.rep.seen(card.Serial(r.format)) // before count: Frames never runs ahead of the absent timer
	r.rep.count(r.frames, r.bad, r.noise)
}

func (r *WiegandReader) sleep(ctx context.Context, d time.Duration) bool {
	t := r.timing.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
