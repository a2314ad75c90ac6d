package fob

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// SerialConfig configures a SerialReader.
type SerialConfig struct {
	// Name is the serial port's path; it names the reader in reports.
	Name string
	// Bin is the bin the reader watches.
	Bin int
	// Open opens the port, 9600 8N1 for an RDM6300. Closing the port must
	// end a blocked Read, as closing a go.bug.st/serial port does.
	Open func() (io.ReadCloser, error)
	// Sink receives the reports.
	Sink Sink
	// AbsentAfter is how long without a good frame makes a fob absent;
	// DefaultAbsentAfter when zero.
	AbsentAfter time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to reopen
	// a failed port, doubling from MinBackoff up to MaxBackoff;
	// DefaultMinBackoff and DefaultMaxBackoff when zero.
	MinBackoff, MaxBackoff time.Duration
	// Clock is the clock for the absent timer and the backoff; a real
	// clock when nil.
	Clock clockwork.Clock
	// Logger receives the reader's logs; they are discarded when nil.
	Logger *slog.Logger
}

// SerialReader reads an RDM6300-style reader on a serial port and reports
// the fobs in its bin.
type SerialReader struct {
	name   string
	open   func() (io.ReadCloser, error)
	timing timing
	rep    *reporter
	dec    RDM6300 // used by Run only

	running atomic.Bool
	closing chan struct{} // closed by Close

	portMu sync.Mutex
	port   io.ReadCloser // the open port, or nil
	closed bool
}

// NewSerialReader checks cfg and opens the port once, so that a port that
// cannot be opened fails start-up with an error naming it. Run reads the
// port; Close releases it when Run will not be called.
func NewSerialReader(cfg SerialConfig) (*SerialReader, error) {
	switch {
	case cfg.Name == "":
		return nil, fmt.Errorf("%w: serial reader without a port name", ErrConfig)
	case cfg.Open == nil:
		return nil, fmt.Errorf("%w: serial reader %s without an Open function", ErrConfig, cfg.Name)
	case cfg.Sink == nil:
		return nil, fmt.Errorf("%w: serial reader %s without a sink", ErrConfig, cfg.Name)
	}
	port, err := cfg.Open()
	if err != nil {
		return nil, fmt.Errorf("fob: open %s: %w", cfg.Name, err)
	}
	t := newTiming(cfg.AbsentAfter, cfg.MinBackoff, cfg.MaxBackoff, cfg.Clock, cfg.Logger)
	return &SerialReader{
		name:    cfg.Name,
		open:    cfg.Open,
		timing:  t,
		rep:     newReporter(cfg.Name, TypeRDM6300, cfg.Bin, cfg.Sink, t),
		closing: make(chan struct{}),
		port:    port,
	}, nil
}

// Stats returns a snapshot of the reader's counters and state. It is safe
// for concurrent use.
func (r *SerialReader) Stats() Stats { return r.rep.snapshot() }

// Close closes the port and makes a running Run return nil. It is safe to
// call more than once and concurrently with Run.
func (r *SerialReader) Close() error {
	r.portMu.Lock()
	defer r.portMu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	close(r.closing)
	return r.closePortLocked()
}

// Run reads the port until ctx is done or Close is called, then closes the
// port and returns nil. A read error reports a fault, closes the port and
// reopens it with exponential backoff; a successful reopen reports
// ReaderOK. Run returns ErrRunning if it is running already and ErrClosed
// after Close.
func (r *SerialReader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	stop := context.AfterFunc(ctx, func() {
		r.portMu.Lock()
		defer r.portMu.Unlock()
		r.closePortLocked()
	})
	defer stop()
	defer r.rep.halt()

	r.portMu.Lock()
	port, closed := r.port, r.closed
	r.portMu.Unlock()
	if closed {
		return ErrClosed
	}
	if port == nil { // a second Run: the first one closed the port
		port = r.reopen(ctx, nil)
		if port == nil {
			return r.exit()
		}
	}
	r.rep.begin()

	buf := make([]byte, 256)
	for {
		n, err := port.Read(buf)
		if n > 0 {
			r.dec.Feed(buf[:n], r.rep.seen)
			r.count()
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil || r.isClosed() {
			return r.exit()
		}
		r.portMu.Lock()
		r.closePortLocked()
		r.portMu.Unlock()
		r.dec.Reset()
		r.count()
		port = r.reopen(ctx, fmt.Errorf("fob: read %s: %w", r.name, err))
		if port == nil {
			return r.exit()
		}
	}
}

// exit closes the port when Run ends.
func (r *SerialReader) exit() error {
	r.portMu.Lock()
	defer r.portMu.Unlock()
	r.closePortLocked()
	return nil
}

// reopen reports fault (when not nil), then opens the port again with
// backoff until it opens, which it reports, or until Run must end, when
// it returns nil.
func (r *SerialReader) reopen(ctx context.Context, fault error) io.ReadCloser {
	if fault != nil {
		r.rep.fault(fault)
	}
	backoff := r.timing.minBackoff
	for {
		if fault != nil {
			if !r.sleep(ctx, backoff) {
				return nil
			}
			backoff = r.timing.nextBackoff(backoff)
		}
		port, err := r.open()
		if err != nil {
			fault = fmt.Errorf("fob: open %s: %w", r.name, err)
			r.timing.log.Debug("fob reader reopen failed", slog.String("reader", r.name), slog.Any("err", err), slog.Duration("retry_in", backoff))
			r.rep.fault(fault)
			continue
		}
		r.portMu.Lock()
		if ctx.Err() != nil || r.closed {
			port.Close()
			r.portMu.Unlock()
			return nil
		}
		r.port = port
		r.portMu.Unlock()
		r.rep.recovered()
		return port
	}
}

// sleep waits d on the clock; it returns false when Run must end first.
func (r *SerialReader) sleep(ctx context.Context, d time.Duration) bool {
	t := r.timing.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	case <-r.closing:
		return false
	}
}

func (r *SerialReader) isClosed() bool {
	r.portMu.Lock()
	defer r.portMu.Unlock()
	return r.closed
}

// closePortLocked closes the open port; portMu must be held.
func (r *SerialReader) closePortLocked() error {
	if r.port == nil {
		return nil
	}
	err := r.port.Close()
	r.port = nil
	return err
}

func (r *SerialReader) count() {
	c := r.dec.Counts()
	r.rep.count(c.Frames, c.BadChecksum, c.Noise)
}
