package mqttlink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/internal/mqtttest"
	"smartboxd/store"
)

const (
	testBoxID = "box-1"
	prefix    = "smartbox/" + testBoxID
	// wait bounds every wait for something to arrive over MQTT.
	wait = 20 * time.Second
)

// fakeLocks records the bins the box pulsed.
type fakeLocks struct {
	mu     sync.Mutex
	pulsed []int
}

func (f *fakeLocks) Unlock(bin int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulsed = append(f.pulsed, bin)
	return nil
}

func (f *fakeLocks) pulses() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pulsed)
}

// testBox is a real device box on a real bbolt file.
type testBox struct {
	t      testing.TB
	dir    string
	db     *store.DB
	box    *device.Box
	locks  *fakeLocks
	cancel context.CancelFunc
	done   chan error
}

// startBox opens the store in dir and runs a box on it until the test ends
// or stop is called.
func startBox(t testing.TB, dir string, tweak ...func(*device.Config)) *testBox {
	t.Helper()
	db, err := store.Open(dir, store.Options{BoxID: testBoxID, NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	b := &testBox{t: t, dir: dir, db: db, locks: &fakeLocks{}}
	cfg := device.Config{
		BoxID: testBoxID, Version: "test", BootID: "boot",
		Bins:  []device.BinSpec{{ID: 1}, {ID: 2}, {ID: 3}},
		Store: db, Locks: b.locks,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	b.box, err = device.New(cfg)
	if err != nil {
		db.Close()
		t.Fatalf("new box: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.box.Run(ctx) }()
	t.Cleanup(b.stop)
	// The first event, device.started, is in the outbox once this returns.
	fctx, fcancel := context.WithTimeout(context.Background(), wait)
	defer fcancel()
	if err := b.box.Flush(fctx); err != nil {
		t.Fatalf("box flush: %v", err)
	}
	return b
}

func (b *testBox) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	if err := <-b.done; err != nil {
		b.t.Errorf("box run: %v", err)
	}
	b.cancel = nil
	b.db.Close()
}

// exec runs a command on the box directly, as the console would, and
// fails the test unless it succeeds.
func (b *testBox) exec(typ string, data any) {
	b.t.Helper()
	raw, _ := json.Marshal(data)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := b.box.Execute(ctx, contract.Command{ID: fmt.Sprintf("direct-%d", time.Now().UnixNano()), Type: typ, Data: raw})
	if err != nil || !r.OK {
		b.t.Fatalf("exec %s: %+v %v", typ, r, err)
	}
}

// addKeys makes n events (key.updated), keys named from first on.
func (b *testBox) addKeys(first, n int) {
	b.t.Helper()
	for i := range n {
		b.exec("key.upsert", map[string]any{"key_id": fmt.Sprintf("k%d", first+i), "name": "key"})
	}
}

func (b *testBox) outbox() store.OutboxStats {
	b.t.Helper()
	s, err := b.db.OutboxStats()
	if err != nil {
		b.t.Fatalf("outbox stats: %v", err)
	}
	return s
}

// logBuffer collects a link's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// testLink is a Link run for a test.
type testLink struct {
	t testing.TB
	*Link
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error
}

// startLink runs a link for b to broker until the test ends or stop is
// called.
func startLink(t testing.TB, b *testBox, broker string, tweak ...func(*Config)) *testLink {
	t.Helper()
	return startLinkFor(t, b.box, b.db, broker, tweak...)
}

// startLinkFor is startLink for any box.
func startLinkFor(t testing.TB, box Box, out Outbox, broker string, tweak ...func(*Config)) *testLink {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		Broker: broker, BoxID: testBoxID, Version: "1.2.3", BootID: "boot-1",
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	l, err := New(cfg, box, out)
	if err != nil {
		t.Fatalf("new link: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &testLink{t: t, Link: l, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tl.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		tl.stop()
		if t.Failed() {
			t.Logf("link log:\n%s", logs.String())
		}
	})
	return tl
}

// stop cancels Run and waits for it, failing the test if Run fails or
// does not return.
func (tl *testLink) stop() {
	if tl.cancel == nil {
		return
	}
	tl.cancel()
	tl.cancel = nil
	select {
	case err := <-tl.done:
		if err != nil {
			tl.t.Errorf("link run: %v", err)
		}
	case <-time.After(wait):
		tl.t.Errorf("link run did not return within %v of the stop", wait)
	}
}

func (tl *testLink) waitConnected() {
	tl.t.Helper()
	eventually(tl.t, "link connected", func() bool { return tl.Stats().Connected })
}

// waitSubscribed waits until the broker has confirmed the link's
// subscriptions n times (once per connection), so that commands reach it.
func (tl *testLink) waitSubscribed(n int) {
	tl.t.Helper()
	eventually(tl.t, "link subscribed", func() bool { return len(tl.logs.lines("mqtt subscribed")) >= n })
}

// eventually polls cond until it holds, failing the test after wait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is an event as the cloud receives it.
type event struct {
	ID    string          `json:"id"`
	BoxID string          `json:"box_id"`
	Seq   uint64          `json:"seq"`
	Type  string          `json:"type"`
	At    time.Time       `json:"at"`
	Data  json.RawMessage `json:"data"`
}

func decodeEvents(t testing.TB, msgs []mqtttest.Message) []event {
	t.Helper()
	out := make([]event, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Payload, &out[i]); err != nil {
			t.Fatalf("event %d: %v: %q", i, err, m.Payload)
		}
	}
	return out
}

// maxSeq is the highest seq among the events received.
func maxSeq(msgs []mqtttest.Message) uint64 {
	var m uint64
	for _, msg := range msgs {
		var e event
		if json.Unmarshal(msg.Payload, &e) == nil {
			m = max(m, e.Seq)
		}
	}
	return m
}

// reaches is a Recorder predicate: an event with seq >= n has arrived.
func reaches(n uint64) func([]mqtttest.Message) bool {
	return func(m []mqtttest.Message) bool { return maxSeq(m) >= n }
}

// checkStream checks what the cloud sees of the event stream: every copy of
// a seq carries the same id (and no id is used by two seqs), and the first
// copies arrive in seq order, from first up to last, without a gap.
func checkStream(t testing.TB, evs []event, first, last uint64) {
	t.Helper()
	ids := map[uint64]string{}
	seqs := map[string]uint64{}
	var order []uint64
	for _, e := range evs {
		if e.BoxID != testBoxID {
			t.Errorf("seq %d: box_id %q", e.Seq, e.BoxID)
		}
		if id, seen := ids[e.Seq]; seen {
			if id != e.ID {
				t.Errorf("seq %d published with ids %s and %s", e.Seq, id, e.ID)
			}
			continue
		}
		if s, seen := seqs[e.ID]; seen {
			t.Errorf("id %s published for seqs %d and %d", e.ID, s, e.Seq)
		}
		ids[e.Seq], seqs[e.ID] = e.ID, e.Seq
		order = append(order, e.Seq)
	}
	var want []uint64
	for s := first; s <= last; s++ {
		want = append(want, s)
	}
	if !slices.Equal(order, want) {
		t.Errorf("first copies arrived in the order %v, want %v", order, want)
	}
}

// statusOf decodes a status payload.
func statusOf(t testing.TB, m mqtttest.Message) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		t.Fatalf("status %q: %v", m.Payload, err)
	}
	return s
}

func isOnline(want bool) func([]mqtttest.Message) bool {
	return func(msgs []mqtttest.Message) bool {
		if len(msgs) == 0 {
			return false
		}
		var s struct{ Online bool }
		return json.Unmarshal(msgs[len(msgs)-1].Payload, &s) == nil && s.Online == want
	}
}

// reply is a command reply as the cloud receives it.
type reply struct {
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeReply(t testing.TB, m mqtttest.Message) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("reply %q: %v", m.Payload, err)
	}
	return r
}

// proxy is a TCP relay between the link and the broker that a test can
// cut, as a dead network or a crashed box would: the relayed sockets are
// reset, with no MQTT DISCONNECT, and new connections are refused until the
// proxy is reopened on the same address.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []*net.TCPConn
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.Reopen()
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.addr }

// Reopen accepts connections again, on the same address as before.
func (p *proxy) Reopen() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go p.serve(ln)
}

func (p *proxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c.(*net.TCPConn), up.(*net.TCPConn))
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
	}
}

// Cut resets every relayed connection and stops accepting new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.SetLinger(0) // close with a reset, not an orderly shutdown
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// gatedBox is a box whose Receive of a bin.open waits for the test to
// open the gate.
type gatedBox struct {
	*device.Box
	entered chan string // the id of each bin.open that reached Receive
	gate    chan struct{}
}

func (g *gatedBox) Receive(ctx context.Context, payload []byte) (contract.Reply, error) {
	cmd, err := contract.ParseCommand(payload, contract.DefaultLimits)
	if err != nil || cmd.Type != "bin.open" {
		return g.Box.Receive(ctx, payload)
	}
	g.entered <- cmd.ID
	select {
	case <-g.gate:
	case <-ctx.Done():
		return contract.Reply{}, ctx.Err()
	}
	return g.Box.Receive(ctx, payload)
}
