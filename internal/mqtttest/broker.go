package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a mosquitto process may take to accept
	// connections on all of its ports.
	startTimeout = 15 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM before it kills
	// the process. Saving a large persistence database takes a while.
	stopTimeout = 30 * time.Second
	// startAttempts is how many sets of free ports Start tries before giving
	// up; another process may take a port between picking and binding it.
	startAttempts = 5
	// restartBindTimeout bounds how long Restart retries its fixed ports.
	restartBindTimeout = 10 * time.Second
)

// ErrExited is returned when mosquitto exits while it is being started.
var ErrExited = errors.New("mqtttest: mosquitto exited during start-up")

// errBind marks a start that failed only because a port was taken.
var errBind = errors.New("mqtttest: mosquitto could not bind its port")

// Option configures a broker made by Start.
type Option func(*brokerConfig)

type brokerConfig struct {
	pki           *PKI
	websockets    bool
	noPersistence bool
	brokerLimits  bool
	extra         []string
}

// WithoutPersistence runs the broker without a persistence database: a
// restart forgets sessions and retained messages. Benchmarks use it.
func WithoutPersistence() Option {
	return func(c *brokerConfig) { c.noPersistence = true }
}

// WithMosquittoLimits keeps mosquitto's own per-client limits on queued and
// in-flight messages (max_queued_messages 1000, max_inflight_messages 20)
// instead of lifting them.
func WithMosquittoLimits() Option {
	return func(c *brokerConfig) { c.brokerLimits = true }
}

// WithTLS adds a TLS listener (Broker.TLSURL) that presents pki's server
// certificate and requires a client certificate signed by pki's CA.
func WithTLS(pki *PKI) Option {
	return func(c *brokerConfig) { c.pki = pki }
}

// WithWebsockets adds a plain websockets listener (Broker.WSURL).
func WithWebsockets() Option {
	return func(c *brokerConfig) { c.websockets = true }
}

// WithConfig appends raw mosquitto.conf lines. They are written after the
// harness's own global settings and before the listeners, so a global
// setting given here overrides the harness's value of it.
func WithConfig(lines ...string) Option {
	return func(c *brokerConfig) { c.extra = append(c.extra, lines...) }
}

// Broker is a mosquitto process run for a test or a program. Its ports,
// configuration, persistence database and log stay the same across Restart.
type Broker struct {
	t       testing.TB // set by Start: the test its failures fail
	bin     string
	dir     string
	conf    string
	logPath string
	outPath string
	cfg     brokerConfig

	port, tlsPort, wsPort int

	mu   sync.Mutex // serialises start and stop; guards proc
	proc *process
}

// process is one run of mosquitto. err is set before done is closed.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs a mosquitto broker on free loopback ports and stops it when the
// test ends. It installs mosquitto first when it is missing, and fails the
// test if the broker cannot be installed or started.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b, err := Launch(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	b.t = t
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log (%s):\n%s", b.dir, b.Log())
		}
	})
	return b
}

// Launch runs a mosquitto broker on free loopback ports with its files in
// dir, for a program: the caller stops it. It installs mosquitto first when
// it is missing.
func Launch(dir string, opts ...Option) (*Broker, error) {
	var cfg brokerConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := MosquittoBinary()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		bin:     bin,
		dir:     dir,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logPath: filepath.Join(dir, "mosquitto.log"),
		outPath: filepath.Join(dir, "mosquitto.out"),
		cfg:     cfg,
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = b.pickPorts(); err != nil {
			break
		}
		if err = b.writeConfig(); err != nil {
			break
		}
		if err = b.startLocked(); !errors.Is(err, errBind) {
			break
		}
		b.note("ports taken, trying others")
	}
	if err != nil {
		return nil, fmt.Errorf("%w (the broker log follows)\n%s", err, b.logLocked())
	}
	return b, nil
}

// fail fails the test the broker was started for, or panics in a program
// (a misuse, such as TLSURL of a broker without TLS).
func (b *Broker) fail(format string, args ...any) {
	if b.t != nil {
		b.t.Helper()
		b.t.Fatalf(format, args...)
	}
	panic(fmt.Sprintf(format, args...))
}

// URL returns the broker's plain MQTT address, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://" + b.addr(b.port) }

// Addr returns the plain MQTT listener's host:port.
func (b *Broker) Addr() string { return b.addr(b.port) }

// TLSURL returns the TLS listener's address, ssl://127.0.0.1:PORT. It fails
// the test when the broker was started without WithTLS.
func (b *Broker) TLSURL() string {
	if b.tlsPort == 0 {
		b.fail("mqtttest: TLSURL of a broker started without WithTLS")
	}
	return "ssl://" + b.addr(b.tlsPort)
}

// WSURL returns the websockets listener's address, ws://127.0.0.1:PORT. It
// fails the test when the broker was started without WithWebsockets.
func (b *Broker) WSURL() string {
	if b.wsPort == 0 {
		b.fail("mqtttest: WSURL of a broker started without WithWebsockets")
	}
	return "ws://" + b.addr(b.wsPort)
}

// Dir returns the broker's directory: its configuration, log and, under
// data/, its persistence database.
func (b *Broker) Dir() string { return b.dir }

// Running reports whether the mosquitto process is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return false
	}
	select {
	case <-b.proc.done:
		return false
	default:
		return true
	}
}

// Stop ends the broker with SIGTERM, so that it saves its persistence
// database, and waits for it to exit; a broker that does not exit in time is
// killed. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(syscall.SIGTERM)
}

// Kill ends the broker with SIGKILL, as a crash or power loss would, and
// waits for it to exit. Changes not yet autosaved are lost.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(syscall.SIGKILL)
}

// Restart stops the broker if it is running and starts it again on the same
// ports with the same persistence database, so persistent sessions, their
// subscriptions and queued messages, and retained messages survive. It fails
// the test if the broker does not come back.
func (b *Broker) Restart() {
	if err := b.Relaunch(); err != nil {
		b.fail("%v", err)
	}
}

// Relaunch is Restart that returns its error, for programs.
func (b *Broker) Relaunch() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(syscall.SIGTERM)
	deadline := time.Now().Add(restartBindTimeout)
	for {
		err := b.startLocked()
		if err == nil {
			return nil
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			return fmt.Errorf("%w; restart on the same ports failed (the broker log follows)\n%s", err, b.logLocked())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns what the broker has logged so far, across restarts, followed
// by anything it wrote to stdout or stderr.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logLocked()
}

func (b *Broker) logLocked() string {
	var sb strings.Builder
	if data, err := os.ReadFile(b.logPath); err == nil {
		sb.Write(data)
	}
	if data, err := os.ReadFile(b.outPath); err == nil && len(bytes.TrimSpace(data)) > 0 {
		sb.WriteString("--- mosquitto stdout/stderr ---\n")
		sb.Write(data)
	}
	return sb.String()
}

func (b *Broker) addr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// note appends a line of the harness's own to the broker log, so the log
// shows where the broker was started, stopped or killed. It is only called
// while no mosquitto process is writing to the log.
func (b *Broker) note(format string, args ...any) {
	f, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s: mqtttest: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05"), fmt.Sprintf(format, args...))
}

// pickPorts chooses free loopback ports for every listener. The ports are
// held open together so that they differ, then released for mosquitto.
func (b *Broker) pickPorts() error {
	n := 1
	if b.cfg.pki != nil {
		n++
	}
	if b.cfg.websockets {
		n++
	}
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("mqtttest: pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	b.port, ports = ports[0], ports[1:]
	b.tlsPort, b.wsPort = 0, 0
	if b.cfg.pki != nil {
		b.tlsPort, ports = ports[0], ports[1:]
	}
	if b.cfg.websockets {
		b.wsPort = ports[0]
	}
	return nil
}

// writeConfig writes mosquitto.conf for the current ports. Option names and
// meanings follow mosquitto.conf(5) of mosquitto 2.0.
func (b *Broker) writeConfig() error {
	var c strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&c, format+"\n", args...) }
	line("# mosquitto.conf written by smartboxd's mqtttest")
	line("per_listener_settings false")
	line("allow_anonymous true")
	// Persistence keeps sessions, subscriptions, queued and retained
	// messages across Restart. mosquitto saves on a clean exit and, with
	// autosave_on_changes false, every autosave_interval seconds.
	if b.cfg.noPersistence {
		line("persistence false")
	} else {
		line("persistence true")
		line("persistence_location %s%c", filepath.Join(b.dir, "data"), filepath.Separator)
		line("autosave_interval 1")
		line("autosave_on_changes false")
	}
	// No per-client limits unless asked: tests queue 100,000 messages for
	// an offline client. message_size_limit and max_packet_size are left at
	// their defaults, which accept any payload the protocol allows.
	if !b.cfg.brokerLimits {
		line("max_queued_messages 0")
		line("max_queued_bytes 0")
		line("max_inflight_messages 0")
		line("max_inflight_bytes 0")
	}
	line("set_tcp_nodelay true")
	line("log_dest file %s", b.logPath)
	line("log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S")
	// "information" would add a line per autosave, every two seconds.
	for _, typ := range []string{"error", "warning", "notice", "subscribe", "unsubscribe"} {
		line("log_type %s", typ)
	}
	if os.Geteuid() == 0 {
		// As root, mosquitto would switch to the mosquitto user, which
		// cannot write the test's temporary directory.
		line("user root")
	}
	for _, l := range b.cfg.extra {
		line("%s", l)
	}
	line("")
	line("listener %d 127.0.0.1", b.port)
	if p := b.cfg.pki; p != nil {
		line("")
		line("listener %d 127.0.0.1", b.tlsPort)
		line("cafile %s", p.CAFile)
		line("certfile %s", p.ServerCert)
		line("keyfile %s", p.ServerKey)
		line("require_certificate true")
	}
	if b.cfg.websockets {
		line("")
		line("listener %d 127.0.0.1", b.wsPort)
		line("protocol websockets")
	}
	if err := os.WriteFile(b.conf, []byte(c.String()), 0o600); err != nil {
		return fmt.Errorf("mqtttest: write config: %w", err)
	}
	return nil
}

// startLocked starts mosquitto and waits until every listener accepts TCP
// connections. It returns an error wrapping errBind when a port was taken.
func (b *Broker) startLocked() error {
	if b.proc != nil {
		return errors.New("mqtttest: mosquitto is already running")
	}
	out, err := os.OpenFile(b.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("mqtttest: open output file: %w", err)
	}
	defer out.Close()
	logStart := fileSize(b.logPath)
	outStart := fileSize(b.outPath)
	b.note("starting %s -c %s", b.bin, b.conf)

	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Dir = b.dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Do not outlive a test binary that dies without running cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mqtttest: run %s: %w", b.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.proc = p

	ports := []int{b.port, b.tlsPort, b.wsPort}
	err = waitListening(p.done, ports)
	if err == nil {
		return nil
	}
	b.stopLocked(syscall.SIGKILL)
	if errors.Is(err, ErrExited) && bindFailed(b.logPath, logStart, b.outPath, outStart) {
		return fmt.Errorf("%w: %w", errBind, err)
	}
	return err
}

// stopLocked sends sig to mosquitto and waits for it to exit, killing it
// when SIGTERM is not enough.
func (b *Broker) stopLocked(sig syscall.Signal) {
	p := b.proc
	if p == nil {
		return
	}
	b.proc = nil
	select {
	case <-p.done:
		b.note("mosquitto had exited: %v", p.err)
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
	b.note("sent %s; mosquitto ended: %v", name, p.err)
}

// waitListening polls until every non-zero port accepts a TCP connection,
// the process exits, or startTimeout passes.
func waitListening(exited <-chan struct{}, ports []int) error {
	deadline := time.Now().Add(startTimeout)
	for _, port := range ports {
		if port == 0 {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for {
			select {
			case <-exited:
				return ErrExited
			default:
			}
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("mqtttest: mosquitto did not listen on %s within %v: %w", addr, startTimeout, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// bindFailed reports whether the log or output written since the given
// offsets says that mosquitto could not bind a listener.
func bindFailed(logPath string, logStart int64, outPath string, outStart int64) bool {
	text := tail(logPath, logStart) + tail(outPath, outStart)
	return strings.Contains(text, "Address already in use") ||
		strings.Contains(text, "Unable to create websockets listener")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func tail(path string, from int64) string {
	data, err := os.ReadFile(path)
	if err != nil || from > int64(len(data)) {
		return ""
	}
	return string(data[from:])
}

var mosquittoPath struct {
	sync.Mutex
	path string
}

// MosquittoBinary finds mosquitto, installing it with .ci/install-deps.sh
// when it is missing.
func MosquittoBinary() (string, error) {
	mosquittoPath.Lock()
	defer mosquittoPath.Unlock()
	if mosquittoPath.path != "" {
		return mosquittoPath.path, nil
	}
	if p := os.Getenv("MQTTTEST_MOSQUITTO"); p != "" {
		mosquittoPath.path = p
		return p, nil
	}
	if p, ok := lookMosquitto(); ok {
		mosquittoPath.path = p
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("mqtttest: mosquitto is not installed and %v", err)
	}
	script := filepath.Join(root, ".ci", "install-deps.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mqtttest: mosquitto is not installed and %s failed: %v\n%s", script, err, out)
	}
	p, ok := lookMosquitto()
	if !ok {
		return "", fmt.Errorf("mqtttest: %s succeeded but mosquitto is still not found\n%s", script, out)
	}
	mosquittoPath.path = p
	return p, nil
}

func lookMosquitto() (string, bool) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, true
	}
	const sbin = "/usr/sbin/mosquitto"
	if fi, err := os.Stat(sbin); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return sbin, true
	}
	return "", false
}

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("mqtttest: find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("mqtttest: no go.mod above the working directory")
		}
		dir = parent
	}
}
