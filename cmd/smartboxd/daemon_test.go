package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"smartboxd/internal/mqtttest"
)

// binPath is the daemon built once for every test here.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smartboxd-test")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "smartboxd")
	build := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=test", "-o", binPath, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build smartboxd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// port is a pseudo-terminal standing in for a serial device: the daemon
// opens Name, the test writes to and reads from Master.
type port struct {
	Master, slave *os.File
}

func newPort(t *testing.T) *port {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return &port{Master: m, slave: s}
}

func (p *port) Name() string { return p.slave.Name() }

// rdmFrame is an RDM6300 frame for a 10-hex-digit serial.
func rdmFrame(serial string) []byte {
	var sum byte
	for i := 0; i < 10; i += 2 {
		var b byte
		fmt.Sscanf(serial[i:i+2], "%02X", &b)
		sum ^= b
	}
	return []byte(fmt.Sprintf("\x02%s%02X\x03", serial, sum))
}

// fakeReader plays an RDM6300 fakeReader: while a fob is in, it repeats the frame.
type fakeReader struct {
	p    *port
	mu   sync.Mutex
	fob  string
	stop chan struct{}
}

func newFakeReader(t *testing.T) *fakeReader {
	r := &fakeReader{p: newPort(t), stop: make(chan struct{})}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			r.mu.Lock()
			fob := r.fob
			r.mu.Unlock()
			if fob != "" {
				r.p.Master.Write(rdmFrame(fob))
			}
		}
	}()
	t.Cleanup(func() { close(r.stop) })
	return r
}

func (r *fakeReader) put(fob string) { r.mu.Lock(); r.fob = fob; r.mu.Unlock() }
func (r *fakeReader) take()          { r.put("") }

// daemon is one smartboxd process on a data dir.
type daemon struct {
	t       *testing.T
	cfgPath string
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	err     error
}

func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "smartboxd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	return startBinary(t, binPath, cfgPath)
}

// startBinary runs the daemon binary bin on cfgPath, with env added to the
// test's environment, and kills it when the test ends.
func startBinary(t *testing.T, bin, cfgPath string, env ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, cfgPath: cfgPath, out: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, "-config", cfgPath)
	if len(env) > 0 {
		d.cmd.Env = append(os.Environ(), env...)
	}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			if t.Failed() {
				// A daemon still running when its test failed may be
				// stuck: SIGQUIT makes it print every goroutine first.
				d.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-d.exited:
				case <-time.After(5 * time.Second):
				}
			}
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out.String())
		}
	})
	return d
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("the daemon did not stop on SIGTERM:\n%s", d.out.String())
	}
	if d.err != nil {
		d.t.Fatalf("exit after SIGTERM: %v\n%s", d.err, d.out.String())
	}
}

func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.exited
}

// waitExit waits for the process to end by itself and returns its status.
func (d *daemon) waitExit() int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("the daemon did not exit:\n%s", d.out.String())
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// cloud plays the cloud on a real broker for one box.
type cloud struct {
	t       *testing.T
	c       *mqtttest.Client
	events  *mqtttest.Recorder
	replies *mqtttest.Recorder
	status  *mqtttest.Recorder
	p       string
	n       int
}

func newCloud(t *testing.T, b *mqtttest.Broker, box string) *cloud {
	c := mqtttest.Dial(t, b.URL(), mqtttest.WithClientID("cloud-"+box), mqtttest.WithCleanSession(false))
	p := "smartbox/" + box
	return &cloud{t: t, c: c, p: p,
		events: c.Subscribe(p + "/events"), replies: c.Subscribe(p + "/cmd/reply"), status: c.Subscribe(p + "/status")}
}

type event struct {
	ID   string         `json:"id"`
	Seq  uint64         `json:"seq"`
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

func decodeEvents(msgs []mqtttest.Message) []event {
	out := make([]event, 0, len(msgs))
	for _, m := range msgs {
		var e event
		if json.Unmarshal(m.Payload, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event of type typ matching pred, and returns it.
func (c *cloud) waitEvent(typ string, pred func(event) bool) event {
	c.t.Helper()
	var found event
	c.events.WaitUntil(c.t, func(msgs []mqtttest.Message) bool {
		for _, e := range decodeEvents(msgs) {
			if e.Type == typ && (pred == nil || pred(e)) {
				found = e
				return true
			}
		}
		return false
	}, 20*time.Second)
	return found
}

func (c *cloud) ack(seq uint64) {
	c.c.Publish(c.t, c.p+"/events/ack", 1, false, []byte(fmt.Sprintf(`{"seq":%d}`, seq)))
}

// command sends a command and waits for its reply.
func (c *cloud) command(typ string, data any) map[string]any {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("t-%d", c.n)
	raw, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	c.c.Publish(c.t, c.p+"/cmd", 1, false, raw)
	return c.reply(id)
}

func (c *cloud) reply(id string) map[string]any {
	c.t.Helper()
	var out map[string]any
	c.replies.WaitUntil(c.t, func(msgs []mqtttest.Message) bool {
		for _, m := range msgs {
			var r map[string]any
			if json.Unmarshal(m.Payload, &r) == nil && r["id"] == id {
				out = r
				return true
			}
		}
		return false
	}, 20*time.Second)
	return out
}

func (c *cloud) mustOK(typ string, data any) map[string]any {
	c.t.Helper()
	r := c.command(typ, data)
	if r["ok"] != true {
		c.t.Fatalf("%s: %v", typ, r)
	}
	return r
}

func TestCheck(t *testing.T) {
	out, err := exec.Command(binPath, "-config", "../../configs/sim.yaml", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("sim.yaml -check: %v\n%s", err, out)
	}
	bad := writeConfig(t, t.TempDir(), "data_dir: /tmp/x\nmqtt:\n  broker: foo://x\nhardware:\n  bins: [{id: 1}]\n")
	cmd := exec.Command(binPath, "-config", bad, "-check")
	out, err = cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "box_id: ") || !strings.HasPrefix(lines[1], "mqtt.broker: ") {
		t.Fatalf("want one line for box_id and one for mqtt.broker, got:\n%s", out)
	}
	// A bad config never half-starts the daemon: no data dir appears.
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "box_id: b\ndata_dir: "+filepath.Join(dir, "data")+"\nmqtt: {broker: foo://x}\nhardware:\n  bins: [{id: 1}]\n")
	if err := exec.Command(binPath, "-config", cfg).Run(); err == nil {
		t.Fatal("a bad config started")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatal("a bad config created the data dir")
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binPath, "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "smartboxd test" {
		t.Fatalf("-version: %q %v", out, err)
	}
}

// boxConfig is a 3-bin sim box with RDM6300 readers and a serial keypad on
// pseudo-terminals.
func boxConfig(dir, box, broker string, readers []*fakeReader, keypad *port) string {
	var b strings.Builder
	fmt.Fprintf(&b, "box_id: %s\ndata_dir: %s\nmqtt:\n  broker: %q\n", box, filepath.Join(dir, "data"), broker)
	b.WriteString("hardware:\n  backend: sim\n  bins:\n")
	for i := range readers {
		fmt.Fprintf(&b, "    - {id: %d}\n", i+1)
	}
	b.WriteString("readers:\n")
	for i, r := range readers {
		fmt.Fprintf(&b, "  - {type: rdm6300, port: %s, bin: %d}\n", r.p.Name(), i+1)
	}
	if keypad != nil {
		fmt.Fprintf(&b, "keypad: {type: serial, port: %s}\n", keypad.Name())
	}
	b.WriteString("timing: {fob_absent_ms: 400, dropoff_timeout_s: 30, inventory_settle_s: 2}\n")
	return b.String()
}

// TestDropoffAndPickupThroughPorts runs a whole drop-off and pickup with
// frames and keystrokes alone, on pseudo-terminals, watched from the cloud.
func TestDropoffAndPickupThroughPorts(t *testing.T) {
	b := mqtttest.Start(t)
	readers := []*fakeReader{newFakeReader(t), newFakeReader(t), newFakeReader(t)}
	keypad := newPort(t)
	dir := t.TempDir()
	d := startDaemon(t, writeConfig(t, dir, boxConfig(dir, "box-pty", b.URL(), readers, keypad)))
	c := newCloud(t, b, "box-pty")
	c.waitEvent("device.started", nil)
	c.mustOK("key.upsert", map[string]any{"key_id": "front", "name": "Front door"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "drop", "code": "5678", "name": "host", "type": "ongoing", "key_id": "front", "action": "dropoff"})
	c.mustOK("access_code.upsert", map[string]any{"access_code_id": "pick", "code": "1234", "name": "guest", "type": "ongoing", "key_id": "front", "action": "pickup"})

	// Noise on a fakeReader and on the keypad changes nothing.
	readers[2].p.Master.Write([]byte("\x02garbage\x03\x02123\xff\xfe"))
	keypad.Master.Write([]byte("abc\x00\r\n"))

	keypad.Master.Write([]byte("5678#"))
	u := c.waitEvent("bin.unlocked", func(e event) bool { return e.Data["reason"] == "dropoff" })
	bin := int(u.Data["bin"].(float64))
	readers[bin-1].put("0A1B2C3D4E")
	c.waitEvent("fob.linked", func(e event) bool { return e.Data["fob"] == "0A1B2C3D4E" })
	c.waitEvent("key.dropped_off", func(e event) bool { return e.Data["key_id"] == "front" && e.Data["bin"] == float64(bin) })

	keypad.Master.Write([]byte("1234#"))
	c.waitEvent("bin.unlocked", func(e event) bool { return e.Data["reason"] == "pickup" })
	readers[bin-1].take()
	p := c.waitEvent("key.picked_up", nil)
	if p.Data["access_code_id"] != "pick" || p.Data["via"] != "access_code" {
		t.Fatalf("pickup %v", p.Data)
	}
	for _, e := range decodeEvents(c.events.Messages()) {
		if e.Type == "code.rejected" || e.Type == "fob.unknown" || e.Type == "inventory.mismatch" {
			t.Fatalf("noise produced %s %v", e.Type, e.Data)
		}
	}
	d.stop()
	// The planned stop said offline, retained.
	c.status.WaitUntil(t, func(msgs []mqtttest.Message) bool {
		return len(msgs) > 0 && bytes.Contains(msgs[len(msgs)-1].Payload, []byte(`"online":false`))
	}, 10*time.Second)
}

func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: b\ndata_dir: %s\nhardware:\n  bins: [{id: 1}]\n", filepath.Join(dir, "data")))
	first := startDaemon(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(first.out.String(), "smartboxd started") {
		if time.Now().After(deadline) {
			t.Fatalf("first daemon did not start:\n%s", first.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := startDaemon(t, cfg)
	if code := second.waitExit(); code == 0 {
		t.Fatal("a second daemon on the same data dir started")
	}
	if !strings.Contains(second.out.String(), "in use by another process") {
		t.Fatalf("unclear message:\n%s", second.out.String())
	}
	first.stop()
}

func TestUnopenablePortStopsStartup(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: b\ndata_dir: %s\nhardware:\n  bins: [{id: 1}]\nreaders:\n  - {type: rdm6300, port: /dev/ttyNOPE9, bin: 1}\n", filepath.Join(dir, "data")))
	d := startDaemon(t, cfg)
	if code := d.waitExit(); code == 0 {
		t.Fatal("started without its fakeReader")
	}
	if !strings.Contains(d.out.String(), "/dev/ttyNOPE9") {
		t.Fatalf("the error does not name the port:\n%s", d.out.String())
	}
}

// TestKillNineLosesNothing kills the daemon with unacked events: the last
// will says offline, and after a restart the same events come again with
// the same ids, and seq goes on without reuse.
func TestKillNineLosesNothing(t *testing.T) {
	b := mqtttest.Start(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("box_id: box-k9\ndata_dir: %s\nmqtt: {broker: %q, keepalive_s: 2}\nhardware:\n  bins: [{id: 1}, {id: 2}]\n", filepath.Join(dir, "data"), b.URL()))
	d := startDaemon(t, cfg)
	c := newCloud(t, b, "box-k9")
	c.waitEvent("device.started", nil)
	c.mustOK("key.upsert", map[string]any{"key_id": "k", "name": "k"})
	c.mustOK("bin.open", map[string]any{"bin": 2})
	before := decodeEvents(c.events.WaitUntil(t, func(m []mqtttest.Message) bool { return len(decodeEvents(m)) >= 3 }, 10*time.Second))
	d.kill()
	c.status.WaitUntil(t, func(msgs []mqtttest.Message) bool {
		return len(msgs) > 0 && bytes.Contains(msgs[len(msgs)-1].Payload, []byte(`"online":false`))
	}, 20*time.Second)

	// A command sent while the box is down reaches it when it is back.
	c.c.Publish(t, c.p+"/cmd", 1, false, []byte(`{"id":"while-down","type":"key.upsert","data":{"key_id":"k2","name":"k2"}}`))

	n := len(c.events.Messages())
	startDaemon(t, cfg)
	if r := c.reply("while-down"); r["ok"] != true {
		t.Fatalf("command sent while down: %v", r)
	}
	after := decodeEvents(c.events.WaitUntil(t, func(m []mqtttest.Message) bool {
		for _, e := range decodeEvents(m[n:]) {
			if e.Type == "device.started" && e.Seq > before[len(before)-1].Seq {
				return true
			}
		}
		return false
	}, 20*time.Second)[n:])
	ids := map[uint64]string{}
	for _, e := range before {
		ids[e.Seq] = e.ID
	}
	republished := 0
	var maxSeq uint64
	for _, e := range after {
		if id, seen := ids[e.Seq]; seen {
			if id != e.ID {
				t.Fatalf("seq %d republished with id %s, was %s", e.Seq, e.ID, id)
			}
			republished++
		}
		maxSeq = max(maxSeq, e.Seq)
	}
	if republished < len(before) {
		t.Fatalf("only %d of %d unacked events came again", republished, len(before))
	}
	restart := c.waitEvent("device.started", func(e event) bool { return e.Seq > before[len(before)-1].Seq })
	if restart.Seq != before[len(before)-1].Seq+1 {
		// Nothing else happened while the box was down, so the next seq
		// is the restart's.
		t.Fatalf("seq after restart %d, last before %d", restart.Seq, before[len(before)-1].Seq)
	}
	c.ack(maxSeq)
}
