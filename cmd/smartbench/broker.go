package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// broker is a local mosquitto for the MQTT benchmarks. internal/mqtttest
// starts brokers for tests (it needs a testing.TB); this is the same kind
// of broker for a program: loopback only, no persistence, and no limits on
// in-flight or queued messages per client, so that what is measured is the
// box's drain and not the broker's flow control (see the README on what a
// production broker needs).
type broker struct {
	cmd  *exec.Cmd
	done chan struct{}
	port int
	log  string
}

// brokerConfig is the mosquitto.conf (mosquitto 2.0) of a benchmark broker;
// with limits, mosquitto's own defaults for in-flight and queued messages
// per client stay in force.
func brokerConfig(port int, logPath string, limits bool) string {
	lines := []string{
		"per_listener_settings false",
		"allow_anonymous true",
		"persistence false",
	}
	if !limits {
		lines = append(lines,
			"max_queued_messages 0",
			"max_queued_bytes 0",
			"max_inflight_messages 0",
			"max_inflight_bytes 0")
	}
	lines = append(lines,
		"set_tcp_nodelay true",
		"log_dest file "+logPath,
		"log_type error",
		"log_type warning",
		"log_type notice")
	if os.Geteuid() == 0 {
		// As root mosquitto would switch to its own user, which cannot
		// write the benchmark's directory.
		lines = append(lines, "user root")
	}
	lines = append(lines, "", fmt.Sprintf("listener %d 127.0.0.1", port))
	return strings.Join(lines, "\n") + "\n"
}

func mosquittoBinary() (string, error) {
	if p := os.Getenv("MQTTTEST_MOSQUITTO"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/mosquitto"
	if fi, err := os.Stat(sbin); err == nil && !fi.IsDir() {
		return sbin, nil
	}
	return "", errors.New("mosquitto is not installed (make deps installs it)")
}

// startBroker runs mosquitto on a free loopback port with its files in dir;
// limits keeps mosquitto's default per-client limits.
func startBroker(dir string, limits bool) (*broker, error) {
	bin, err := mosquittoBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var last error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		b := &broker{port: port, log: filepath.Join(dir, "mosquitto.log"), done: make(chan struct{})}
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(brokerConfig(port, b.log, limits)), 0o600); err != nil {
			return nil, err
		}
		out, err := os.OpenFile(filepath.Join(dir, "mosquitto.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		b.cmd = exec.Command(bin, "-c", conf)
		b.cmd.Stdout, b.cmd.Stderr = out, out
		// Do not outlive the benchmark.
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = b.cmd.Start()
		out.Close()
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", bin, err)
		}
		go func() { b.cmd.Wait(); close(b.done) }()
		if last = b.waitListening(10 * time.Second); last == nil {
			return b, nil
		}
		b.stop()
	}
	return nil, fmt.Errorf("mosquitto did not start: %w (see %s)", last, dir)
}

func (b *broker) url() string { return "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

func (b *broker) waitListening(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-b.done:
			return errors.New("mosquitto exited")
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends mosquitto and waits for it.
func (b *broker) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
}
