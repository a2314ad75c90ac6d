package mqttlink

import (
	"context"
	"encoding/json"
	"errors"
	"smartboxd/contract"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"
)

// loopState is owned by the main loop goroutine.
type loopState struct {
	up      bool   // the connection is open as far as the loop knows
	handled uint64 // the connects counter at the last connect handled

	// The drain.
	cursor       uint64              // the last seq published since the last rewind
	window       map[uint64]struct{} // published and not yet acked
	maxPublished uint64              // the highest seq published since Run started
	acked        uint64              // the highest seq acknowledged
	published    uint64
	ackAlarm     alarm
	backoff      int // the ack timeout's multiplier, 1 to ackBackoffMax

	// The state document.
	statePending bool
	lastState    time.Time
	stateAlarm   alarm
}

// alarm is a timer on the link's clock that can be unset. It tolerates a
// stale tick left in the timer's channel: fired re-arms when it is early.
type alarm struct {
	clock clockwork.Clock
	t     clockwork.Timer
	at    time.Time
	armed bool
}

func (a *alarm) set(at time.Time) {
	a.at, a.armed = at, true
	d := max(a.clock.Until(at), 0)
	if a.t == nil {
		a.t = a.clock.NewTimer(d)
		return
	}
	a.t.Stop()
	a.t.Reset(d)
}

func (a *alarm) clear() {
	if a.armed {
		a.t.Stop()
		a.armed = false
	}
}

// C is the channel to wait on; nil (never ready) while unset.
func (a *alarm) C() <-chan time.Time {
	if !a.armed {
		return nil
	}
	return a.t.Chan()
}

// fired is called when C delivered. It reports whether the alarm time has
// come, and re-arms the alarm when it has not.
func (a *alarm) fired() bool {
	if !a.armed {
		return false
	}
	if a.clock.Now().Before(a.at) {
		a.set(a.at)
		return false
	}
	a.armed = false
	return true
}

func (l *Link) mainLoop(ctx context.Context) {
	s := &l.loop
	s.window = map[uint64]struct{}{}
	s.backoff = 1
	s.ackAlarm.clock = l.clock
	s.stateAlarm.clock = l.clock
	s.statePending = true
	if st, err := l.out.OutboxStats(); err == nil {
		s.acked = st.Acked
	} else {
		l.log.Error("mqtt outbox unreadable", "err", err)
	}
	defer s.ackAlarm.clear()
	defer s.stateAlarm.clear()
	for {
		l.updateStats()
		select {
		case <-ctx.Done():
			return
		case <-l.connSig:
			l.connectionChanged()
		case <-l.statSig:
			if s.up {
				now := l.clock.Now()
				c := l.current()
				c.client.Publish(l.topics.Status, 1, true, l.statusPayload(true, c.session, &now))
			}
		case <-l.box.Appended():
			l.drain()
		case <-l.box.Changed():
			s.statePending = true
			l.maybePublishState()
		case <-s.stateAlarm.C():
			if s.stateAlarm.fired() {
				l.maybePublishState()
			}
		case <-l.acks.sig:
			l.takeAcks()
		case <-l.pubacks.sig:
			l.takePubacks()
		case <-s.ackAlarm.C():
			if s.ackAlarm.fired() {
				l.ackTimedOut()
			}
		}
	}
}

func (l *Link) updateStats() {
	s := &l.loop
	l.mu.Lock()
	l.stats.LastAck = s.acked
	l.stats.InFlight = len(s.window)
	l.stats.Published = s.published
	l.stats.Reconnects = int(max(s.handled, 1) - 1)
	l.mu.Unlock()
}

// connectionChanged brings the loop's view of the connection up to date.
// Every connect paho makes is handled once, however the signals coalesced.
func (l *Link) connectionChanged() {
	s := &l.loop
	c := l.current()
	if c.client == nil || !c.client.IsConnectionOpen() {
		if s.up {
			s.up = false
			s.ackAlarm.clear()
		}
		return
	}
	n := l.connects.Load()
	if n == s.handled {
		// Open, but paho's OnConnect has not run yet; it signals again.
		return
	}
	s.handled = n
	s.up = true
	l.log.Info("mqtt connected", "broker", c.broker.name, "session", c.session, "connects", n)
	l.mu.Lock()
	l.stats.LastError = ""
	l.lastFail = ""
	l.mu.Unlock()
	l.subscribe(c)
	now := l.clock.Now()
	c.client.Publish(l.topics.Status, 1, true, l.statusPayload(true, c.session, &now))
	l.publishState(now)
	l.rewind()
	l.drain()
}

// subscribe renews the link's subscriptions. The broker keeps them in the
// persistent session, but a session can be lost (a broker without
// persistence, a first connect). Messages arrive through the default
// handler, so no route is registered; the result is checked off the loop.
func (l *Link) subscribe(c connection) {
	broker := c.broker.name
	tok := c.client.SubscribeMultiple(map[string]byte{l.topics.Cmd: 1, l.topics.Ack: 1}, nil)
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		timeout := time.NewTimer(subscribeTimeout) // a network wait, in real time like paho's
		defer timeout.Stop()
		select {
		case <-tok.Done():
		case <-l.quit:
			return
		case <-timeout.C:
			l.log.Warn("mqtt subscribe not confirmed", "broker", broker, "waited", subscribeTimeout)
			return
		}
		if err := tok.Error(); err != nil {
			l.log.Warn("mqtt subscribe failed", "broker", broker, "err", err)
			return
		}
		if st, ok := tok.(*mqtt.SubscribeToken); ok {
			for topic, qos := range st.Result() {
				if qos > 2 {
					l.log.Error("mqtt broker refused a subscription", "broker", broker, "topic", topic)
					return
				}
			}
		}
		l.log.Debug("mqtt subscribed", "broker", broker)
	}()
}

// rewind makes the drain start again from the first unacked event.
func (l *Link) rewind() {
	s := &l.loop
	s.cursor = 0
	clear(s.window)
	s.ackAlarm.clear()
}

// drain publishes outbox events after the cursor, in seq order, while the
// window has room.
func (l *Link) drain() {
	s := &l.loop
	if !s.up {
		return
	}
	for room := l.cfg.InFlight - len(s.window); room > 0; room = l.cfg.InFlight - len(s.window) {
		recs, err := l.out.Pending(s.cursor, min(room, pendingBatch))
		if err != nil {
			l.log.Error("mqtt outbox unreadable", "err", err)
			return
		}
		if len(recs) == 0 {
			return
		}
		for _, r := range recs {
			// The token is not waited on: paho holds the packet until the
			// broker takes it, and resends it after a reconnect.
			l.publish(l.topics.Events, false, r.Payload)
			s.cursor = r.Seq
			s.window[r.Seq] = struct{}{}
			s.maxPublished = max(s.maxPublished, r.Seq)
			s.published++
		}
		if !s.ackAlarm.armed {
			s.ackAlarm.set(l.clock.Now().Add(l.cfg.AckTimeout * time.Duration(s.backoff)))
		}
	}
}

// progress notes that acks removed events from the window.
func (l *Link) progress() {
	s := &l.loop
	s.backoff = 1
	s.ackAlarm.clear()
	if len(s.window) > 0 {
		s.ackAlarm.set(l.clock.Now().Add(l.cfg.AckTimeout))
	}
}

// ackTimedOut publishes the unacked events again when no ack came for the
// ack timeout, and waits longer next time.
func (l *Link) ackTimedOut() {
	s := &l.loop
	if !s.up || len(s.window) == 0 {
		return
	}
	l.log.Warn("mqtt events not acknowledged in time; publishing them again",
		"in_flight", len(s.window), "waited", l.cfg.AckTimeout*time.Duration(s.backoff))
	s.backoff = min(s.backoff*2, ackBackoffMax)
	l.rewind()
	l.drain()
}

// takeAcks applies the cloud's acks.
func (l *Link) takeAcks() {
	s := &l.loop
	seq, ok, bad, last := l.acks.take()
	if bad > 0 {
		l.log.Warn("mqtt malformed event acks ignored", "count", bad, "err", last)
	}
	if !ok {
		return
	}
	l.mu.Lock()
	l.stats.Acks++
	l.mu.Unlock()
	// The cloud cannot have stored what was not published.
	seq = min(seq, s.maxPublished)
	if seq <= s.acked {
		return
	}
	n, err := l.out.Ack(seq)
	if err != nil {
		l.log.Error("mqtt ack not stored", "seq", seq, "err", err)
		return
	}
	s.acked = seq
	removed := 0
	for q := range s.window {
		if q <= seq {
			delete(s.window, q)
			removed++
		}
	}
	if n > 0 {
		l.box.OutboxChanged()
	}
	if removed > 0 || n > 0 {
		l.progress()
	}
	l.drain()
}

// takePubacks removes the events the broker acknowledged ("broker" mode).
func (l *Link) takePubacks() {
	s := &l.loop
	payloads := l.pubacks.take()
	seqs := make([]uint64, 0, len(payloads))
	for _, p := range payloads {
		if q := eventSeq(p); q > 0 {
			seqs = append(seqs, q)
		}
	}
	if len(seqs) == 0 {
		return
	}
	if err := l.out.AckSeqs(seqs); err != nil {
		l.log.Error("mqtt acks not stored", "count", len(seqs), "err", err)
		return
	}
	for _, q := range seqs {
		delete(s.window, q)
		s.acked = max(s.acked, q)
	}
	l.box.OutboxChanged()
	l.progress()
	l.drain()
}

// maybePublishState publishes a pending state change now, or arms the
// state alarm for when the interval since the last publish is over.
func (l *Link) maybePublishState() {
	s := &l.loop
	if !s.statePending || !s.up {
		return
	}
	now := l.clock.Now()
	if next := s.lastState.Add(l.cfg.StateInterval); now.Before(next) {
		if !s.stateAlarm.armed {
			s.stateAlarm.set(next)
		}
		return
	}
	l.publishState(now)
}

// publishState publishes the state document, retained.
func (l *Link) publishState(now time.Time) {
	s := &l.loop
	s.statePending = false
	s.lastState = now
	s.stateAlarm.clear()
	st, err := l.box.State()
	if errors.Is(err, contract.ErrStarting) {
		return // the box publishes a change once it has loaded its state
	}
	if err != nil {
		l.log.Error("mqtt state unreadable", "err", err)
		return
	}
	raw, err := json.Marshal(st)
	if err != nil {
		l.log.Error("mqtt state not encoded", "err", err)
		return
	}
	l.publish(l.topics.State, true, raw)
}
