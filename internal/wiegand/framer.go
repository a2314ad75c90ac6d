package wiegand

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultGap is the silence that ends a frame when no other gap is set.
const DefaultGap = 25 * time.Millisecond

// DefaultPoll is how long Next waits for the first bit of a frame before it
// looks at its context again, when no other poll interval is set.
const DefaultPoll = 100 * time.Millisecond

// MaxBits is the longest frame Framer keeps; longer bursts are noise.
const MaxBits = 64

// NoEdge is the line an EdgeSource reports when its timeout passed without
// a pulse.
const NoEdge = -1

// ErrLine is returned when an EdgeSource reports a line other than 0, 1 or
// NoEdge.
var ErrLine = errors.New("wiegand: edge on an unknown line")

// EdgeSource delivers the pulses of a Wiegand interface in the order they
// happened, one per bit: a pulse on D0 is a 0 bit, a pulse on D1 a 1 bit.
//
// WaitForEdge waits at most timeout for the next pulse and returns its line,
// 0 for D0 and 1 for D1. When timeout passes without a pulse it returns
// NoEdge and a nil error. A timeout of zero or less is never passed. An
// adapter over a GPIO line set should watch one edge per pulse (the falling
// edge, since the lines idle high) on both lines together, so that the
// order of D0 and D1 pulses is kept.
type EdgeSource interface {
	WaitForEdge(timeout time.Duration) (line int, err error)
}

// Framer cuts the pulses of an EdgeSource into frames: a frame ends after
// Gap without a pulse. Bursts longer than MaxBits are dropped and counted.
//
// Next must not be called concurrently; Overlong and Frames may be.
type Framer struct {
	src  EdgeSource
	gap  time.Duration
	poll time.Duration

	frames   atomic.Uint64
	overlong atomic.Uint64
}

// Option changes a Framer made by NewFramer.
type Option func(*Framer)

// WithGap sets the silence that ends a frame (DefaultGap when d <= 0).
func WithGap(d time.Duration) Option {
	return func(f *Framer) {
		if d > 0 {
			f.gap = d
		}
	}
}

// WithPoll sets how long Next waits for the first pulse of a frame before
// it looks at its context again (DefaultPoll when d <= 0). It bounds how
// long Next takes to return after its context is canceled.
func WithPoll(d time.Duration) Option {
	return func(f *Framer) {
		if d > 0 {
			f.poll = d
		}
	}
}

// NewFramer returns a Framer reading src.
func NewFramer(src EdgeSource, opts ...Option) *Framer {
	f := &Framer{src: src, gap: DefaultGap, poll: DefaultPoll}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Gap returns the silence that ends a frame.
func (f *Framer) Gap() time.Duration { return f.gap }

// Frames returns how many frames Next has returned.
func (f *Framer) Frames() uint64 { return f.frames.Load() }

// Overlong returns how many bursts longer than MaxBits were dropped.
func (f *Framer) Overlong() uint64 { return f.overlong.Load() }

// Next returns the next complete frame. It returns ctx.Err() once ctx is
// done (checked between frames, at least every poll interval), and the
// source's error, wrapped, when the source fails; a frame in progress is
// then lost.
func (f *Framer) Next(ctx context.Context) (Frame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		line, err := f.wait(f.poll)
		if err != nil {
			return Frame{}, err
		}
		if line == NoEdge {
			continue
		}
		fr, ok, err := f.collect(line)
		if err != nil {
			return Frame{}, err
		}
		if !ok {
			f.overlong.Add(1)
			continue
		}
		f.frames.Add(1)
		return fr, nil
	}
}

// collect gathers the bits of one frame that began with a pulse on first,
// until the gap. ok is false when the burst was longer than MaxBits.
func (f *Framer) collect(first int) (fr Frame, ok bool, err error) {
	line := first
	for {
		if fr.N < MaxBits {
			fr.Bits = fr.Bits<<1 | uint64(line)
		}
		if fr.N <= MaxBits {
			fr.N++ // stops at MaxBits+1: too long
		}
		line, err = f.wait(f.gap)
		if err != nil {
			return Frame{}, false, err
		}
		if line == NoEdge {
			if fr.N > MaxBits {
				return Frame{}, false, nil
			}
			return fr, true, nil
		}
	}
}

func (f *Framer) wait(timeout time.Duration) (int, error) {
	line, err := f.src.WaitForEdge(timeout)
	if err != nil {
		return NoEdge, fmt.Errorf("wiegand: wait for edge: %w", err)
	}
	switch line {
	case 0, 1, NoEdge:
		return line, nil
	}
	return NoEdge, fmt.Errorf("wiegand: line %d: %w", line, ErrLine)
}
