package keypad

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// Serial is a keypad that sends ASCII over a serial line: '0'-'9', '*'
// (clear) and '#' (submit). CR, LF and spaces are ignored; any other byte
// is dropped and counted.
type Serial struct {
	r    io.Reader
	keys Presser
	log  *slog.Logger

	nKeys    atomic.Uint64
	nDropped atomic.Uint64
}

// NewSerial returns a Serial keypad reading r, usually a serial port, and
// passing its keys to keys. A nil logger discards.
func NewSerial(r io.Reader, keys Presser, log *slog.Logger) *Serial {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Serial{r: r, keys: keys, log: log}
}

// Run reads keys until ctx is done, then returns nil. Run owns r: if r is
// an io.Closer, Run closes it when ctx is done (that ends a blocked Read)
// and when it returns. A read error ends Run and is returned wrapped; the
// caller decides whether to open the port again and start a new Serial.
func (s *Serial) Run(ctx context.Context) error {
	if c, ok := s.r.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		defer func() {
			stop()
			_ = c.Close()
		}()
	}
	var buf [64]byte
	for {
		n, err := s.r.Read(buf[:])
		s.feed(buf[:n])
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("keypad: serial read: %w", err)
		}
	}
}

// feed handles bytes read from the line.
func (s *Serial) feed(p []byte) {
	for _, b := range p {
		switch {
		case b >= '0' && b <= '9', b == '*', b == '#':
			s.nKeys.Add(1)
			s.keys.Press(rune(b))
		case b == '\r', b == '\n', b == ' ':
		default:
			n := s.nDropped.Add(1)
			s.log.Debug("keypad: serial noise dropped", "dropped", n)
		}
	}
}

// Stats returns the keys passed on and the noise bytes dropped so far.
func (s *Serial) Stats() Stats {
	return Stats{Keys: s.nKeys.Load(), Dropped: s.nDropped.Load()}
}
