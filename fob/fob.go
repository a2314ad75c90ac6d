package fob

import (
	"errors"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
)

// Default timings of a reader.
const (
	DefaultAbsentAfter = 600 * time.Millisecond
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// Reader types, as in the configuration and in Stats.
const (
	TypeRDM6300 = "rdm6300"
	TypeWiegand = "wiegand"
)

// ErrConfig is returned when a reader's configuration is incomplete or
// invalid.
var ErrConfig = errors.New("fob: invalid reader configuration")

// ErrClosed is returned when Run is called on a reader that was closed.
var ErrClosed = errors.New("fob: reader closed")

// ErrRunning is returned when Run is called on a reader that is already
// running.
var ErrRunning = errors.New("fob: reader already running")

// Sink receives what the readers see. The device implements it.
type Sink interface {
	// FobPresent reports the first good frame of a fob in bin, or of a
	// different fob than the one reported before.
	FobPresent(bin int, serial string)
	// FobAbsent reports that bin had no good frame for AbsentAfter.
	FobAbsent(bin int)
	// ReaderFault reports that the reader of bin failed; it is reported
	// once per outage. The bin names the reader: it has one.
	ReaderFault(bin int, err error)
	// ReaderOK reports that the faulted reader of bin works again.
	ReaderOK(bin int)
}

// Stats is a snapshot of one reader, for the console's readers command.
type Stats struct {
	Name        string // the serial port, or the reader's name
	Type        string // TypeRDM6300 or TypeWiegand
	Bin         int
	Frames      uint64 // good frames
	BadChecksum uint64 // frames with a bad checksum or bad parity
	Noise       uint64 // RDM6300: bytes dropped; Wiegand: frames dropped
	Reopens     uint64 // recoveries from a fault
	Present     string // the fob present now, or ""
	Faulted     bool
	LastError   string // the last fault, kept after recovery
}

// timing holds the settings shared by the readers, with defaults applied.
type timing struct {
	absentAfter time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	clock       clockwork.Clock
	log         *slog.Logger
}

func newTiming(absent, minB, maxB time.Duration, clock clockwork.Clock, log *slog.Logger) timing {
	t := timing{absentAfter: absent, minBackoff: minB, maxBackoff: maxB, clock: clock, log: log}
	if t.absentAfter <= 0 {
		t.absentAfter = DefaultAbsentAfter
	}
	if t.minBackoff <= 0 {
		t.minBackoff = DefaultMinBackoff
	}
	if t.maxBackoff <= 0 {
		t.maxBackoff = DefaultMaxBackoff
	}
	if t.maxBackoff < t.minBackoff {
		t.maxBackoff = t.minBackoff
	}
	if t.clock == nil {
		t.clock = clockwork.NewRealClock()
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

func (t timing) nextBackoff(d time.Duration) time.Duration {
	return min(2*d, t.maxBackoff)
}
