package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smartboxd/device"
	"smartboxd/store"
)

// notifySocket listens where $NOTIFY_SOCKET points and collects what is sent.
type notifySocket struct {
	path string
	mu   sync.Mutex
	got  []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 256)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.got = append(n.got, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) count(msg string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.got {
		if m == msg {
			c++
		}
	}
	return c
}

func (n *notifySocket) waitFor(t *testing.T, msg string, times int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for n.count(msg) < times {
		if time.Now().After(deadline) {
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Fatalf("waited for %d x %s; got %v", times, msg, n.got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wedgeStore is a real store whose writes can be made to hang, as a
// wedged disk or a deadlock would hang the decision loop.
type wedgeStore struct {
	*store.DB
	mu     sync.Mutex
	wedged chan struct{}
}

func (w *wedgeStore) Update(fn func(*store.Tx) error) error {
	w.mu.Lock()
	ch := w.wedged
	w.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return w.DB.Update(fn)
}

type noLocks struct{}

func (noLocks) Unlock(int) error { return nil }

// TestWatchdogStopsWhenLoopIsWedged: READY once the loop serves, WATCHDOG
// while it answers, none once it hangs.
func TestWatchdogStopsWhenLoopIsWedged(t *testing.T) {
	n := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ws := &wedgeStore{DB: db}
	box, err := device.New(device.Config{Bins: []device.BinSpec{{ID: 1}}, Store: ws, Locks: noLocks{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go box.Run(ctx)
	done := make(chan error, 1)
	go func() { done <- supervise(ctx, box, slog.New(slog.DiscardHandler)) }()

	n.waitFor(t, "READY=1", 1)
	n.waitFor(t, "WATCHDOG=1", 3)

	release := make(chan struct{})
	ws.mu.Lock()
	ws.wedged = release
	ws.mu.Unlock()
	box.KeypadEntry("0000") // the loop blocks in this decision's write
	time.Sleep(300 * time.Millisecond)
	fed := n.count("WATCHDOG=1")
	time.Sleep(time.Second)
	if after := n.count("WATCHDOG=1"); after != fed {
		t.Fatalf("the watchdog was fed %d more times while the loop was wedged", after-fed)
	}
	close(release)
	n.waitFor(t, "WATCHDOG=1", fed+2) // it recovers
	if n.count("READY=1") != 1 {
		t.Fatal("READY sent more than once")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDaemonNotifiesSystemd runs the daemon as systemd would: READY, then
// WATCHDOG, and STOPPING on SIGTERM.
func TestDaemonNotifiesSystemd(t *testing.T) {
	n := listenNotify(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "box_id: b\ndata_dir: "+filepath.Join(dir, "data")+"\nhardware:\n  bins: [{id: 1}]\n")
	cmd := exec.Command(binPath, "-config", cfg)
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "READY=1", 1)
	n.waitFor(t, "WATCHDOG=1", 2)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("exit: %v\n%s", err, out.String())
	}
	n.waitFor(t, "STOPPING=1", 1)
}

// TestUnitFileVerifies runs systemd-analyze verify on the shipped unit, with
// its ExecStart pointed at the daemon built here.
func TestUnitFileVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	raw, err := readFile("../../configs/smartboxd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "smartboxd.service")
	if err := writeFile(unit, strings.ReplaceAll(raw, "/usr/local/bin/smartboxd", binPath)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=always", "StateDirectory=smartbox", "SupplementaryGroups=dialout gpio",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "DeviceAllow=char-gpiochip",
		"SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources", "ProtectProc=invisible", "ProcSubset=pid",
		"UMask=0077", "MemoryMax=", "TasksMax=", "LimitCORE=0", "RemoveIPC=yes", "PrivateMounts=yes"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
