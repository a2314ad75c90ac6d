package mqttlink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// SessionCounter hands out the numbers of the link's MQTT sessions (§9).
// *store.DB implements it.
type SessionCounter interface {
	// NextSession stores and returns the next number, one above the last.
	NextSession() (uint64, error)
}

var (
	_ Outbox         = (*store.DB)(nil)
	_ SessionCounter = (*store.DB)(nil)
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
	// DefaultReconnectMin and DefaultReconnectMax bound the reconnect
	// backoff (§9): the wait before an attempt is drawn at random from
	// zero up to ReconnectMin doubled once per failed attempt in a row, at
	// most ReconnectMax.
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = time.Minute
	// DefaultConnectTimeout is how long an attempt waits for the broker's
	// CONNACK.
	DefaultConnectTimeout = 30 * time.Second

	// MaxReplies is how many replies wait in memory for the link to come
	// back; beyond it the oldest is let go (the box keeps every reply by
	// command id, so the cloud gets it again by resending the command).
	MaxReplies = 1024
	// StopTimeout bounds how long a planned stop waits for the broker to
	// take the "online":false status.
	StopTimeout = 2 * time.Second

	dialTimeout       = 10 * time.Second
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
	// Brokers are the brokers' tcp://, ssl:// or ws:// URLs. The link
	// connects to the first that answers and moves on to the next one when
	// its broker is lost, or its attempt fails.
	Brokers []string
	// Broker is the one broker's URL, when Brokers is empty.
	Broker      string
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
	// ReconnectMin and ReconnectMax bound the reconnect backoff, full
	// jitter: the wait before attempt k (k failed attempts in a row before
	// it) is drawn uniformly from [0, min(ReconnectMax, ReconnectMin·2^k)).
	// The first connect after Run starts waits up to ReconnectMin too, so a
	// fleet powered on together spreads out, and so does the first after a
	// lost connection. Defaults 1 s and 60 s.
	ReconnectMin, ReconnectMax time.Duration
	// ConnectTimeout is how long an attempt waits for the broker to accept
	// the connection; default 30 s. A broker cluster under a reconnect
	// storm can take seconds per CONNECT, and an attempt given up too early
	// still costs it the session setup, then a takeover by the next one.
	ConnectTimeout time.Duration
	// Rand returns a random number in [0, 1) for the jitter; default
	// math/rand/v2's Float64. Run calls it from one goroutine.
	Rand func() float64
	// Sessions numbers the link's connections, durably; default the
	// Outbox when it is a SessionCounter (as *store.DB is), else a count
	// in memory starting at 1.
	Sessions SessionCounter

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
	Broker     string // the current broker's URL, without a password
	Session    uint64 // the number of the current (or last) session, 0 before the first
	LastAck    uint64 // the highest seq acknowledged
	InFlight   int    // events published and not yet acknowledged
	Published  uint64 // event publishes since start, repeats included
	Reconnects int    // connections made after the first
	Attempts   uint64 // connection attempts started since Run started, the successful ones included
	LastError  string // the last connection failure, "" if none
	Replies    int    // command replies waiting for the link to come back
	Acks       uint64 // valid events/acks taken from the cloud since Run started (acks taken together count once)
}

// Link is the box's MQTT link. Its Run keeps the connection, drains the
// outbox and serves commands; its methods are safe for concurrent use.
type Link struct {
	cfg      Config
	box      Box
	out      Outbox
	sessions SessionCounter
	rand     func() float64
	clock    clockwork.Clock
	log      *slog.Logger
	topics   contract.Topics
	brokers  []brokerURL

	started atomic.Bool
	live    atomic.Bool // paho callbacks act only while Run runs

	connects atomic.Uint64 // OnConnect calls so far
	connSig  chan struct{} // to the main loop: the connection changed
	statSig  chan struct{} // to the main loop: publish the status again
	cmdWake  chan struct{} // to the command worker: connected
	cmds     cmdQueue
	acks     ackInbox
	pubacks  pubackInbox
	bg       sync.WaitGroup // short-lived goroutines of Run
	quit     chan struct{}  // closed when Run's context has ended

	mu          sync.Mutex // guards conn, stats and the failure log throttle
	conn        connection // the current paho client and its broker
	stats       Stats
	lastFail    string
	lastFailLog time.Time

	// Owned by the main loop.
	loop loopState
}

// brokerURL is one broker of Config.Brokers.
type brokerURL struct {
	name    string // redacted, for logs and Stats
	paho    string // what paho dials: no credentials
	overTLS bool   // a TLS scheme
}

// connection is one paho client: the link makes one per connection
// attempt, since the last will, which carries the session number, is fixed
// when a client is made.
type connection struct {
	client  mqtt.Client
	broker  brokerURL
	session uint64
}

var (
	brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}
	tlsSchemes    = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "wss": true}
)

var boxIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseBroker checks one broker URL.
func parseBroker(field, raw string) (brokerURL, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return brokerURL{}, fmt.Errorf("%w: %s: required", ErrInvalidConfig, field)
	case err != nil:
		return brokerURL{}, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, field, err)
	case !brokerSchemes[u.Scheme]:
		return brokerURL{}, fmt.Errorf("%w: %s: scheme %q, want tcp://, ssl:// or ws://", ErrInvalidConfig, field, u.Scheme)
	case u.Host == "":
		return brokerURL{}, fmt.Errorf("%w: %s: no host in %q", ErrInvalidConfig, field, u.Redacted())
	}
	// paho dials the URL as given; credentials belong in Username/Password.
	pu := *u
	pu.User = nil
	return brokerURL{name: u.Redacted(), paho: pu.String(), overTLS: tlsSchemes[u.Scheme]}, nil
}

// New checks cfg, fills in its defaults and returns a link that Run starts.
func New(cfg Config, box Box, out Outbox) (*Link, error) {
	if box == nil || out == nil {
		return nil, fmt.Errorf("%w: a box and an outbox are required", ErrInvalidConfig)
	}
	var brokers []brokerURL
	switch {
	case len(cfg.Brokers) > 0 && cfg.Broker != "":
		return nil, fmt.Errorf("%w: broker: set beside brokers; give one of them", ErrInvalidConfig)
	case len(cfg.Brokers) == 0:
		b, err := parseBroker("broker", cfg.Broker)
		if err != nil {
			return nil, err
		}
		brokers = append(brokers, b)
	default:
		for i, raw := range cfg.Brokers {
			b, err := parseBroker(fmt.Sprintf("brokers[%d]", i), raw)
			if err != nil {
				return nil, err
			}
			brokers = append(brokers, b)
		}
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
	def(&cfg.ReconnectMin, DefaultReconnectMin)
	def(&cfg.ReconnectMax, DefaultReconnectMax)
	def(&cfg.ConnectTimeout, DefaultConnectTimeout)
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("%w: reconnect_max: %v is below the least wait %v", ErrInvalidConfig, cfg.ReconnectMax, cfg.ReconnectMin)
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	sessions := cfg.Sessions
	if sessions == nil {
		if sc, ok := out.(SessionCounter); ok {
			sessions = sc
		} else {
			sessions = &memorySessions{}
		}
	}
	l := &Link{
		cfg:      cfg,
		box:      box,
		out:      out,
		sessions: sessions,
		rand:     cfg.Rand,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		topics:   contract.TopicsFor(cfg.TopicPrefix, cfg.BoxID),
		brokers:  brokers,
		connSig:  make(chan struct{}, 1),
		statSig:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
		cmdWake:  make(chan struct{}, 1),
	}
	l.conn.broker = brokers[0]
	l.cmds.init()
	l.acks.init(box.ReadAck)
	l.pubacks.init()
	l.stats.Broker = brokers[0].name
	return l, nil
}

// memorySessions numbers sessions in memory, for an outbox that cannot.
type memorySessions struct{ n atomic.Uint64 }

func (m *memorySessions) NextSession() (uint64, error) { return m.n.Add(1), nil }

// Stats returns the link's figures now.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	s := l.stats
	c := l.conn
	l.mu.Unlock()
	s.Broker, s.Session = c.broker.name, c.session
	if c.client != nil {
		s.Connected = c.client.IsConnectionOpen()
	}
	return s
}

// StatusChanged publishes the retained status again, while connected (the
// firmware member changed: a trial was committed).
func (l *Link) StatusChanged() { signal(l.statSig) }

// current returns the current connection.
func (l *Link) current() connection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

// open reports whether the current connection is open.
func (l *Link) open() bool {
	c := l.current()
	return c.client != nil && c.client.IsConnectionOpen()
}

// publish publishes on the current connection; the token is not waited on.
func (l *Link) publish(topic string, retained bool, payload []byte) {
	if c := l.current(); c.client != nil {
		c.client.Publish(topic, 1, retained, payload)
	}
}

// Run connects to the broker and serves the link until ctx ends, then
// publishes "online":false (when connected), disconnects and returns nil.
// An unreachable broker is not an error: Run keeps trying.
func (l *Link) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	l.live.Store(true)
	l.log.Info("mqtt link starting", "brokers", len(l.brokers), "broker", l.brokers[0].name, "client_id", l.cfg.ClientID, "ack", l.cfg.Ack)

	var workers sync.WaitGroup
	workers.Add(2)
	go func() {
		defer workers.Done()
		l.serveCommands(ctx)
	}()
	go func() {
		defer workers.Done()
		l.keepConnected(ctx)
	}()

	l.mainLoop(ctx)
	close(l.quit)
	workers.Wait()
	l.stop()
	l.bg.Wait()
	return nil
}

// backoff is the wait before an attempt after failures failed attempts in
// a row: full jitter, uniform in [0, min(max, min·2^failures)).
func backoff(failures int, least, most time.Duration, r float64) time.Duration {
	ceil := most
	if failures < 32 {
		ceil = min(most, least<<failures)
	}
	return time.Duration(r * float64(ceil))
}

// keepConnected makes the connections: it waits a jittered backoff, tries
// the current broker and, when that fails or the connection is later lost,
// moves on to the next one, until ctx ends.
func (l *Link) keepConnected(ctx context.Context) {
	var (
		idx      int
		failures int
		session  uint64 // a number not yet used by a connection made
	)
	wait := backoff(0, l.cfg.ReconnectMin, l.cfg.ReconnectMax, l.rand())
	for {
		if !l.sleep(ctx, wait) {
			return
		}
		if session == 0 {
			n, err := l.sessions.NextSession()
			if err != nil {
				l.log.Error("mqtt session number not stored; not connecting", "err", err)
				failures++
				wait = backoff(failures, l.cfg.ReconnectMin, l.cfg.ReconnectMax, l.rand())
				continue
			}
			session = n
		}
		b := l.brokers[idx]
		lost := make(chan struct{})
		c := mqtt.NewClient(l.pahoOptions(b, session, lost))
		l.mu.Lock()
		l.conn = connection{client: c, broker: b, session: session}
		l.stats.Attempts++
		l.mu.Unlock()
		tok := c.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			tok.WaitTimeout(StopTimeout) // stop disconnects what it made
			return
		}
		if err := tok.Error(); err != nil {
			// The number goes to the next attempt: no connection used it.
			l.connectFailed(err, b)
			failures++
			idx = (idx + 1) % len(l.brokers)
			wait = backoff(failures, l.cfg.ReconnectMin, l.cfg.ReconnectMax, l.rand())
			continue
		}
		session, failures = 0, 0
		select {
		case <-lost:
		case <-ctx.Done():
			return
		}
		idx = (idx + 1) % len(l.brokers)
		wait = backoff(0, l.cfg.ReconnectMin, l.cfg.ReconnectMax, l.rand())
	}
}

// sleep waits d on the link's clock; false when ctx ended first.
func (l *Link) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := l.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// pahoOptions are the paho client options of one connection attempt to b
// with the session number n; lost is closed when the connection is lost.
func (l *Link) pahoOptions(b brokerURL, n uint64, lost chan struct{}) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(b.paho).
		SetClientID(l.cfg.ClientID).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetKeepAlive(l.cfg.KeepAlive).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetDialer(&net.Dialer{Timeout: dialTimeout}).
		SetWriteTimeout(writeTimeout).
		SetConnectRetry(false).
		SetAutoReconnect(false).
		SetStore(newSessionStore(l.topics.Events, l.onPuback)).
		SetBinaryWill(l.topics.Status, l.statusPayload(false, n, nil), 1, true).
		SetDefaultPublishHandler(l.onMessage).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.onConnectionLost(b, err)
			close(lost)
		})
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
	c := l.current()
	if c.client == nil {
		return
	}
	if c.client.IsConnectionOpen() {
		now := l.clock.Now()
		tok := c.client.Publish(l.topics.Status, 1, true, l.statusPayload(false, c.session, &now))
		switch {
		case !tok.WaitTimeout(StopTimeout):
			l.log.Warn("mqtt offline status not confirmed before stopping", "broker", c.broker.name, "waited", StopTimeout)
		case tok.Error() != nil:
			l.log.Warn("mqtt offline status not published", "broker", c.broker.name, "err", tok.Error())
		}
	}
	c.client.Disconnect(disconnectQuiesce)
	l.log.Info("mqtt link stopped", "broker", c.broker.name)
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

func (l *Link) onConnectionLost(b brokerURL, err error) {
	if !l.live.Load() {
		return
	}
	// paho runs this on a goroutine of its own.
	l.log.Warn("mqtt connection lost; reconnecting", "broker", b.name, "err", err)
	l.mu.Lock()
	l.stats.LastError = "connection lost: " + errText(err)
	l.mu.Unlock()
	signal(l.connSig)
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
func (l *Link) connectFailed(err error, b brokerURL) {
	msg, level := describeConnectError(err, b.overTLS)
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
	l.log.Log(context.Background(), level, msg, "broker", b.name, "reason", text, "retry", true)
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
