package mqttlink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

	"smartboxd/contract"
	"smartboxd/store"
)

// Box is what the link needs of the box. *device.Box implements it.
type Box interface {
	// Receive reads, checks and runs one command payload and returns the
	// reply to publish; an error means it did not run (the box is
	// stopping) and nothing is answered. A command id seen before gets the
	// stored reply.
	Receive(ctx context.Context, payload []byte) (contract.Reply, error)
	// ReadAck reads an event ack payload into its seq.
	ReadAck(payload []byte) (uint64, error)
	// State builds the state document.
	State() (contract.State, error)
	// Changed signals (coalesced) that the state document changed.
	Changed() <-chan struct{}
	// Appended signals (coalesced) that events were committed to the outbox.
	Appended() <-chan struct{}
	// OutboxChanged is called after acks removed events, so that the
	// state's outbox figures are published again.
	OutboxChanged()
}

// Outbox is the durable event outbox. *store.DB implements it.
type Outbox interface {
	Pending(after uint64, max int) ([]store.Record, error)
	Ack(upto uint64) (int, error)
	AckSeqs(seqs []uint64) error
	OutboxStats() (store.OutboxStats, error)
}

var (
	_ Outbox = (*store.DB)(nil)
)

// Ack modes of Config.Ack.
const (
	// AckCloud removes an event from the outbox when the cloud acks it on
	// P/events/ack.
	AckCloud = "cloud"
	// AckBroker removes an event from the outbox when the broker PUBACKs it.
	AckBroker = "broker"
)

// Defaults of Config.
const (
	DefaultTopicPrefix   = contract.DefaultTopicPrefix
	DefaultKeepAlive     = 30 * time.Second
	DefaultInFlight      = 512
	DefaultAckTimeout    = 60 * time.Second
	DefaultStateInterval = 200 * time.Millisecond
	DefaultRetryInterval = 10 * time.Second

	// MaxReconnectInterval is the longest wait between two reconnect
	// attempts.
	MaxReconnectInterval = time.Minute
	// MaxReplies is how many replies wait in memory for the link to come
	// back; beyond it the oldest is let go (the box keeps every reply by
	// command id, so the cloud gets it again by resending the command).
	MaxReplies = 1024
	// StopTimeout bounds how long a planned stop waits for the broker to
	// take the "online":false status.
	StopTimeout = 2 * time.Second

	connectTimeout    = 10 * time.Second
	writeTimeout      = 10 * time.Second
	subscribeTimeout  = 10 * time.Second
	disconnectQuiesce = 250 // milliseconds
	// ackBackoffMax caps the doubling of the ack timeout while acks stay away.
	ackBackoffMax = 8
	// pendingBatch is how many outbox records one read returns at most.
	pendingBatch = 128
	// failLogEvery is how often an unchanged connection failure is logged
	// again at its level; repeats in between are logged at debug level.
	failLogEvery = 10 * time.Minute
)

// ErrInvalidConfig is returned by New for a configuration it cannot work
// with; the wrapping error names the field.
var ErrInvalidConfig = errors.New("mqttlink: invalid configuration")

// ErrRunning is returned by Run when the link has already been run.
var ErrRunning = errors.New("mqttlink: the link has already been run")

// Config is what New needs.
type Config struct {
	Broker      string // tcp://, ssl:// or ws:// URL
	TopicPrefix string // default "smartbox"
	BoxID       string // required
	ClientID    string // default BoxID
	Username    string
	Password    string
	// TLS is used for ssl:// brokers (see TLSConfig); nil trusts the
	// system's certificate authorities.
	TLS *tls.Config
	// Ack is AckCloud (default) or AckBroker.
	Ack string
	// KeepAlive is the MQTT keep-alive; default 30 s.
	KeepAlive time.Duration
	// InFlight bounds the events published and not yet acked; default 512.
	InFlight int
	// AckTimeout is how long the link waits, connected, for an ack before
	// it publishes the unacked events again; default 60 s.
	AckTimeout time.Duration
	// StateInterval is the least time between two state publishes; default
	// 200 ms (five a second).
	StateInterval time.Duration
	// RetryInterval is the wait between connection attempts until the
	// first connection succeeds; default 10 s. Reconnects after a loss back
	// off from 1 s up to MaxReconnectInterval.
	RetryInterval time.Duration

	Version string // published in the status
	BootID  string // published in the status
	SealKey string // published in the status: the box's X25519 public key
	// Firmware, when set, gives the firmware member of the status (§11);
	// StatusChanged publishes the status again after it changed.
	Firmware func() contract.Firmware

	Clock  clockwork.Clock // default the real clock
	Logger *slog.Logger    // default discards
}

// Stats describe the link for the console.
type Stats struct {
	Connected  bool
	Broker     string // the broker URL, without a password
	LastAck    uint64 // the highest seq acknowledged
	InFlight   int    // events published and not yet acknowledged
	Published  uint64 // event publishes since start, repeats included
	Reconnects int    // connections made after the first
	LastError  string // the last connection failure, "" if none
	Replies    int    // command replies waiting for the link to come back
	Acks       uint64 // valid events/acks taken from the cloud since Run started (acks taken together count once)
}

// Link is the box's MQTT link. Its Run keeps the connection, drains the
// outbox and serves commands; its methods are safe for concurrent use.
type Link struct {
	cfg        Config
	box        Box
	out        Outbox
	clock      clockwork.Clock
	log        *slog.Logger
	topics     contract.Topics
	broker     string // redacted, for logs and Stats
	pahoBroker string
	overTLS    bool // the broker URL is a TLS one

	started atomic.Bool
	live    atomic.Bool // paho callbacks act only while Run runs
	client  mqtt.Client

	connects atomic.Uint64 // OnConnect calls so far
	connSig  chan struct{} // to the main loop: the connection changed
	statSig  chan struct{} // to the main loop: publish the status again
	cmdWake  chan struct{} // to the command worker: connected
	cmds     cmdQueue
	acks     ackInbox
	pubacks  pubackInbox
	bg       sync.WaitGroup // short-lived goroutines of Run
	quit     chan struct{}  // closed when Run's context has ended

	mu          sync.Mutex // guards client (for Stats), stats and the failure log throttle
	stats       Stats
	lastFail    string
	lastFailLog time.Time

	// Owned by the main loop.
	loop loopState
}

var (
	brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}
	tlsSchemes    = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}
)

var boxIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New checks cfg, fills in its defaults and returns a link that Run starts.
func New(cfg Config, box Box, out Outbox) (*Link, error) {
	if box == nil || out == nil {
		return nil, fmt.Errorf("%w: a box and an outbox are required", ErrInvalidConfig)
	}
	u, err := url.Parse(cfg.Broker)
	switch {
	case cfg.Broker == "":
		return nil, fmt.Errorf("%w: broker: required", ErrInvalidConfig)
	case err != nil:
		return nil, fmt.Errorf("%w: broker: %v", ErrInvalidConfig, err)
	case !brokerSchemes[u.Scheme]:
		return nil, fmt.Errorf("%w: broker: scheme %q, want tcp://, ssl:// or ws://", ErrInvalidConfig, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%w: broker: no host in %q", ErrInvalidConfig, u.Redacted())
	}
	if !boxIDPattern.MatchString(cfg.BoxID) {
		return nil, fmt.Errorf("%w: box_id: %q is not [A-Za-z0-9_-]{1,64}", ErrInvalidConfig, cfg.BoxID)
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = DefaultTopicPrefix
	}
	if strings.ContainsAny(cfg.TopicPrefix, "+#") || strings.HasPrefix(cfg.TopicPrefix, "/") || strings.HasSuffix(cfg.TopicPrefix, "/") {
		return nil, fmt.Errorf("%w: topic_prefix: %q", ErrInvalidConfig, cfg.TopicPrefix)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.BoxID
	}
	switch cfg.Ack {
	case "":
		cfg.Ack = AckCloud
	case AckCloud, AckBroker:
	default:
		return nil, fmt.Errorf("%w: ack: %q, want cloud or broker", ErrInvalidConfig, cfg.Ack)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.KeepAlive, DefaultKeepAlive)
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.StateInterval, DefaultStateInterval)
	def(&cfg.RetryInterval, DefaultRetryInterval)
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{
		cfg:     cfg,
		box:     box,
		out:     out,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		topics:  contract.TopicsFor(cfg.TopicPrefix, cfg.BoxID),
		broker:  u.Redacted(),
		connSig: make(chan struct{}, 1),
		statSig: make(chan struct{}, 1),
		quit:    make(chan struct{}),
		cmdWake: make(chan struct{}, 1),
	}
	// paho dials the URL as given; credentials belong in Username/Password.
	pu := *u
	pu.User = nil
	l.pahoBroker = pu.String()
	l.overTLS = tlsSchemes[u.Scheme]
	l.cmds.init()
	l.acks.init(box.ReadAck)
	l.pubacks.init()
	l.stats.Broker = l.broker
	return l, nil
}

// Stats returns the link's figures now.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	s := l.stats
	l.mu.Unlock()
	if c := l.pahoClient(); c != nil {
		s.Connected = c.IsConnectionOpen()
	}
	return s
}

// StatusChanged publishes the retained status again, while connected (the
// firmware member changed: a trial was committed).
func (l *Link) StatusChanged() { signal(l.statSig) }

// pahoClient returns the paho client once Run has made it, for readers
// other than Run's goroutines.
func (l *Link) pahoClient() mqtt.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// Run connects to the broker and serves the link until ctx ends, then
// publishes "online":false (when connected), disconnects and returns nil.
// An unreachable broker is not an error: Run keeps trying.
func (l *Link) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	l.mu.Lock()
	l.client = mqtt.NewClient(l.pahoOptions())
	l.mu.Unlock()
	l.live.Store(true)
	l.log.Info("mqtt link starting", "broker", l.broker, "client_id", l.cfg.ClientID, "ack", l.cfg.Ack)
	// With ConnectRetry the token completes only once connected; it is
	// not waited on: the box works offline meanwhile.
	l.client.Connect()

	var worker sync.WaitGroup
	worker.Add(1)
	go func() {
		defer worker.Done()
		l.serveCommands(ctx)
	}()

	l.mainLoop(ctx)
	close(l.quit)
	worker.Wait()
	l.stop()
	l.bg.Wait()
	return nil
}

// pahoOptions are the paho client options of the link.
func (l *Link) pahoOptions() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(l.pahoBroker).
		SetClientID(l.cfg.ClientID).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetKeepAlive(l.cfg.KeepAlive).
		SetConnectTimeout(connectTimeout).
		SetDialer(&net.Dialer{Timeout: connectTimeout}).
		SetWriteTimeout(writeTimeout).
		SetConnectRetry(true).
		SetConnectRetryInterval(l.cfg.RetryInterval).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(MaxReconnectInterval).
		SetStore(newSessionStore(l.topics.Events, l.onPuback)).
		SetBinaryWill(l.topics.Status, l.statusPayload(false, nil), 1, true).
		SetDefaultPublishHandler(l.onMessage).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(l.onConnectionLost).
		SetConnectionNotificationHandler(l.onNotification)
	if l.cfg.Username != "" {
		o.SetUsername(l.cfg.Username)
	}
	if l.cfg.Password != "" {
		o.SetPassword(l.cfg.Password)
	}
	if l.cfg.TLS != nil {
		o.SetTLSConfig(l.cfg.TLS)
	}
	return o
}

// stop is the planned-stop sequence: "online":false, then disconnect.
func (l *Link) stop() {
	defer l.live.Store(false)
	if l.client.IsConnectionOpen() {
		now := l.clock.Now()
		tok := l.client.Publish(l.topics.Status, 1, true, l.statusPayload(false, &now))
		switch {
		case !tok.WaitTimeout(StopTimeout):
			l.log.Warn("mqtt offline status not confirmed before stopping", "broker", l.broker, "waited", StopTimeout)
		case tok.Error() != nil:
			l.log.Warn("mqtt offline status not published", "broker", l.broker, "err", tok.Error())
		}
	}
	l.client.Disconnect(disconnectQuiesce)
	l.log.Info("mqtt link stopped", "broker", l.broker)
}

// ---- paho callbacks: they only note what happened and return ----

func (l *Link) onConnect(mqtt.Client) {
	if !l.live.Load() {
		return
	}
	l.connects.Add(1)
	signal(l.connSig)
	signal(l.cmdWake)
}

func (l *Link) onConnectionLost(_ mqtt.Client, err error) {
	if !l.live.Load() {
		return
	}
	// paho runs this on a goroutine of its own.
	l.log.Warn("mqtt connection lost; reconnecting", "broker", l.broker, "err", err)
	l.mu.Lock()
	l.stats.LastError = "connection lost: " + errText(err)
	l.mu.Unlock()
	signal(l.connSig)
}

func (l *Link) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	if !l.live.Load() {
		return
	}
	if f, ok := n.(mqtt.ConnectionNotificationFailed); ok {
		l.connectFailed(f.Reason)
	}
}

// onMessage routes every received message by topic. It never blocks: a
// command is queued and acknowledged once executed, an ack is noted and
// acknowledged at once.
func (l *Link) onMessage(_ mqtt.Client, m mqtt.Message) {
	switch m.Topic() {
	case l.topics.Cmd:
		l.cmds.push(m)
	case l.topics.Ack:
		l.acks.add(m.Payload())
		m.Ack()
	default:
		m.Ack()
	}
}

// onPuback is told by the session store that the broker acknowledged one
// of the link's event publishes.
func (l *Link) onPuback(payload []byte) {
	if l.cfg.Ack == AckBroker {
		l.pubacks.add(payload)
	}
}

// connectFailed logs a failed connection attempt: once per distinct
// reason, then again every failLogEvery, at debug level in between.
func (l *Link) connectFailed(err error) {
	msg, level := describeConnectError(err, l.overTLS)
	text := errText(err)
	now := l.clock.Now()
	l.mu.Lock()
	l.stats.LastError = text
	repeat := text == l.lastFail && now.Sub(l.lastFailLog) < failLogEvery
	if !repeat {
		l.lastFail, l.lastFailLog = text, now
	}
	l.mu.Unlock()
	if repeat {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "broker", l.broker, "reason", text, "retry", true)
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// signal wakes whoever waits on c, without blocking: c has room for one.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
