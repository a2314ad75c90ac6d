package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"smartboxd/contract"
	"smartboxd/trust"
)

// cloudKid is the name the boxes know the cloud's key by.
const cloudKid = "cloud"

const (
	prefix      = contract.DefaultTopicPrefix
	mqttTimeout = 30 * time.Second
	// ackInterval is how often the cloud acks what each box delivered.
	ackInterval = 250 * time.Millisecond
)

// cloud is the fleet's cloud side: it receives every box's events (through
// a shared subscription where the broker has one), checks each stream (no
// gap, no loss, duplicates counted), acks them signed, watches the
// statuses and sends signed commands.
type cloud struct {
	priv    ed25519.PrivateKey
	subs    []mqtt.Client // event subscribers, one group
	ctl     mqtt.Client   // statuses, replies; publishes commands and acks
	stopAck chan struct{}
	ackDone chan struct{}

	mu       sync.Mutex
	boxes    map[string]*boxView
	badEvent int // event payloads that were not events
	acksSent int
}

// boxView is what the cloud knows of one box.
type boxView struct {
	contig   uint64          // every seq up to contig has arrived
	beyond   map[uint64]bool // seqs above contig+1 that arrived
	received int             // event messages, duplicates included
	dups     int
	acked    uint64 // the last ack sent
	counter  uint64 // the last command counter signed for this box
	online   bool
	session  uint64 // of the latest "online":true
	stale    int    // wills older than the latest online session
	replies  map[string]chan contract.Reply
}

// cloudOptions say how the cloud connects.
type cloudOptions struct {
	url         string   // the broker (node) the cloud uses
	shared      bool     // the broker has shared subscriptions
	subscribers int      // event subscribers: the shared group, or each a slice of boxes
	boxes       []string // the box ids, for subscribers without shared subscriptions
	tag         string   // makes the client ids unique per run
}

func dialCloud(url, id string, onConnect func(mqtt.Client)) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).
		SetCleanSession(false).SetProtocolVersion(4).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetConnectRetry(false).
		SetKeepAlive(10 * time.Second).SetConnectTimeout(mqttTimeout).SetOrderMatters(true).
		SetOnConnectHandler(onConnect)
	c := mqtt.NewClient(o)
	if err := waitToken(c.Connect(), "connect "+id); err != nil {
		return nil, err
	}
	return c, nil
}

func waitToken(tok mqtt.Token, what string) error {
	if !tok.WaitTimeout(mqttTimeout) {
		return fmt.Errorf("mqtt %s: no answer within %v", what, mqttTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt %s: %w", what, err)
	}
	return nil
}

// newCloud connects the cloud and subscribes it.
func newCloud(o cloudOptions) (*cloud, error) {
	_, priv, err := trust.Keygen()
	if err != nil {
		return nil, err
	}
	c := &cloud{priv: priv, boxes: map[string]*boxView{}, stopAck: make(chan struct{}), ackDone: make(chan struct{})}
	// With shared subscriptions the broker spreads the events over the
	// group; without, each subscriber takes a slice of the fleet by
	// subscribing to its boxes' topics one by one.
	n := max(o.subscribers, 1)
	for i := range n {
		filters := map[string]byte{}
		switch {
		case o.shared:
			filters["$share/cloud/"+prefix+"/+/events"] = 1
		default:
			for k := i; k < len(o.boxes); k += n {
				filters[prefix+"/"+o.boxes[k]+"/events"] = 1
			}
		}
		sub, err := dialCloud(o.url, fmt.Sprintf("cloud-%s-events-%d", o.tag, i), func(mc mqtt.Client) {
			mc.SubscribeMultiple(filters, c.onEvent) // renewed on every connect; checked below the first time
		})
		if err != nil {
			c.close()
			return nil, err
		}
		c.subs = append(c.subs, sub)
		if err := waitToken(sub.SubscribeMultiple(filters, c.onEvent), "subscribe to events"); err != nil {
			c.close()
			return nil, err
		}
	}
	filters := map[string]byte{prefix + "/+/status": 1, prefix + "/+/cmd/reply": 1}
	c.ctl, err = dialCloud(o.url, "cloud-"+o.tag+"-ctl", func(mc mqtt.Client) { mc.SubscribeMultiple(filters, c.onControl) })
	if err != nil {
		c.close()
		return nil, err
	}
	if err := waitToken(c.ctl.SubscribeMultiple(filters, c.onControl), "subscribe status"); err != nil {
		c.close()
		return nil, err
	}
	go c.ackLoop()
	return c, nil
}

func (c *cloud) close() {
	select {
	case <-c.stopAck:
	default:
		if c.ctl != nil {
			close(c.stopAck)
			<-c.ackDone
		}
	}
	for _, s := range c.subs {
		s.Disconnect(100)
	}
	if c.ctl != nil {
		c.ctl.Disconnect(100)
	}
}

// view returns the view of box id; c.mu must be held.
func (c *cloud) view(id string) *boxView {
	v := c.boxes[id]
	if v == nil {
		v = &boxView{beyond: map[uint64]bool{}, replies: map[string]chan contract.Reply{}}
		c.boxes[id] = v
	}
	return v
}

// boxOf reads the box id out of a topic smartbox/<id>/...
func boxOf(topic string) string {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// onEvent checks one event against its box's stream. It runs on paho's
// goroutine and only updates counters.
func (c *cloud) onEvent(_ mqtt.Client, m mqtt.Message) {
	var e struct {
		BoxID string `json:"box_id"`
		Seq   uint64 `json:"seq"`
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if json.Unmarshal(m.Payload(), &e) != nil || e.Seq == 0 || e.BoxID != boxOf(m.Topic()) {
		c.badEvent++
		return
	}
	v := c.view(e.BoxID)
	v.received++
	switch {
	case e.Seq <= v.contig || v.beyond[e.Seq]:
		v.dups++
	case e.Seq == v.contig+1:
		v.contig++
		for v.beyond[v.contig+1] {
			delete(v.beyond, v.contig+1)
			v.contig++
		}
	default:
		v.beyond[e.Seq] = true
	}
}

// onControl takes statuses and replies.
func (c *cloud) onControl(_ mqtt.Client, m mqtt.Message) {
	id := boxOf(m.Topic())
	if strings.HasSuffix(m.Topic(), "/status") {
		var s contract.Status
		if json.Unmarshal(m.Payload(), &s) != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		v := c.view(id)
		switch {
		case s.Online && !m.Retained():
			v.online, v.session = true, max(v.session, s.Session)
		case s.Online:
			v.session = max(v.session, s.Session)
		case s.Session < v.session:
			v.stale++ // a late will of an older session: the box is online
		default:
			v.online = false
		}
		return
	}
	r, err := contract.DecodeReply(m.Payload())
	if err != nil {
		return
	}
	c.mu.Lock()
	ch := c.view(id).replies[r.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default:
		}
	}
}

// ackLoop acks, every ackInterval, what each box has delivered since the
// last ack: a signed {"box_id","seq"} of the highest seq below the first
// gap.
func (c *cloud) ackLoop() {
	defer close(c.ackDone)
	t := time.NewTicker(ackInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stopAck:
			return
		case <-t.C:
		}
		type ack struct {
			box string
			seq uint64
		}
		var due []ack
		c.mu.Lock()
		for id, v := range c.boxes {
			if v.contig > v.acked {
				due = append(due, ack{id, v.contig})
				v.acked = v.contig
			}
		}
		c.acksSent += len(due)
		c.mu.Unlock()
		for _, a := range due {
			raw, _ := json.Marshal(map[string]any{"box_id": a.box, "seq": a.seq})
			c.ctl.Publish(prefix+"/"+a.box+"/events/ack", 1, false, trust.Sign(c.priv, cloudKid, raw))
		}
	}
}

// send signs a command for box and publishes it; the reply arrives on the
// returned channel.
func (c *cloud) send(box, id, typ string, data any) <-chan contract.Reply {
	ch := make(chan contract.Reply, 1)
	c.mu.Lock()
	v := c.view(box)
	v.counter++
	n := v.counter
	v.replies[id] = ch
	c.mu.Unlock()
	raw, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data, "box_id": box, "counter": n})
	c.ctl.Publish(prefix+"/"+box+"/cmd", 1, false, trust.Sign(c.priv, cloudKid, raw))
	return ch
}

// forget drops the reply channel of a command.
func (c *cloud) forget(box, id string) {
	c.mu.Lock()
	delete(c.view(box).replies, id)
	c.mu.Unlock()
}

// call sends a command and waits for its reply, resending it (same id,
// so it has one effect) every resend while none came, until timeout.
func (c *cloud) call(box, id, typ string, data any, resend, timeout time.Duration) (contract.Reply, error) {
	defer c.forget(box, id)
	deadline := time.Now().Add(timeout)
	for {
		ch := c.send(box, id, typ, data)
		select {
		case r := <-ch:
			if !r.OK {
				return r, fmt.Errorf("%s %s: %s", box, typ, r.Error.Code)
			}
			return r, nil
		case <-time.After(min(resend, time.Until(deadline))):
		}
		if time.Now().After(deadline) {
			return contract.Reply{}, fmt.Errorf("%s %s: no reply within %v", box, typ, timeout)
		}
	}
}

// onlineCount is how many of ids the cloud sees online.
func (c *cloud) onlineCount(ids []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range ids {
		if v := c.boxes[id]; v != nil && v.online {
			n++
		}
	}
	return n
}

// missing counts the seqs from 1 to upto that never arrived from box id.
func (c *cloud) missing(id string, upto uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.boxes[id]
	if v == nil {
		return upto
	}
	if upto <= v.contig {
		return 0
	}
	n := upto - v.contig
	for s := range v.beyond {
		if s <= upto {
			n--
		}
	}
	return n
}

// delivered is, for box id, the seqs up to which everything arrived, how
// many distinct seqs arrived and the duplicates.
func (c *cloud) delivered(id string) (contig uint64, distinct int, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.boxes[id]
	if v == nil {
		return 0, 0, 0
	}
	return v.contig, int(v.contig) + len(v.beyond), v.dups
}

// staleWills counts the wills that arrived after a newer session's online.
func (c *cloud) staleWills() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.boxes {
		n += v.stale
	}
	return n
}

// public is the cloud's public key, for the boxes' trust.
func (c *cloud) public() ed25519.PublicKey { return c.priv.Public().(ed25519.PublicKey) }
