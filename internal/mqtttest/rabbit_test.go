package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// rabbitWait bounds each wait for a message or a dropped connection.
const rabbitWait = 20 * time.Second

// rabbitClient is a bare paho client for the cluster tests: every message
// it receives, subscribed or delivered from its persistent session, goes to
// one channel, and a lost connection to another.
type rabbitClient struct {
	c       mqtt.Client
	msgs    chan mqtt.Message
	lost    chan error
	present bool // the CONNACK's session present flag
}

type rabbitDial struct {
	id    string
	clean bool
	will  string // will topic; the payload is "offline"
}

func dialRabbit(t *testing.T, url string, d rabbitDial) *rabbitClient {
	t.Helper()
	rc, err := tryDialRabbit(url, d)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", url, d.id, err)
	}
	t.Cleanup(func() {
		if rc.c.IsConnectionOpen() {
			rc.c.Disconnect(100)
		}
	})
	return rc
}

func tryDialRabbit(url string, d rabbitDial) (*rabbitClient, error) {
	rc := &rabbitClient{msgs: make(chan mqtt.Message, 1000), lost: make(chan error, 1)}
	if d.id == "" {
		d.id = "rabbit-test-" + randomID()
	}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(d.id).
		SetCleanSession(d.clean).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(5 * time.Second).SetPingTimeout(2 * time.Second).
		SetConnectTimeout(rabbitWait).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { rc.msgs <- m }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { rc.lost <- err })
	if d.will != "" {
		o.SetWill(d.will, "offline", 1, false)
	}
	rc.c = mqtt.NewClient(o)
	tok := rc.c.Connect()
	if !tok.WaitTimeout(rabbitWait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	rc.present = tok.(*mqtt.ConnectToken).SessionPresent()
	return rc, nil
}

func (rc *rabbitClient) subscribe(t *testing.T, filter string) {
	t.Helper()
	if got := rc.trySubscribe(t, filter); got != 1 {
		t.Fatalf("subscribe %q granted QoS %d, want 1", filter, got)
	}
}

// trySubscribe subscribes with QoS 1 and returns the QoS granted.
func (rc *rabbitClient) trySubscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := rc.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(rabbitWait) {
		t.Fatalf("subscribe %q timed out", filter)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("subscribe %q: %v", filter, err)
	}
	// paho keys the result by the filter without a "$share/group/"
	// prefix; there is one entry.
	for _, qos := range tok.(*mqtt.SubscribeToken).Result() {
		return qos
	}
	t.Fatalf("subscribe %q: no result in the SUBACK", filter)
	return 0
}

func (rc *rabbitClient) publish(t *testing.T, topic string, retained bool, payload []byte) {
	t.Helper()
	tok := rc.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(rabbitWait) {
		t.Fatalf("publish to %q timed out", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish to %q: %v", topic, err)
	}
}

// next returns the next message the client received.
func (rc *rabbitClient) next(t *testing.T) mqtt.Message {
	t.Helper()
	select {
	case m := <-rc.msgs:
		return m
	case <-time.After(rabbitWait):
		t.Fatalf("no message within %v", rabbitWait)
		return nil
	}
}

// until returns the messages received before the first one on topic, which
// it consumes.
func (rc *rabbitClient) until(t *testing.T, topic string) []mqtt.Message {
	t.Helper()
	var before []mqtt.Message
	for {
		m := rc.next(t)
		if m.Topic() == topic {
			return before
		}
		before = append(before, m)
	}
}

func describeMessages(msgs []mqtt.Message) string {
	var parts []string
	for _, m := range msgs {
		parts = append(parts, fmt.Sprintf("%s %q retained=%v", m.Topic(), m.Payload(), m.Retained()))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// startTestRabbit starts a three-node cluster for one test and stops it when
// the test ends, printing the nodes' logs if it failed. It skips the test
// when rabbitmq-server cannot be installed here.
func startTestRabbit(t *testing.T) *RabbitCluster {
	t.Helper()
	c, err := StartRabbitCluster(t.TempDir(), 3)
	if errors.Is(err, ErrRabbitUnavailable) {
		t.Skipf("RabbitMQ cluster tests need rabbitmq-server, which cannot be installed here "+
			"(run as root with apt-get, or apt-get install rabbitmq-server): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range 3 {
				t.Logf("%s log:\n%s", c.NodeName(i), lastLines(c.Log(i), 60))
			}
		}
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestRabbitCluster runs one three-node cluster through what the daemon
// relies on from its broker: persistent sessions, client id takeover,
// retained messages, shared subscriptions, large payloads, and the loss of
// a node. The subtests share the cluster and run in order.
func TestRabbitCluster(t *testing.T) {
	c := startTestRabbit(t)
	urls := c.URLs()
	if len(urls) != 3 {
		t.Fatalf("URLs() = %v, want 3", urls)
	}
	for i, u := range urls {
		if !strings.HasPrefix(u, "tcp://127.0.0.1:") {
			t.Fatalf("URLs()[%d] = %q, want tcp://127.0.0.1:PORT", i, u)
		}
	}
	if out, err := c.Ctl(0, "-q", "cluster_status"); err != nil {
		t.Fatal(err)
	} else {
		for i := range 3 {
			if !strings.Contains(out, c.NodeName(i)) {
				t.Fatalf("cluster_status does not list %s:\n%s", c.NodeName(i), out)
			}
		}
	}

	t.Run("persistent session moves to another node", func(t *testing.T) {
		const id, topic = "rabbit-session", "rabbit/session"
		sub := dialRabbit(t, urls[0], rabbitDial{id: id})
		sub.subscribe(t, topic)
		sub.c.Disconnect(250)

		queues, err := c.Ctl(0, "-q", "list_queues", "name", "type", "durable", "pid", "slave_pids")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("queues after the subscriber left:\n%s", queues)
		if !strings.Contains(queues, "mqtt-subscription-"+id+"qos1") {
			t.Fatalf("no session queue mqtt-subscription-%sqos1:\n%s", id, queues)
		}

		pub := dialRabbit(t, urls[1], rabbitDial{clean: true})
		for i := range 5 {
			pub.publish(t, topic, false, []byte("m"+strconv.Itoa(i)))
		}

		back := dialRabbit(t, urls[2], rabbitDial{id: id})
		t.Logf("session present on node 3: %v", back.present)
		if !back.present {
			t.Errorf("CONNACK session present = false on node 3, want true")
		}
		for i := range 5 {
			m := back.next(t)
			if m.Topic() != topic || string(m.Payload()) != "m"+strconv.Itoa(i) {
				t.Fatalf("message %d = %s %q, want %s m%d", i, m.Topic(), m.Payload(), topic, i)
			}
		}
	})

	t.Run("same client id on another node closes the first", func(t *testing.T) {
		const id = "rabbit-takeover"
		first := dialRabbit(t, urls[0], rabbitDial{id: id, clean: true})
		second := dialRabbit(t, urls[1], rabbitDial{id: id, clean: true})
		select {
		case err := <-first.lost:
			t.Logf("first connection, on node 1, lost: %v", err)
		case <-time.After(rabbitWait):
			t.Fatalf("first connection still open %v after the second connected", rabbitWait)
		}
		if !second.c.IsConnectionOpen() {
			t.Fatal("second connection closed too")
		}
	})

	t.Run("retained messages stay on their node", func(t *testing.T) {
		const topic, marker = "rabbit/retained", "rabbit/retained-marker"
		pub0 := dialRabbit(t, urls[0], rabbitDial{clean: true})
		pub0.publish(t, topic, true, []byte("r1"))

		same := dialRabbit(t, urls[0], rabbitDial{clean: true})
		same.subscribe(t, topic)
		m := same.next(t)
		if m.Topic() != topic || string(m.Payload()) != "r1" || !m.Retained() {
			t.Fatalf("on node 1 got %s %q retained=%v, want the retained r1", m.Topic(), m.Payload(), m.Retained())
		}

		// A subscriber on node 2 gets node 2's retained messages as it
		// subscribes, so anything retained would arrive before a message
		// published after the SUBACK.
		other := dialRabbit(t, urls[1], rabbitDial{clean: true})
		other.subscribe(t, topic)
		other.subscribe(t, marker)
		pub1 := dialRabbit(t, urls[1], rabbitDial{clean: true})
		pub1.publish(t, marker, false, []byte("m"))
		if before := other.until(t, marker); len(before) != 0 {
			t.Fatalf("node 2 delivered %s before the marker; retained messages were thought node-local", describeMessages(before))
		}
	})

	t.Run("shared subscriptions are plain topic filters", func(t *testing.T) {
		const group, topic, marker = "$share/g/rabbit/shared", "rabbit/shared", "rabbit/shared-marker"
		subs := []*rabbitClient{
			dialRabbit(t, urls[0], rabbitDial{clean: true}),
			dialRabbit(t, urls[1], rabbitDial{clean: true}),
		}
		for _, s := range subs {
			s.subscribe(t, group)
			s.subscribe(t, marker)
		}
		pub := dialRabbit(t, urls[2], rabbitDial{clean: true})
		for i := range 4 {
			pub.publish(t, topic, false, []byte("s"+strconv.Itoa(i)))
		}
		pub.publish(t, group, false, []byte("literal"))
		pub.publish(t, marker, false, []byte("m"))
		for i, s := range subs {
			got := s.until(t, marker)
			t.Logf("subscriber %d got %s", i, describeMessages(got))
			if len(got) != 1 || got[0].Topic() != group || string(got[0].Payload()) != "literal" {
				t.Fatalf("subscriber %d got %s, want only the message published to the literal topic %q",
					i, describeMessages(got), group)
			}
		}
	})

	t.Run("256 KiB payload crosses nodes", func(t *testing.T) {
		const topic = "rabbit/large"
		payload := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16)
		sub := dialRabbit(t, urls[2], rabbitDial{clean: true})
		sub.subscribe(t, topic)
		pub := dialRabbit(t, urls[0], rabbitDial{clean: true})
		pub.publish(t, topic, false, payload)
		if m := sub.next(t); !bytes.Equal(m.Payload(), payload) {
			t.Fatalf("got %d bytes on %s, want the %d bytes sent", len(m.Payload()), m.Topic(), len(payload))
		}
	})

	t.Run("node loss", func(t *testing.T) {
		const id, topic, willTopic, marker = "rabbit-failover", "rabbit/failover", "rabbit/will/box", "rabbit/will/marker"
		watcher := dialRabbit(t, urls[0], rabbitDial{clean: true})
		watcher.subscribe(t, "rabbit/will/#")

		box := dialRabbit(t, urls[1], rabbitDial{id: id, will: willTopic})
		box.subscribe(t, topic)
		if err := c.Kill(1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-box.lost:
			t.Logf("client on the killed node lost its connection: %v", err)
		case <-time.After(rabbitWait):
			t.Fatalf("client on the killed node still connected %v later", rabbitWait)
		}

		// The will belongs to the connection's process on the dead node:
		// nobody publishes it.
		pub := dialRabbit(t, urls[2], rabbitDial{clean: true})
		pub.publish(t, marker, false, []byte("m"))
		if before := watcher.until(t, marker); len(before) != 0 {
			t.Fatalf("got %s before the marker; the will of a client on a killed node was thought lost", describeMessages(before))
		}

		// The session's queue was mirrored: it lives on and takes messages.
		for i := range 3 {
			pub.publish(t, topic, false, []byte("f"+strconv.Itoa(i)))
		}
		back := dialRabbit(t, urls[0], rabbitDial{id: id})
		t.Logf("session present on node 1 after node 2 died: %v", back.present)
		for i := range 3 {
			m := back.next(t)
			if m.Topic() != topic || string(m.Payload()) != "f"+strconv.Itoa(i) {
				t.Fatalf("message %d = %s %q, want %s f%d", i, m.Topic(), m.Payload(), topic, i)
			}
		}

		if err := c.Start(1); err != nil {
			t.Fatal(err)
		}
		again := dialRabbit(t, urls[1], rabbitDial{clean: true})
		again.subscribe(t, topic+"/again")
		pub.publish(t, topic+"/again", false, []byte("a"))
		if m := again.next(t); string(m.Payload()) != "a" {
			t.Fatalf("after restart node 2 delivered %q, want a", m.Payload())
		}
	})

	t.Run("stop leaves no process and no port", func(t *testing.T) {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		if pids := processesWithEnv("SMARTBOX_RABBIT_DIR=" + c.Dir()); len(pids) != 0 {
			t.Fatalf("processes of the cluster left after Stop: %v", pids)
		}
		for _, u := range urls {
			addr := strings.TrimPrefix(u, "tcp://")
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Fatalf("%s still accepts connections after Stop", addr)
			}
		}
	})
}

// processesWithEnv lists the pids of processes whose environment holds the
// entry kv.
func processesWithEnv(kv string) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(data, []byte{0}) {
			if string(v) == kv {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func TestRabbitClusterBadNode(t *testing.T) {
	c := &RabbitCluster{names: []string{"rabbit-1@localhost"}, mqtt: []int{1883}}
	tests := []struct {
		name string
		call func() error
	}{
		{"Kill(-1)", func() error { return c.Kill(-1) }},
		{"Kill(1)", func() error { return c.Kill(1) }},
		{"Start(1)", func() error { return c.Start(1) }},
		{"Ctl(5)", func() error { _, err := c.Ctl(5, "status"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrNoRabbitNode) {
				t.Fatalf("got %v, want ErrNoRabbitNode", err)
			}
		})
	}
	if _, err := StartRabbitCluster(t.TempDir(), 0); err == nil {
		t.Fatal("StartRabbitCluster with 0 nodes succeeded")
	}
}

// TestInstallRabbitmqQuietWhenInstalled checks that .ci/install-rabbitmq.sh,
// which StartRabbitCluster runs every time, says nothing once the server is
// there.
func TestInstallRabbitmqQuietWhenInstalled(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, ".ci", "install-rabbitmq.sh")
	if out, err := runScript(script); err != nil {
		t.Skipf("rabbitmq-server cannot be installed here: %v\n%s", err, out)
	}
	out, err := runScript(script)
	if err != nil {
		t.Fatalf("install-rabbitmq.sh: %v\n%s", err, out)
	}
	if out != "" {
		t.Fatalf("install-rabbitmq.sh printed %q with rabbitmq-server installed, want nothing", out)
	}
}
