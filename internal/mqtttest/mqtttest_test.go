package mqtttest_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"smartboxd/internal/mqtttest"
)

const wait = 10 * time.Second

func TestRoundTripQoS1(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Fatalf("URL() = %q, want tcp://127.0.0.1:PORT", b.URL())
	}
	sub := mqtttest.Dial(t, b.URL(), mqtttest.WithClientID("rt-sub"))
	rec := sub.Subscribe("rt/#")
	pub := mqtttest.Dial(t, b.URL())

	want := []mqtttest.Message{
		{Topic: "rt/a", Payload: []byte("one"), QoS: 1},
		{Topic: "rt/b/c", Payload: []byte("two"), QoS: 1},
		{Topic: "rt", Payload: []byte{}, QoS: 1},
		{Topic: "rt/a", Payload: []byte("four"), QoS: 1},
	}
	pub.Publish(t, "elsewhere", 1, false, []byte("not for rt/#"))
	for _, m := range want {
		pub.Publish(t, m.Topic, m.QoS, false, m.Payload)
	}
	got := rec.WaitFor(t, len(want), wait)
	assertMessages(t, got, want)

	if log := b.Log(); !strings.Contains(log, "rt-sub") {
		t.Errorf("broker log does not mention client rt-sub:\n%s", log)
	}
}

func TestRetainedFlag(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	pub := mqtttest.Dial(t, b.URL())
	pub.Publish(t, "ret/status", 1, true, []byte(`{"online":true}`))

	sub := mqtttest.Dial(t, b.URL())
	rec := sub.Subscribe("ret/status")
	pub.Publish(t, "ret/status", 1, true, []byte(`{"online":false}`))

	assertMessages(t, rec.WaitFor(t, 2, wait), []mqtttest.Message{
		{Topic: "ret/status", Payload: []byte(`{"online":true}`), QoS: 1, Retained: true},
		{Topic: "ret/status", Payload: []byte(`{"online":false}`), QoS: 1, Retained: false},
	})
}

func TestLargePayload(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	sub := mqtttest.Dial(t, b.URL())
	rec := sub.Subscribe("big")
	pub := mqtttest.Dial(t, b.URL())

	payload := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
	pub.Publish(t, "big", 1, false, payload)
	got := rec.WaitFor(t, 1, wait)
	if !bytes.Equal(got[0].Payload, payload) {
		t.Fatalf("received %d bytes, want the %d bytes sent", len(got[0].Payload), len(payload))
	}
}

func TestRestartKeepsPersistentSession(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	persistent := []mqtttest.ClientOption{mqtttest.WithClientID("cloud"), mqtttest.WithCleanSession(false)}

	first := mqtttest.Dial(t, b.URL(), persistent...)
	first.Subscribe("box/cmd")
	first.Disconnect()

	pub := mqtttest.Dial(t, b.URL())
	var want []mqtttest.Message
	for i := range 3 {
		m := mqtttest.Message{Topic: "box/cmd", Payload: fmt.Appendf(nil, "cmd-%d", i), QoS: 1}
		pub.Publish(t, m.Topic, m.QoS, false, m.Payload)
		want = append(want, m)
	}

	b.Restart()
	if !b.Running() {
		t.Fatal("Running() = false after Restart")
	}

	// The broker delivers the queue right after the connection is
	// accepted, before any subscribe; the client holds it for Record.
	again := mqtttest.Dial(t, b.URL(), persistent...)
	rec := again.Record("box/cmd")
	assertMessages(t, rec.WaitFor(t, len(want), wait), want)

	// The subscription itself survived too.
	pub2 := mqtttest.Dial(t, b.URL())
	live := mqtttest.Message{Topic: "box/cmd", Payload: []byte("after restart"), QoS: 1}
	pub2.Publish(t, live.Topic, live.QoS, false, live.Payload)
	assertMessages(t, rec.WaitFor(t, len(want)+1, wait), append(want, live))
}

// TestOfflineQueueIsUnlimited queues more messages for an offline client
// than mosquitto's default max_queued_messages (1000) would keep.
func TestOfflineQueueIsUnlimited(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	persistent := []mqtttest.ClientOption{mqtttest.WithClientID("slow"), mqtttest.WithCleanSession(false)}
	first := mqtttest.Dial(t, b.URL(), persistent...)
	first.Subscribe("q")
	first.Disconnect()

	const n = 1500
	publishMany(t, mqtttest.Dial(t, b.URL()), "q", n)

	again := mqtttest.Dial(t, b.URL(), persistent...)
	rec := again.Subscribe("q")
	got := rec.WaitFor(t, n, wait)
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprint(i); string(m.Payload) != want {
			t.Fatalf("message %d = %q, want %q (order lost)", i, m.Payload, want)
		}
	}
}

func TestWithConfigOverridesDefaults(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.WithConfig("max_queued_messages 2"))
	persistent := []mqtttest.ClientOption{mqtttest.WithClientID("limited"), mqtttest.WithCleanSession(false)}
	first := mqtttest.Dial(t, b.URL(), persistent...)
	first.Subscribe("lim")
	first.Disconnect()

	const n = 10
	publishMany(t, mqtttest.Dial(t, b.URL()), "lim", n)

	again := mqtttest.Dial(t, b.URL(), persistent...)
	rec := again.Subscribe("lim")
	// A marker sent after the queue shows when the queue has been drained.
	mqtttest.Dial(t, b.URL()).Publish(t, "lim", 1, false, []byte("end"))
	got := rec.WaitUntil(t, func(m []mqtttest.Message) bool {
		return len(m) > 0 && string(m[len(m)-1].Payload) == "end"
	}, wait)
	// An offline client has nothing in flight, so the queue holds exactly
	// max_queued_messages; the harness's own default would hold all n.
	if queued := len(got) - 1; queued != 2 {
		t.Fatalf("%d of %d queued messages delivered, want 2 (max_queued_messages 2)", queued, n)
	}
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	url := b.URL()
	b.Kill()
	if b.Running() {
		t.Fatal("Running() = true after Kill")
	}
	if c, err := mqtttest.TryDial(t, url, mqtttest.WithTimeout(2*time.Second)); err == nil {
		c.Disconnect()
		t.Fatal("connected to a killed broker")
	}
	b.Restart()
	if b.URL() != url {
		t.Fatalf("URL after Restart = %q, want %q", b.URL(), url)
	}
	c := mqtttest.Dial(t, url)
	rec := c.Subscribe("k")
	c.Publish(t, "k", 1, false, []byte("back"))
	rec.WaitFor(t, 1, wait)

	b.Stop()
	b.Stop() // a second Stop does nothing
	if b.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if !strings.Contains(b.Log(), "sent SIGKILL") {
		t.Errorf("broker log does not record the kill:\n%s", b.Log())
	}
}

func TestClientReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	c := mqtttest.Dial(t, b.URL()) // clean session: must subscribe again itself
	rec := c.Subscribe("re")
	b.Restart()

	pub := mqtttest.Dial(t, b.URL())
	// Publish until the resubscribed client gets one: the resubscription
	// happens in the background after the reconnect.
	deadline := time.Now().Add(wait)
	for rec.Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("client did not receive after the broker restarted\n%s", b.Log())
		}
		pub.Publish(t, "re", 1, false, []byte("x"))
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	pki := mqtttest.NewPKI(t)
	b := mqtttest.Start(t, mqtttest.WithTLS(pki))
	if !strings.HasPrefix(b.TLSURL(), "ssl://127.0.0.1:") {
		t.Fatalf("TLSURL() = %q", b.TLSURL())
	}

	other := pki.OtherCA(t).ClientTLSConfig(t)
	other.RootCAs = pki.ClientTLSConfig(t).RootCAs // trust the server, present the wrong client
	noCert := pki.ClientTLSConfig(t)
	noCert.Certificates = nil
	wrongRoot := pki.OtherCA(t).ClientTLSConfig(t)

	tests := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"client certificate from the broker's CA", pki.ClientTLSConfig(t), true},
		{"client certificate from another CA", other, false},
		{"no client certificate", noCert, false},
		{"server certificate not trusted", wrongRoot, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := mqtttest.TryDial(t, b.TLSURL(), mqtttest.WithTLSConfig(tt.cfg), mqtttest.WithTimeout(5*time.Second))
			if !tt.ok {
				if err == nil {
					c.Disconnect()
					t.Fatal("connection accepted, want refused")
				}
				return
			}
			if err != nil {
				t.Fatalf("connection refused: %v", err)
			}
			rec := c.Subscribe("tls")
			c.Publish(t, "tls", 1, false, []byte("secure"))
			assertMessages(t, rec.WaitFor(t, 1, wait), []mqtttest.Message{{Topic: "tls", Payload: []byte("secure"), QoS: 1}})
		})
	}

	// The plain listener is still there.
	mqtttest.Dial(t, b.URL())
}

func TestWebsockets(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.WithWebsockets())
	if !strings.HasPrefix(b.WSURL(), "ws://127.0.0.1:") {
		t.Fatalf("WSURL() = %q", b.WSURL())
	}
	ws := mqtttest.Dial(t, b.WSURL())
	tcp := mqtttest.Dial(t, b.URL())
	wsRec := ws.Subscribe("ws/in")
	tcpRec := tcp.Subscribe("ws/out")

	tcp.Publish(t, "ws/in", 1, false, []byte("to ws"))
	ws.Publish(t, "ws/out", 1, false, []byte("from ws"))
	assertMessages(t, wsRec.WaitFor(t, 1, wait), []mqtttest.Message{{Topic: "ws/in", Payload: []byte("to ws"), QoS: 1}})
	assertMessages(t, tcpRec.WaitFor(t, 1, wait), []mqtttest.Message{{Topic: "ws/out", Payload: []byte("from ws"), QoS: 1}})
}

func TestNewPKIFiles(t *testing.T) {
	t.Parallel()
	p := mqtttest.NewPKI(t)
	for _, f := range []string{p.CAFile, p.ServerCert, p.ServerKey, p.ClientCert, p.ClientKey} {
		if f == "" {
			t.Fatalf("PKI has an empty path: %+v", p)
		}
	}
	cfg := p.ClientTLSConfig(t)
	if len(cfg.Certificates) != 1 || cfg.RootCAs == nil {
		t.Fatalf("ClientTLSConfig: %d certificates, RootCAs %v", len(cfg.Certificates), cfg.RootCAs)
	}
	server, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		if err := server.Leaf.VerifyHostname(host); err != nil {
			t.Errorf("server certificate: %v", err)
		}
	}
}

// fatalTB records a failure and ends the goroutine, as testing.T does, so
// that tests can check that the harness fails a test when it should.
type fatalTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msg    string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fatalTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// run calls fn in its own goroutine, so that a Fatalf ends only fn, and
// reports whether fn failed and with what message.
func (f *fatalTB) run(fn func()) (bool, string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed, f.msg
}

func TestFailures(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t)
	c := mqtttest.Dial(t, b.URL())
	rec := c.Subscribe("f")
	c.Publish(t, "f", 1, false, []byte("only one"))
	rec.WaitFor(t, 1, wait)

	tests := []struct {
		name string
		fn   func(tb testing.TB)
		msg  string
	}{
		{"WaitFor too many", func(tb testing.TB) { rec.WaitFor(tb, 2, 200*time.Millisecond) }, `got 1 messages`},
		{"WaitUntil never", func(tb testing.TB) {
			rec.WaitUntil(tb, func([]mqtttest.Message) bool { return false }, 200*time.Millisecond)
		}, `"only one"`},
		{"bad config line", func(tb testing.TB) { mqtttest.Start(tb, mqtttest.WithConfig("no_such_option 1")) }, "exited"},
		{"TLSURL without WithTLS", func(tb testing.TB) { mqtttest.Start(tb).TLSURL() }, "WithTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fatalTB{TB: t}
			failed, msg := f.run(func() { tt.fn(f) })
			if !failed {
				t.Fatal("did not fail the test")
			}
			if !strings.Contains(msg, tt.msg) {
				t.Fatalf("failure message %q does not contain %q", msg, tt.msg)
			}
		})
	}
}

func publishMany(t *testing.T, c *mqtttest.Client, topic string, n int) {
	t.Helper()
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = c.Paho().Publish(topic, 1, false, fmt.Sprint(i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
}

func assertMessages(t *testing.T, got, want []mqtttest.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n got  %+v\n want %+v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Topic != w.Topic || !bytes.Equal(g.Payload, w.Payload) || g.QoS != w.QoS || g.Retained != w.Retained {
			t.Errorf("message %d = {%s %q qos=%d retained=%t}, want {%s %q qos=%d retained=%t}",
				i, g.Topic, g.Payload, g.QoS, g.Retained, w.Topic, w.Payload, w.QoS, w.Retained)
		}
	}
}
