package mqtttest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// defaultTimeout bounds each connect, subscribe and publish of a Client.
const defaultTimeout = 10 * time.Second

// ClientOption configures a Client made by Dial or TryDial.
type ClientOption func(*clientConfig)

type clientConfig struct {
	clientID string
	clean    bool
	tls      *tls.Config
	timeout  time.Duration
	paho     []func(*mqtt.ClientOptions)
}

// WithClientID sets the MQTT client id; the default is a random one.
func WithClientID(id string) ClientOption {
	return func(c *clientConfig) { c.clientID = id }
}

// WithCleanSession sets the clean session flag; the default is true. With
// false and a fixed client id the broker keeps the client's subscriptions
// and queues its QoS 1 messages while it is away.
func WithCleanSession(clean bool) ClientOption {
	return func(c *clientConfig) { c.clean = clean }
}

// WithTLSConfig sets the TLS configuration for ssl:// addresses.
func WithTLSConfig(cfg *tls.Config) ClientOption {
	return func(c *clientConfig) { c.tls = cfg }
}

// WithTimeout bounds each connect, subscribe and publish; the default is
// ten seconds.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.timeout = d }
}

// WithPahoOptions adjusts the paho options after the harness has set its
// own, for what the other options do not cover (a will, credentials).
func WithPahoOptions(f func(*mqtt.ClientOptions)) ClientOption {
	return func(c *clientConfig) { c.paho = append(c.paho, f) }
}

// Message is one message a Recorder received.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
}

// Client is an MQTT client for tests. It reconnects on its own after the
// broker restarts. Every message it receives goes to the Recorder whose
// topic filter matches; messages that arrive before any Recorder matches
// (a persistent session's queue, delivered right after connecting) are held
// and handed to the first Recorder made for a matching filter.
type Client struct {
	t       testing.TB
	c       mqtt.Client
	timeout time.Duration
	clean   bool

	mu         sync.Mutex
	recs       []*Recorder // in the order they were made
	pending    []Message   // received before a Recorder matched
	disconnect sync.Once
}

// Dial connects to url (tcp://, ssl:// or ws://) and disconnects when the
// test ends. It fails the test if the connection is not accepted.
func Dial(t testing.TB, url string, opts ...ClientOption) *Client {
	t.Helper()
	c, err := TryDial(t, url, opts...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return c
}

// TryDial is Dial that returns the connection error instead of failing the
// test, for tests that expect a broker to refuse a client.
func TryDial(t testing.TB, url string, opts ...ClientOption) (*Client, error) {
	t.Helper()
	c, err := connect(url, opts)
	if err != nil {
		return nil, err
	}
	c.t = t
	t.Cleanup(c.Disconnect)
	return c, nil
}

// Connect connects to url for a program; the caller disconnects. The
// Client's test helpers (Subscribe, Publish, Recorder waits) need a test:
// a program uses Paho.
func Connect(url string, opts ...ClientOption) (*Client, error) {
	return connect(url, opts)
}

func connect(url string, opts []ClientOption) (*Client, error) {
	cfg := clientConfig{clean: true, timeout: defaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clientID == "" {
		cfg.clientID = randomID()
	}
	c := &Client{timeout: cfg.timeout, clean: cfg.clean}

	po := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(cfg.clientID).
		SetCleanSession(cfg.clean).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectTimeout(cfg.timeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(c.onUnrouted).
		SetOnConnectHandler(c.onConnect)
	if cfg.tls != nil {
		po.SetTLSConfig(cfg.tls)
	}
	for _, f := range cfg.paho {
		f(po)
	}
	c.c = mqtt.NewClient(po)
	tok := c.c.Connect()
	if !tok.WaitTimeout(cfg.timeout) {
		c.Disconnect()
		return nil, fmt.Errorf("mqtttest: connect to %s: no answer within %v", url, cfg.timeout)
	}
	if err := tok.Error(); err != nil {
		c.Disconnect()
		return nil, fmt.Errorf("mqtttest: connect to %s: %w", url, err)
	}
	return c, nil
}

// Paho returns the underlying paho client.
func (c *Client) Paho() mqtt.Client { return c.c }

// Connected reports whether the client is connected now.
func (c *Client) Connected() bool { return c.c.IsConnectionOpen() }

// Disconnect disconnects the client and stops its reconnecting. It is safe
// to call more than once.
func (c *Client) Disconnect() {
	c.disconnect.Do(func() { c.c.Disconnect(250) })
}

// Subscribe subscribes to a topic filter at QoS 1 and returns the Recorder
// of the messages it receives. It fails the test if the broker refuses.
// Filters of one client should not overlap: a message is recorded by the
// first Recorder that matches it.
func (c *Client) Subscribe(filter string) *Recorder {
	c.t.Helper()
	r := c.Record(filter)
	tok := c.c.Subscribe(filter, 1, r.onMessage)
	if !tok.WaitTimeout(c.timeout) {
		c.t.Fatalf("mqtttest: subscribe %q: no answer within %v", filter, c.timeout)
	}
	if err := tok.Error(); err != nil {
		c.t.Fatalf("mqtttest: subscribe %q: %v", filter, err)
	}
	if granted := tok.(*mqtt.SubscribeToken).Result()[filter]; granted > 2 {
		c.t.Fatalf("mqtttest: subscribe %q: refused by the broker (%#x)", filter, granted)
	}
	r.mu.Lock()
	r.subscribed = true
	r.mu.Unlock()
	return r
}

// Record returns a Recorder for a topic filter without subscribing, for a
// persistent session whose subscription the broker already holds. It first
// receives the held messages that match the filter.
func (c *Client) Record(filter string) *Recorder {
	r := newRecorder(filter)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.pending[:0]
	for _, m := range c.pending {
		if topicMatches(filter, m.Topic) {
			r.add(m)
		} else {
			kept = append(kept, m)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	c.recs = append(c.recs, r)
	return r
}

// Publish publishes a message and waits until the broker has taken it
// (PUBACK at QoS 1), failing the test on error or timeout.
func (c *Client) Publish(t testing.TB, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	tok := c.c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(c.timeout) {
		t.Fatalf("mqtttest: publish to %q: no answer within %v", topic, c.timeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("mqtttest: publish to %q: %v", topic, err)
	}
}

// onUnrouted receives messages that match no paho subscription route: those
// of Recorders made with Record, and those no Recorder wants yet.
func (c *Client) onUnrouted(_ mqtt.Client, pm mqtt.Message) {
	m := toMessage(pm)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if topicMatches(r.filter, m.Topic) {
			r.add(m)
			return
		}
	}
	c.pending = append(c.pending, m)
}

// onConnect renews the subscriptions after a reconnect with a clean
// session, which the broker forgot. It runs in its own goroutine so that
// paho's callback never waits.
func (c *Client) onConnect(mc mqtt.Client) {
	if !c.clean {
		return
	}
	c.mu.Lock()
	var resub []*Recorder
	for _, r := range c.recs {
		r.mu.Lock()
		if r.subscribed {
			resub = append(resub, r)
		}
		r.mu.Unlock()
	}
	c.mu.Unlock()
	if len(resub) == 0 {
		return
	}
	go func() {
		for _, r := range resub {
			mc.Subscribe(r.filter, 1, r.onMessage)
		}
	}()
}

func toMessage(pm mqtt.Message) Message {
	return Message{
		Topic:    pm.Topic(),
		Payload:  append([]byte(nil), pm.Payload()...),
		QoS:      pm.Qos(),
		Retained: pm.Retained(),
	}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "mqtttest-" + hex.EncodeToString(b[:])
}

// Recorder keeps every message received for one topic filter, in the
// order of arrival. It never blocks the MQTT client's callback.
type Recorder struct {
	filter string

	mu         sync.Mutex
	msgs       []Message
	changed    chan struct{} // closed and replaced on every add
	subscribed bool
}

func newRecorder(filter string) *Recorder {
	return &Recorder{filter: filter, changed: make(chan struct{})}
}

// Filter returns the topic filter the Recorder records.
func (r *Recorder) Filter() string { return r.filter }

func (r *Recorder) onMessage(_ mqtt.Client, pm mqtt.Message) { r.add(toMessage(pm)) }

func (r *Recorder) add(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// snapshot returns the messages so far, capped so that appends never write
// into it, and the channel closed by the next add.
func (r *Recorder) snapshot() ([]Message, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[:len(r.msgs):len(r.msgs)], r.changed
}

// Messages returns a copy of every message recorded so far.
func (r *Recorder) Messages() []Message {
	msgs, _ := r.snapshot()
	return append([]Message(nil), msgs...)
}

// Len returns how many messages have been recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// WaitFor waits until at least n messages have been recorded and returns a
// copy of all of them (possibly more than n). It fails the test, listing
// what did arrive, when fewer than n arrive within timeout.
func (r *Recorder) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	msgs, ok := r.wait(func(m []Message) bool { return len(m) >= n }, timeout)
	if !ok {
		t.Fatalf("mqtttest: %q: got %d messages within %v, want %d%s", r.filter, len(msgs), timeout, n, describe(msgs))
	}
	return append([]Message(nil), msgs...)
}

// WaitUntil waits until pred holds for the messages recorded so far and
// returns a copy of them. pred is called again after each new message; it
// must not keep or change the slice. It fails the test, listing what did
// arrive, when pred does not hold within timeout.
func (r *Recorder) WaitUntil(t testing.TB, pred func([]Message) bool, timeout time.Duration) []Message {
	t.Helper()
	msgs, ok := r.wait(pred, timeout)
	if !ok {
		t.Fatalf("mqtttest: %q: condition not met within %v with %d messages%s", r.filter, timeout, len(msgs), describe(msgs))
	}
	return append([]Message(nil), msgs...)
}

func (r *Recorder) wait(pred func([]Message) bool, timeout time.Duration) ([]Message, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		msgs, changed := r.snapshot()
		if pred(msgs) {
			return msgs, true
		}
		select {
		case <-changed:
		case <-timer.C:
			msgs, _ = r.snapshot()
			return msgs, pred(msgs)
		}
	}
}

// describe lists up to the last ten messages for a failure message.
func describe(msgs []Message) string {
	if len(msgs) == 0 {
		return ""
	}
	var sb strings.Builder
	start := max(0, len(msgs)-10)
	if start > 0 {
		fmt.Fprintf(&sb, "\n  ... %d earlier", start)
	}
	for i, m := range msgs[start:] {
		p := m.Payload
		suffix := ""
		if len(p) > 200 {
			p, suffix = p[:200], fmt.Sprintf("... (%d bytes)", len(m.Payload))
		}
		fmt.Fprintf(&sb, "\n  #%d %s qos=%d retained=%t: %q%s", start+i+1, m.Topic, m.QoS, m.Retained, p, suffix)
	}
	return sb.String()
}

// topicMatches reports whether an MQTT topic filter, with its + and #
// wildcards, matches a topic name. As MQTT says, wildcards at the start of
// a filter do not match topics that begin with $.
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return i == len(fl)-1
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}
