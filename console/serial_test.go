package console

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/creack/pty"
	"go.bug.st/serial"
)

// TestSerialPort runs a session on a port opened the way the daemon opens
// console.port, and ends it by closing the port under a blocked Read.
func TestSerialPort(t *testing.T) {
	r := newRig(t)
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	defer m.Close()
	defer s.Close()
	port, err := serial.Open(s.Name(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", s.Name(), err)
	}
	tm := r.attach(m)
	go func() { tm.done <- r.con.Serve(context.Background(), port) }()
	tm.greeting()

	tm.login()
	if row := table(t, tm.mustOK("status"), "box"); !slices.Equal(row, []string{"box", testBox}) {
		t.Errorf("status: %q", row)
	}
	tm.mustOK("open 2")
	tm.mustErr("open 12", "bin.notFound")

	if err := port.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := tm.wait(); err != nil {
		t.Fatalf("serve after the port closed: %v, want nil", err)
	}
	if a := r.audited(); !slices.Equal(a, []string{"status", "open 2", "open 12"}) {
		t.Errorf("audited %q", a)
	}
}

// TestServeEndsAtEOF runs a session on a stream that ends.
func TestServeEndsAtEOF(t *testing.T) {
	r := newRig(t)
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("help\r\nlogin " + testPIN + "\r\nopen 1\r\n"), &out}
	if err := r.con.Serve(context.Background(), rw); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if n := strings.Count(out.String(), "\r\nOK\r\n"); n != 3 {
		t.Errorf("%d OK answers, want 3:\n%s", n, out.String())
	}
	if strings.Contains(out.String(), testPIN) {
		t.Errorf("the PIN was echoed:\n%q", out.String())
	}
	r.flush()
	if p := r.locks.pulses(); !slices.Equal(p, []int{1}) {
		t.Errorf("pulses %v", p)
	}
}

// TestServeEndsWithContext ends a session blocked in Read by canceling it.
func TestServeEndsWithContext(t *testing.T) {
	r := newRig(t)
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	defer m.Close()
	defer s.Close()
	makeRaw(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	tm := r.attach(m)
	go func() { tm.done <- r.con.Serve(ctx, s) }()
	tm.greeting()
	tm.login()
	cancel()
	if err := tm.wait(); err != nil {
		t.Fatalf("serve after cancel: %v, want nil", err)
	}
}
