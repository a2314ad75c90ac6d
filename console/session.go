package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"smartboxd/contract"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"go.bug.st/serial"
)

// session is one Serve call: who is logged in, and the answer being built.
type session struct {
	c        *Console
	w        io.Writer
	ed       editor
	loggedIn bool
	last     time.Time       // the last command line while logged in
	idle     clockwork.Timer // armed while logged in
	out      bytes.Buffer
}

// chunk is what one Read gave.
type chunk struct {
	data []byte
	err  error
}

// Serve runs one session on rw until ctx ends or the stream ends. The end of
// the stream (io.EOF, or a port closed under a blocked Read) returns nil, as
// does a canceled ctx; other read and write failures are returned. A Read
// still blocked when ctx ends keeps its goroutine until the caller closes the
// stream.
func (c *Console) Serve(ctx context.Context, rw io.ReadWriter) error {
	s := &session{c: c, w: rw}
	defer s.disarm()
	reads := make(chan chunk)
	done := make(chan struct{})
	defer close(done)
	go readLoop(rw, reads, done)

	c.log.Info("console session started")
	defer c.log.Info("console session ended")
	fmt.Fprintf(&s.out, "SmartBox %s console, smartboxd %s; type help\r\n", c.cfg.BoxID, c.cfg.Version)
	s.prompt()
	if err := s.flushOut(); err != nil {
		return err
	}
	for {
		var idle <-chan time.Time
		if s.idle != nil {
			idle = s.idle.Chan()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-idle:
			s.idleFired()
		case r := <-reads:
			for _, b := range r.data {
				l, ok := s.ed.feed(b)
				if !ok {
					continue
				}
				s.handle(ctx, l)
				if err := s.flushOut(); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
			}
			if r.err != nil {
				if streamEnded(r.err) {
					return nil
				}
				return fmt.Errorf("console: read: %w", r.err)
			}
		}
		if err := s.flushOut(); err != nil {
			return err
		}
	}
}

// readLoop hands what rw reads to Serve until a read fails or Serve is done.
func readLoop(r io.Reader, reads chan<- chunk, done <-chan struct{}) {
	empty := 0
	for {
		buf := make([]byte, 512)
		n, err := r.Read(buf)
		if n == 0 && err == nil {
			if empty++; empty >= 100 {
				err = io.ErrNoProgress
			} else {
				continue
			}
		}
		empty = 0
		select {
		case reads <- chunk{data: buf[:n], err: err}:
		case <-done:
			return
		}
		if err != nil {
			return
		}
	}
}

// streamEnded reports whether err only says the stream is over.
func streamEnded(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
		return true
	}
	var pe *serial.PortError
	return errors.As(err, &pe) && pe.Code() == serial.PortClosed
}

func (s *session) flushOut() error {
	if s.out.Len() == 0 {
		return nil
	}
	_, err := s.w.Write(s.out.Bytes())
	s.out.Reset()
	if err != nil {
		if streamEnded(err) {
			return nil
		}
		return fmt.Errorf("console: write: %w", err)
	}
	return nil
}

func (s *session) prompt() {
	if s.loggedIn {
		fmt.Fprintf(&s.out, "smartbox(%s)# ", s.c.cfg.BoxID)
		return
	}
	s.out.WriteString("smartbox> ")
}

// handle answers one finished line.
func (s *session) handle(ctx context.Context, l line) {
	if l.interrupt {
		s.out.WriteString("^C\r\n")
		s.prompt()
		return
	}
	s.out.WriteString("\r\n")
	if s.loggedIn && s.c.clock.Since(s.last) >= s.c.idle {
		s.logoutIdle()
	}
	switch {
	case l.tooLong:
		s.fail(contract.Errorf(contract.CodeConsoleLineTooLong, "lines are at most %d bytes; the line was discarded", MaxLine))
	case l.noise > 0:
		s.fail(contract.Errorf(contract.CodeConsoleNoise, "%d control or non-ASCII bytes in the line; it was not run", l.noise))
	default:
		if words := strings.Fields(l.text); len(words) > 0 {
			s.run(ctx, words)
		}
	}
	s.prompt()
}

// idleFired logs out a session whose idle timer went off, unless a command
// came in the meantime.
func (s *session) idleFired() {
	if !s.loggedIn {
		return
	}
	if left := s.c.idle - s.c.clock.Since(s.last); left > 0 {
		s.idle.Reset(left)
		return
	}
	s.out.WriteString("\r\n")
	s.logoutIdle()
	s.prompt()
}

func (s *session) logoutIdle() {
	s.logout()
	s.c.log.Info("console logged out (idle)")
	s.out.WriteString("logged out (idle)\r\n")
}

func (s *session) login() {
	s.loggedIn = true
	s.touch()
}

func (s *session) logout() {
	s.loggedIn = false
	s.disarm()
}

// touch restarts the idle time of a logged-in session.
func (s *session) touch() {
	if !s.loggedIn {
		return
	}
	s.last = s.c.clock.Now()
	if s.idle == nil {
		s.idle = s.c.clock.NewTimer(s.c.idle)
		return
	}
	s.idle.Stop()
	s.idle.Reset(s.c.idle)
}

func (s *session) disarm() {
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
}

// ok ends an answer that went well.
func (s *session) ok() { s.out.WriteString("OK\r\n") }

// fail ends an answer with err's code and message.
func (s *session) fail(err error) {
	code, msg := contract.CodeInternal, err.Error()
	var de *contract.Error
	if errors.As(err, &de) {
		code, msg = de.Code, de.Message
	}
	fmt.Fprintf(&s.out, "ERR %s: %s\r\n", clean(code, 64), clean(msg, 200))
}

// printf writes one line of an answer.
func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(&s.out, format, args...)
	s.out.WriteString("\r\n")
}

// clean makes s safe for one cell or line of output: no control bytes, at
// most max runes.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("~")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
