package mqttlink

import (
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The inboxes below are filled from paho's goroutines and emptied by the
// link's own. Adding never blocks: it takes a mutex held only for a slice
// operation and signals a channel with room for one.

// cmdQueue holds received commands, in arrival order, until the command
// worker executes them. A command is PUBACKed only after it ran, so the
// broker's in-flight window bounds the queue.
type cmdQueue struct {
	mu  sync.Mutex
	q   []mqtt.Message
	sig chan struct{}
}

func (c *cmdQueue) init() { c.sig = make(chan struct{}, 1) }

func (c *cmdQueue) push(m mqtt.Message) {
	c.mu.Lock()
	c.q = append(c.q, m)
	c.mu.Unlock()
	signal(c.sig)
}

func (c *cmdQueue) pop() (mqtt.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) == 0 {
		return nil, false
	}
	m := c.q[0]
	c.q[0] = nil
	c.q = c.q[1:]
	if len(c.q) == 0 {
		c.q = nil
	}
	return m, true
}

// ackInbox keeps the highest event ack received and counts malformed ones.
// Acks are cumulative, so only the highest matters.
type ackInbox struct {
	read func(payload []byte) (uint64, error) // the box's ReadAck

	mu   sync.Mutex
	seq  uint64
	has  bool
	bad  int
	last error
	sig  chan struct{}
}

func (a *ackInbox) init(read func([]byte) (uint64, error)) {
	a.read = read
	a.sig = make(chan struct{}, 1)
}

func (a *ackInbox) add(payload []byte) {
	// A signed ack is verified here, on paho's goroutine: a short
	// computation, no wait.
	seq, err := a.read(payload)
	a.mu.Lock()
	if err != nil {
		a.bad++
		a.last = err
	} else if !a.has || seq > a.seq {
		a.seq, a.has = seq, true
	}
	a.mu.Unlock()
	signal(a.sig)
}

// take returns the highest ack since the last take (ok false if none), and
// how many malformed acks came with the last reason.
func (a *ackInbox) take() (seq uint64, ok bool, bad int, last error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, ok, bad, last = a.seq, a.has, a.bad, a.last
	a.seq, a.has, a.bad, a.last = 0, false, 0, nil
	return seq, ok, bad, last
}

// pubackInbox collects the payloads of event publishes the broker has
// acknowledged, for "broker" ack mode.
type pubackInbox struct {
	mu  sync.Mutex
	q   [][]byte
	sig chan struct{}
}

func (p *pubackInbox) init() { p.sig = make(chan struct{}, 1) }

func (p *pubackInbox) add(payload []byte) {
	p.mu.Lock()
	p.q = append(p.q, payload)
	p.mu.Unlock()
	signal(p.sig)
}

func (p *pubackInbox) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.q
	p.q = nil
	return q
}

// replyQueue holds replies that could not be published while the link was
// down, the newest MaxReplies of them. Only the command worker uses it.
type replyQueue struct {
	q       [][]byte
	dropped int
}

func (r *replyQueue) push(b []byte) {
	if len(r.q) >= MaxReplies {
		r.q = r.q[1:]
		r.dropped++
	}
	r.q = append(r.q, b)
}
