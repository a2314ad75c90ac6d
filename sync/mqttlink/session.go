package mqttlink

import (
	"slices"
	"strings"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionStore is paho's store of in-flight packets. Like paho's memory
// store it lives in memory (the outbox, not this store, is what makes
// events durable), but:
//
//   - All returns packets in the order they were stored, so that after a
//     reconnect paho resends what was in flight in its original order (its
//     own memory store returns them in map order);
//   - it keeps and hands out copies of publish packets. paho's resume marks
//     the packets it resends as duplicates while its writer may still be
//     writing the same packet, when it was published as the connection came
//     up (paho.mqtt.golang issue 703, a data race); with copies, no packet
//     is shared between the two;
//   - when the broker acknowledges one of the link's event publishes (paho
//     deletes the stored packet on its PUBACK), onPuback is told its
//     payload. That is the "broker" ack mode's proof of delivery: paho also
//     completes publish tokens when it resends a packet after a reconnect,
//     before any PUBACK, so tokens cannot serve.
type sessionStore struct {
	events   string
	onPuback func(payload []byte)

	mu   sync.Mutex
	n    uint64
	pkts map[string]storedPacket
}

type storedPacket struct {
	n   uint64
	pkt packets.ControlPacket
}

var _ mqtt.Store = (*sessionStore)(nil)

// paho's store keys: outbound packets are "o.<id>", inbound "i.<id>".
const outboundPrefix = "o."

func newSessionStore(eventsTopic string, onPuback func([]byte)) *sessionStore {
	return &sessionStore{events: eventsTopic, onPuback: onPuback, pkts: map[string]storedPacket{}}
}

// Open and Close do nothing: the store lives as long as the link.
func (s *sessionStore) Open()  {}
func (s *sessionStore) Close() {}

// Put keeps a copy of a publish, taken before paho sends the original:
// paho's writer changes the packet it writes.
func (s *sessionStore) Put(key string, m packets.ControlPacket) {
	if p, ok := m.(*packets.PublishPacket); ok {
		cp := *p
		m = &cp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.pkts[key] = storedPacket{n: s.n, pkt: m}
}

// Get returns a fresh copy of a stored publish, which paho marks as a
// duplicate and sends.
func (s *sessionStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	pkt := s.pkts[key].pkt
	if p, ok := pkt.(*packets.PublishPacket); ok {
		cp := *p
		return &cp
	}
	return pkt
}

func (s *sessionStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.pkts))
	for k := range s.pkts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		na, nb := s.pkts[a].n, s.pkts[b].n
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	})
	return keys
}

// Del removes a packet. paho deletes an outbound QoS 1 publish when its
// PUBACK arrives (and otherwise only discards packets of kinds it cannot
// resend, which publishes are not).
func (s *sessionStore) Del(key string) {
	s.mu.Lock()
	sp, ok := s.pkts[key]
	delete(s.pkts, key)
	s.mu.Unlock()
	if !ok || s.onPuback == nil || !strings.HasPrefix(key, outboundPrefix) {
		return
	}
	if p, isPub := sp.pkt.(*packets.PublishPacket); isPub && p.Qos > 0 && p.TopicName == s.events {
		s.onPuback(p.Payload)
	}
}

// Reset forgets everything; paho calls it only for clean sessions.
func (s *sessionStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.pkts)
}
