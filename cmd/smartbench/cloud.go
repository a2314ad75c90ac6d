package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"smartboxd/internal/mqtttest"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The cloud side of the MQTT benchmarks: a subscriber that stores events
// (it counts them) and acks them as a cloud does, cumulatively.

const (
	// ackEvery is how many events the cloud stores before it acks them.
	ackEvery = 256
	// ackIdle is how long the cloud waits, once events stop coming, before
	// it acks what it has: the end of a burst.
	ackIdle = 5 * time.Millisecond

	mqttTimeout = 10 * time.Second
)

// dial connects a paho client with a clean session.
func dial(url, clientID string) (mqtt.Client, error) {
	c, err := mqtttest.Connect(url, mqtttest.WithClientID(clientID), mqtttest.WithTimeout(mqttTimeout),
		mqtttest.WithPahoOptions(func(o *mqtt.ClientOptions) { o.SetAutoReconnect(false) }))
	if err != nil {
		return nil, err
	}
	return c.Paho(), nil
}

func wait(tok mqtt.Token, what string) error {
	if !tok.WaitTimeout(mqttTimeout) {
		return fmt.Errorf("mqtt %s: no answer within %v", what, mqttTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt %s: %w", what, err)
	}
	return nil
}

// cloud receives the events of seqs first..last on topic P/events and acks
// them on P/events/ack: every ackEvery events, and when the stream pauses
// for ackIdle. Duplicates (republished events) are counted once; events
// after last are counted and not acked.
type cloud struct {
	client      mqtt.Client
	ackTopic    string
	first, last uint64

	mu       sync.Mutex
	got      []bool // by seq - first
	contig   uint64 // every seq from first to contig has arrived
	acked    uint64 // the last ack sent
	lastMsg  time.Time
	received int
	dups     int
	later    int
	badSeq   error

	wake   chan struct{}
	done   chan struct{}
	doneAt time.Time
}

// newCloud subscribes to prefix/box/events and starts acking.
func newCloud(ctx context.Context, url, prefix string, first, last uint64) (*cloud, error) {
	c := &cloud{
		ackTopic: prefix + "/" + benchBoxID + "/events/ack",
		first:    first, last: last,
		got:    make([]bool, last-first+1),
		contig: first - 1, acked: first - 1,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	client, err := dial(url, "bench-cloud-"+prefix)
	if err != nil {
		return nil, err
	}
	c.client = client
	if err := wait(client.Subscribe(prefix+"/"+benchBoxID+"/events", 1, c.onEvent), "subscribe"); err != nil {
		client.Disconnect(0)
		return nil, err
	}
	go c.acker(ctx)
	return c, nil
}

// onEvent runs on paho's goroutine: it notes the event and wakes the acker
// when an ack is due or a burst starts; it never publishes.
func (c *cloud) onEvent(_ mqtt.Client, m mqtt.Message) {
	var ev struct {
		Seq uint64 `json:"seq"`
	}
	err := json.Unmarshal(m.Payload(), &ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || ev.Seq < c.first {
		if c.badSeq == nil {
			c.badSeq = fmt.Errorf("cloud: event outside %d..%d: %.80s", c.first, c.last, m.Payload())
		}
		return
	}
	c.lastMsg = time.Now()
	if ev.Seq > c.last {
		// Written after the benchmark read the outbox: not waited for.
		c.later++
		return
	}
	if c.got[ev.Seq-c.first] {
		c.dups++
		return
	}
	c.got[ev.Seq-c.first] = true
	c.received++
	burstStart := c.contig == c.acked
	for c.contig < c.last && c.got[c.contig+1-c.first] {
		c.contig++
	}
	if burstStart || c.contig-c.acked >= ackEvery || c.contig == c.last {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// acker publishes the acks. It closes done once the last event is acked.
func (c *cloud) acker(ctx context.Context) {
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-idle.C:
		}
		c.mu.Lock()
		contig := c.contig
		quiet := time.Since(c.lastMsg)
		due := contig > c.acked && (contig-c.acked >= ackEvery || quiet >= ackIdle || contig == c.last)
		if due {
			c.acked = contig
		}
		pending := c.contig > c.acked
		c.mu.Unlock()
		if due {
			payload, _ := json.Marshal(map[string]uint64{"seq": contig})
			c.client.Publish(c.ackTopic, 1, false, payload)
			if contig == c.last {
				c.doneAt = time.Now()
				close(c.done)
				return
			}
		}
		if pending {
			idle.Reset(max(ackIdle-quiet, 100*time.Microsecond))
		}
	}
}

// stallTimeout is how long the cloud waits without a new event before it
// gives up: far longer than the drain ever pauses, shorter than the link's
// ack timeout, after which it would publish what a broker dropped again.
const stallTimeout = 20 * time.Second

// waitDone waits until every event is acked, and returns when that was. It
// fails once no new event has come for stallTimeout.
func (c *cloud) waitDone(ctx context.Context) (time.Time, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := -1, time.Now()
	for {
		select {
		case <-c.done:
			return c.doneAt, nil
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
		c.mu.Lock()
		n := c.received
		if n != last {
			last, lastAt = n, time.Now()
		}
		stalled := time.Since(lastAt) > stallTimeout
		if stalled {
			defer c.mu.Unlock()
			return time.Time{}, fmt.Errorf("%w: %d of %d events, none for %v (contiguous to %d, acked %d)%s",
				errStalled, c.received, len(c.got), stallTimeout, c.contig, c.acked, errSuffix(c.badSeq))
		}
		c.mu.Unlock()
	}
}

// errStalled is returned by waitDone when events stopped coming.
var errStalled = errors.New("cloud: the events stopped coming")

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; " + err.Error()
}

func (c *cloud) stats() (received, dups int, bad error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received, c.dups, c.badSeq
}

func (c *cloud) close() { c.client.Disconnect(50) }

// statusWatcher waits for a retained "online":true on P/status.
type statusWatcher struct {
	client mqtt.Client
	online chan time.Time
	once   sync.Once
}

func watchStatus(url, prefix string) (*statusWatcher, error) {
	w := &statusWatcher{online: make(chan time.Time, 1)}
	client, err := dial(url, "bench-status-"+prefix)
	if err != nil {
		return nil, err
	}
	w.client = client
	err = wait(client.Subscribe(prefix+"/"+benchBoxID+"/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		at := time.Now()
		var st struct {
			Online bool `json:"online"`
		}
		if json.Unmarshal(m.Payload(), &st) == nil && st.Online {
			w.once.Do(func() { w.online <- at })
		}
	}), "subscribe")
	if err != nil {
		client.Disconnect(0)
		return nil, err
	}
	return w, nil
}

func (w *statusWatcher) wait(timeout time.Duration, exited <-chan struct{}) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case at := <-w.online:
		return at, nil
	case <-exited:
		return time.Time{}, errors.New("the daemon exited before it was online")
	case <-t.C:
		return time.Time{}, fmt.Errorf("no online status within %v", timeout)
	}
}

func (w *statusWatcher) close() { w.client.Disconnect(50) }
