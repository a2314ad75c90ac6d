package fob

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jonboulle/clockwork"
	"go.bug.st/serial"
)

const (
	fobA   = "0A1B2C3D4E"
	frameA = "\x020A1B2C3D4E4E\x03"
	fobB   = "62E3086CED"
	frameB = "\x0262E3086CED08\x03"
)

// newPTY returns the master of a fresh pseudo-terminal and its slave's
// path, which go.bug.st/serial opens like any serial port.
func newPTY(t testing.TB) (*os.File, string) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	path := slave.Name()
	slave.Close() // serial.Open opens it again by path
	return master, path
}

func openSerial(path string) (io.ReadCloser, error) {
	return serial.Open(path, &serial.Mode{BaudRate: 9600})
}

func write(t testing.TB, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func newSerial(t testing.TB, cfg SerialConfig) *SerialReader {
	t.Helper()
	r, err := NewSerialReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSerialReaderPresence(t *testing.T) {
	master, path := newPTY(t)
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:  path,
		Bin:   3,
		Open:  func() (io.ReadCloser, error) { return openSerial(path) },
		Sink:  sink,
		Clock: clock,
	})
	stop := runReader(t, r.Run)

	// A fob in the field: the reader repeats its frame.
	write(t, master, frameA+frameA+frameA)
	waitStats(t, r.Stats, "3 frames", func(s Stats) bool { return s.Frames == 3 })
	sink.expect(t, present(3, fobA))
	if s := r.Stats(); s.Present != fobA || s.Name != path || s.Type != TypeRDM6300 || s.Bin != 3 {
		t.Errorf("stats = %+v", s)
	}

	// No frame for just under AbsentAfter: still present.
	clock.Advance(DefaultAbsentAfter - time.Millisecond)
	if err := clock.BlockUntilContext(testContext(t), 1); err != nil {
		t.Fatal("the absent timer is gone:", err)
	}
	sink.expect(t, present(3, fobA))

	// A frame restarts the wait.
	write(t, master, frameA)
	waitStats(t, r.Stats, "4 frames", func(s Stats) bool { return s.Frames == 4 })
	clock.Advance(DefaultAbsentAfter - time.Millisecond)
	sink.expect(t, present(3, fobA))
	clock.Advance(time.Millisecond)
	sink.wait(t, present(3, fobA), absent(3))
	if s := r.Stats(); s.Present != "" {
		t.Errorf("Present = %q after absent", s.Present)
	}

	// Another fob, then a different one without a gap.
	write(t, master, frameB+frameB+frameA)
	sink.wait(t, present(3, fobA), absent(3), present(3, fobB), present(3, fobA))

	// Garbage is counted and never reported.
	write(t, master, "\r\n\x020A1B2C3D4E4F\x03junk\x02000000000000\x03\x020A1B")
	s := waitStats(t, r.Stats, "bad checksum and noise", func(s Stats) bool {
		return s.BadChecksum == 1 && s.Noise == 2+4+14
	})
	if s.Frames != 7 || s.Present != fobA {
		t.Errorf("stats = %+v", s)
	}
	sink.expect(t, present(3, fobA), absent(3), present(3, fobB), present(3, fobA))

	stop()
	if s := r.Stats(); s.Present != "" || s.Faulted {
		t.Errorf("stats after stop = %+v", s)
	}
}

func TestSerialReaderFirstReportAbsent(t *testing.T) {
	_, path := newPTY(t)
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:        path,
		Bin:         1,
		Open:        func() (io.ReadCloser, error) { return openSerial(path) },
		Sink:        sink,
		Clock:       clock,
		AbsentAfter: time.Second,
	})
	runReader(t, r.Run)
	if err := clock.BlockUntilContext(testContext(t), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(999 * time.Millisecond)
	sink.expect(t)
	clock.Advance(time.Millisecond)
	sink.wait(t, absent(1))
	// Silence goes on: nothing more to report.
	clock.Advance(time.Hour)
	sink.expect(t, absent(1))
}

func TestSerialReaderFirstReportPresent(t *testing.T) {
	master, path := newPTY(t)
	clock := clockwork.NewFakeClock()
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:  path,
		Bin:   2,
		Open:  func() (io.ReadCloser, error) { return openSerial(path) },
		Sink:  sink,
		Clock: clock,
	})
	write(t, master, frameB) // waiting in the port before Run starts
	runReader(t, r.Run)
	sink.wait(t, present(2, fobB))
}

func TestSerialReaderRealClock(t *testing.T) {
	master, path := newPTY(t)
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:        path,
		Bin:         4,
		Open:        func() (io.ReadCloser, error) { return openSerial(path) },
		Sink:        sink,
		AbsentAfter: 50 * time.Millisecond,
	})
	runReader(t, r.Run)
	write(t, master, frameA)
	sink.wait(t, present(4, fobA), absent(4))
}

func TestSerialReaderReopen(t *testing.T) {
	master1, path1 := newPTY(t)
	master2, path2 := newPTY(t)
	openErr := errors.New("no such device")
	var mu sync.Mutex
	unplugged, failures := false, 0
	open := func() (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		if !unplugged {
			return openSerial(path1)
		}
		if failures < 3 {
			failures++
			return nil, openErr
		}
		return openSerial(path2) // plugged in again
	}
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:        path1,
		Bin:         5,
		Open:        open,
		Sink:        sink,
		AbsentAfter: time.Hour,
		MinBackoff:  time.Millisecond,
		MaxBackoff:  4 * time.Millisecond,
	})
	runReader(t, r.Run)
	write(t, master1, frameA+"\x020A1B")
	sink.wait(t, present(5, fobA))

	mu.Lock()
	unplugged = true
	mu.Unlock()
	master1.Close() // the adapter is gone: the slave's Read fails

	sink.wait(t, present(5, fobA), fault(5), ok(5))
	mu.Lock()
	if failures != 3 {
		t.Errorf("failed opens = %d, want 3", failures)
	}
	mu.Unlock()
	s := r.Stats()
	if s.Reopens != 1 || s.Faulted || s.Present != "" || !strings.Contains(s.LastError, "no such device") {
		t.Errorf("stats after reopen = %+v", s)
	}
	if s.Noise != 5 {
		t.Errorf("Noise = %d, want 5 (the frame cut by the unplug)", s.Noise)
	}

	// The first report after a reopen comes again, even for the same fob.
	write(t, master2, frameA)
	sink.wait(t, present(5, fobA), fault(5), ok(5), present(5, fobA))
	if s := waitStats(t, r.Stats, "2 frames", func(s Stats) bool { return s.Frames == 2 }); s.Present != fobA {
		t.Errorf("stats = %+v", s)
	}
	sink.mu.Lock()
	ferr := sink.errs[0]
	sink.mu.Unlock()
	if !strings.HasPrefix(ferr.Error(), "fob: read "+path1+": ") {
		t.Errorf("fault error %q does not name the port", ferr)
	}
}

// pipePort is a port made of a pipe: closing the writer with an error is an
// unplug.
type pipePort struct {
	*io.PipeReader
	w *io.PipeWriter
}

func newPipePort() pipePort {
	r, w := io.Pipe()
	return pipePort{r, w}
}

func TestSerialReaderBackoff(t *testing.T) {
	clock := clockwork.NewFakeClock()
	start := clock.Now()
	port := newPipePort()
	openErr := errors.New("gone")
	var mu sync.Mutex
	var opens []time.Duration // when each reopen was tried
	first := true
	open := func() (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return port, nil
		}
		opens = append(opens, clock.Since(start))
		if len(opens) < 6 {
			return nil, openErr
		}
		return newPipePort(), nil
	}
	sink := newRecorder()
	r := newSerial(t, SerialConfig{
		Name:       "/dev/ttyUSB0",
		Bin:        1,
		Open:       open,
		Sink:       sink,
		Clock:      clock,
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: time.Second,
	})
	runReader(t, r.Run)
	port.w.CloseWithError(errors.New("unplugged"))
	sink.wait(t, fault(1))

	ctx := testContext(t)
	for {
		mu.Lock()
		n := len(opens)
		mu.Unlock()
		if n == 6 {
			break
		}
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Millisecond)
	}
	sink.wait(t, fault(1), ok(1))
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 300 * ms, 700 * ms, 1500 * ms, 2500 * ms, 3500 * ms}
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if opens[i] != want[i] {
			t.Fatalf("reopens tried at %v, want %v", opens, want)
		}
	}
	if s := r.Stats(); s.Reopens != 1 || !strings.Contains(s.LastError, "gone") {
		t.Errorf("stats = %+v", s)
	}
}

func TestSerialReaderStopDuringBackoff(t *testing.T) {
	clock := clockwork.NewFakeClock()
	port := newPipePort()
	opened := 0
	r := newSerial(t, SerialConfig{
		Name: "p",
		Open: func() (io.ReadCloser, error) {
			opened++
			if opened == 1 {
				return port, nil
			}
			return nil, errors.New("gone")
		},
		Sink:  newRecorder(),
		Clock: clock,
	})
	stop := runReader(t, r.Run)
	port.w.CloseWithError(errors.New("unplugged"))
	waitStats(t, r.Stats, "a fault", func(s Stats) bool { return s.Faulted })
	stop() // returns nil while waiting to reopen
}

func TestSerialReaderStopClosesPort(t *testing.T) {
	port := newPipePort()
	r := newSerial(t, SerialConfig{
		Name: "p",
		Open: func() (io.ReadCloser, error) { return port, nil },
		Sink: newRecorder(),
	})
	stop := runReader(t, r.Run)
	write(t, port.w, frameA) // Run is reading
	stop()
	if _, err := port.w.Write([]byte(frameA)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after stop: %v, want io.ErrClosedPipe (port closed)", err)
	}
}

func TestSerialReaderClose(t *testing.T) {
	port := newPipePort()
	r := newSerial(t, SerialConfig{
		Name: "p",
		Open: func() (io.ReadCloser, error) { return port, nil },
		Sink: newRecorder(),
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(testContext(t)) }()
	write(t, port.w, frameA)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close = %v, want nil", err)
	}
	if err := r.Run(testContext(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Run on a closed reader = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSerialReaderRunOnce(t *testing.T) {
	port := newPipePort()
	r := newSerial(t, SerialConfig{
		Name: "p",
		Open: func() (io.ReadCloser, error) { return port, nil },
		Sink: newRecorder(),
	})
	runReader(t, r.Run)
	write(t, port.w, frameA) // the first Run is reading
	if err := r.Run(testContext(t)); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestNewSerialReader(t *testing.T) {
	sink := newRecorder()
	openErr := errors.New("permission denied")
	opens := func() (io.ReadCloser, error) { return newPipePort(), nil }
	tests := []struct {
		name string
		cfg  SerialConfig
		err  error
		msg  string
	}{
		{name: "no name", cfg: SerialConfig{Open: opens, Sink: sink}, err: ErrConfig},
		{name: "no open", cfg: SerialConfig{Name: "/dev/ttyUSB0", Sink: sink}, err: ErrConfig, msg: "/dev/ttyUSB0"},
		{name: "no sink", cfg: SerialConfig{Name: "/dev/ttyUSB0", Open: opens}, err: ErrConfig},
		{
			name: "open fails",
			cfg: SerialConfig{Name: "/dev/ttyUSB7", Sink: sink,
				Open: func() (io.ReadCloser, error) { return nil, openErr }},
			err: openErr, msg: "fob: open /dev/ttyUSB7: permission denied",
		},
		{
			name: "no such port",
			cfg: SerialConfig{Name: "/dev/nonexistent-tty", Sink: sink,
				Open: func() (io.ReadCloser, error) { return openSerial("/dev/nonexistent-tty") }},
			msg: "fob: open /dev/nonexistent-tty: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewSerialReader(tt.cfg)
			if err == nil {
				r.Close()
				t.Fatal("NewSerialReader succeeded")
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}
