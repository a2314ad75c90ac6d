package keypad

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"smartboxd/internal/wiegand"
)

// Default Wiegand values of the '*' and '#' keys.
const (
	DefaultWiegandStar = 10
	DefaultWiegandHash = 11
)

// FrameSource yields Wiegand frames; internal/wiegand's framer is one.
type FrameSource interface {
	// Next blocks until a frame has ended or ctx is done.
	Next(ctx context.Context) (wiegand.Frame, error)
}

// WiegandConfig configures a Wiegand keypad. Zero values pick defaults.
type WiegandConfig struct {
	// Star and Hash are the key values the vendor sends for '*' and '#':
	// 10 to 15, distinct; defaults DefaultWiegandStar, DefaultWiegandHash.
	Star, Hash int
	// Logger gets debug records about noise, never about keys.
	Logger *slog.Logger
}

// Wiegand is a keypad on a Wiegand interface. It takes one key per frame,
// in the 4-bit format (the key value) or the 8-bit format (the complement
// of the key value in the high nibble, the value in the low nibble). Values
// 0-9 are digits; the configured Star and Hash values are '*' and '#'.
// Every other frame, including the 26-bit frames some keypads send for a
// whole PIN, is noise: counted and ignored.
type Wiegand struct {
	src  FrameSource
	keys Presser
	star uint64
	hash uint64
	log  *slog.Logger

	nKeys    atomic.Uint64
	nDropped atomic.Uint64
}

// NewWiegand returns a Wiegand keypad reading frames from src and passing
// its keys to keys. It returns ErrInvalidConfig for a bad key mapping.
func NewWiegand(src FrameSource, keys Presser, cfg WiegandConfig) (*Wiegand, error) {
	star, hash := cfg.Star, cfg.Hash
	if star == 0 {
		star = DefaultWiegandStar
	}
	if hash == 0 {
		hash = DefaultWiegandHash
	}
	if star < 10 || star > 15 || hash < 10 || hash > 15 || star == hash {
		return nil, fmt.Errorf("%w: wiegand star %d and hash %d must be distinct values from 10 to 15", ErrInvalidConfig, star, hash)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Wiegand{src: src, keys: keys, star: uint64(star), hash: uint64(hash), log: log}, nil
}

// Key decodes one frame into a key. It reports false for noise.
func (w *Wiegand) Key(f wiegand.Frame) (rune, bool) {
	var v uint64
	switch f.N {
	case 4:
		if f.Bits>>4 != 0 {
			return 0, false
		}
		v = f.Bits
	case 8:
		if f.Bits>>8 != 0 {
			return 0, false
		}
		hi, lo := f.Bits>>4, f.Bits&0xF
		if hi != ^lo&0xF {
			return 0, false
		}
		v = lo
	default:
		return 0, false
	}
	switch {
	case v <= 9:
		return rune('0' + v), true
	case v == w.star:
		return '*', true
	case v == w.hash:
		return '#', true
	}
	return 0, false
}

// Run passes keys on until ctx is done, then returns nil. An error from the
// frame source ends Run and is returned wrapped.
func (w *Wiegand) Run(ctx context.Context) error {
	for {
		f, err := w.src.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("keypad: wiegand frame: %w", err)
		}
		w.handle(f)
	}
}

func (w *Wiegand) handle(f wiegand.Frame) {
	k, ok := w.Key(f)
	if !ok {
		n := w.nDropped.Add(1)
		w.log.Debug("keypad: wiegand noise dropped", "bits", f.N, "dropped", n)
		return
	}
	w.nKeys.Add(1)
	w.keys.Press(k)
}

// Stats returns the keys passed on and the noise frames dropped so far.
func (w *Wiegand) Stats() Stats {
	return Stats{Keys: w.nKeys.Load(), Dropped: w.nDropped.Load()}
}
