// Package sdnotify speaks systemd's notification protocol: datagrams like
// "READY=1" sent to the unix socket named by $NOTIFY_SOCKET. Without that
// variable (not started by systemd) every call does nothing.
package sdnotify

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Send sends one notification state, e.g. "READY=1". It reports whether a
// socket was there to send to.
func Send(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// Ready tells systemd start-up is complete.
func Ready() { Send("READY=1") }

// Stopping tells systemd the daemon is stopping.
func Stopping() { Send("STOPPING=1") }

// Watchdog feeds the watchdog.
func Watchdog() { Send("WATCHDOG=1") }

// WatchdogInterval is how often systemd expects Watchdog, from
// $WATCHDOG_USEC (and $WATCHDOG_PID, when set, must be this process); 0 when
// the watchdog is off.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}
