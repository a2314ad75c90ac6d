package keypad

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"
)

// keyLog is a Presser that keeps the keys it gets.
type keyLog struct {
	mu   sync.Mutex
	keys []rune
}

func (k *keyLog) Press(r rune) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, r)
}

func (k *keyLog) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return string(k.keys)
}

var _ Presser = (*keyLog)(nil)

// openPTY returns the master of a pseudo-terminal and its slave opened as
// a serial port.
func openPTY(t *testing.T) (*os.File, serial.Port) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skip("no pseudo-terminals here:", err)
	}
	t.Cleanup(func() { master.Close() })
	port, err := serial.Open(slave.Name(), &serial.Mode{BaudRate: 9600})
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	return master, port
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runSerial runs s until the test ends. The returned wait gives Run's
// result, failing the test if Run does not return.
func runSerial(t *testing.T, s *Serial) (cancel context.CancelFunc, wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wait = sync.OnceValue(func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
			return nil
		}
	})
	t.Cleanup(func() {
		cancel()
		wait()
	})
	return cancel, wait
}

func TestSerialKeypadPTY(t *testing.T) {
	master, port := openPTY(t)
	var sink recorder
	s := NewSerial(port, NewCollector(&sink, CollectorConfig{}), nil)
	runSerial(t, s)

	if _, err := master.Write([]byte("12 34\r\n#9X9*\x1b55\x00\xff66#")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two entries", func() bool { return len(sink.got()) == 2 })
	if got := strings.Join(sink.got(), ","); got != "1234,5566" {
		t.Fatalf("entries = %q, want 1234,5566", got)
	}
	st := s.Stats()
	if st.Dropped != 4 {
		t.Errorf("Dropped = %d, want 4 (X, ESC, NUL, 0xff)", st.Dropped)
	}
	if st.Keys != 13 {
		t.Errorf("Keys = %d, want 13", st.Keys)
	}
}

func TestSerialKeypadPortClosed(t *testing.T) {
	_, port := openPTY(t)
	s := NewSerial(port, &keyLog{}, nil)
	_, wait := runSerial(t, s)
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	err := wait()
	var pe *serial.PortError
	if !errors.As(err, &pe) || pe.Code() != serial.PortClosed {
		t.Fatalf("Run() = %v, want a wrapped PortClosed error", err)
	}
	if !strings.HasPrefix(err.Error(), "keypad: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestSerialKeypadCancel(t *testing.T) {
	master, port := openPTY(t)
	keys := &keyLog{}
	s := NewSerial(port, keys, nil)
	cancel, wait := runSerial(t, s)
	if _, err := master.Write([]byte("7")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first key", func() bool { return keys.String() == "7" })
	cancel() // Run is blocked in Read: cancelling must close the port
	if err := wait(); err != nil {
		t.Fatalf("Run() = %v after cancel, want nil", err)
	}
	if _, err := port.Read(make([]byte, 1)); err == nil {
		t.Error("port still open after Run returned")
	}
}

// errReader returns its bytes, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestSerialKeypadReadError(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"eof", io.EOF},
		{"device gone", errors.New("input/output error")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := &keyLog{}
			s := NewSerial(&errReader{data: []byte("12#"), err: tt.err}, keys, nil)
			err := s.Run(context.Background())
			if !errors.Is(err, tt.err) {
				t.Fatalf("Run() = %v, want it to wrap %v", err, tt.err)
			}
			if keys.String() != "12#" {
				t.Errorf("keys = %q before the error, want 12#", keys.String())
			}
		})
	}
}

func FuzzSerialKeypad(f *testing.F) {
	f.Add([]byte("1234#"))
	f.Add([]byte("12 34\r\n#9X9*\x1b55\x00\xff66#"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		keys := &keyLog{}
		s := NewSerial(bytes.NewReader(data), keys, nil)
		if err := s.Run(context.Background()); !errors.Is(err, io.EOF) {
			t.Fatalf("Run() = %v, want a wrapped EOF", err)
		}
		var wantKeys []rune
		var dropped uint64
		for _, b := range data {
			switch {
			case b >= '0' && b <= '9', b == '*', b == '#':
				wantKeys = append(wantKeys, rune(b))
			case b == '\r', b == '\n', b == ' ':
			default:
				dropped++
			}
		}
		if keys.String() != string(wantKeys) {
			t.Fatalf("keys = %q, want %q", keys.String(), string(wantKeys))
		}
		if st := s.Stats(); st.Keys != uint64(len(wantKeys)) || st.Dropped != dropped {
			t.Fatalf("Stats() = %+v, want %d keys, %d dropped", st, len(wantKeys), dropped)
		}
	})
}
