package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func TestSendReachesTheSocket(t *testing.T) {
	conn := listen(t)
	for _, f := range []struct {
		call func()
		want string
	}{{Ready, "READY=1"}, {Watchdog, "WATCHDOG=1"}, {Stopping, "STOPPING=1"}} {
		f.call()
		buf := make([]byte, 64)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != f.want {
			t.Fatalf("got %q, want %q", got, f.want)
		}
	}
}

func TestNoSocketNoSend(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	sent, err := Send("READY=1")
	if sent || err != nil {
		t.Fatalf("sent %v, err %v", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"junk", "", 0},
		{"2000000", "", 2 * time.Second},
		{"2000000", strconv.Itoa(os.Getpid()), 2 * time.Second},
		{"2000000", "1", 0},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		if got := WatchdogInterval(); got != tc.want {
			t.Errorf("usec %q pid %q: %v, want %v", tc.usec, tc.pid, got, tc.want)
		}
	}
}
