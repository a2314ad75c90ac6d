// Package democloud is a small stand-in for the SmartBox cloud, for the
// demo: an embedded MQTT broker, and a client of it that provisions a box
// with a few keys and access codes (and its offline key) when the box
// comes online, prints two offline codes for the demo's keys, acks every
// event, and prints each event and reply as a readable line.
package democloud

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"smartboxd/contract"
	"smartboxd/offline"
	"smartboxd/trust"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DemoKeyName is the name (kid) of the demo cloud's signing key, and
// DemoPublicKey its public key, as configs/sim.yaml lists it.
const (
	DemoKeyName   = "demo-cloud"
	DemoPublicKey = "edrlt9e1b2VY/5eAwzfoKhIXpPc59XjpUM+Ku1/OuvU="
)

// demoKey is the demo cloud's signing key. It is derived from a published
// phrase: it signs for the simulated demo box only, and no real box may
// list its public key.
func demoKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("smartbox demo cloud signing key: for the simulated demo box only"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Config says where to listen and which box to serve.
type Config struct {
	Listen    string // e.g. 127.0.0.1:18830
	BoxID     string
	Prefix    string // topic prefix, default "smartbox"
	Provision bool   // send the demo's keys and codes when the box is online
	// Update, when its File is set, is pushed to the box when it comes
	// online running another version.
	Update Update
	Out    io.Writer
	Logger *slog.Logger
	Now    func() time.Time // the clock offline codes start at; default time.Now
}

// OfflineKey is the demo's offline key. It is fixed and public: a demo
// only. A real cloud makes a random key per box.
var OfflineKey = []byte("demo-offline-key-000000000000000")

// OfflineCodes are the offline codes the demo cloud prints when a box
// comes online, each valid for 24 hours from the hour it is made in.
var OfflineCodes = []struct {
	KeyID string
	Mode  offline.Mode
}{
	{"front-door", offline.Pickup},  // the guest takes the Front door key, while it is here
	{"garage", offline.DropoffOnce}, // the cleaner returns the Garage key, once
}

// offlineClass is the duration class of the demo's offline codes: 24 hours.
const offlineClass = 4

// Provisioning is what the demo cloud sends a box that comes online. The
// command ids are fixed, so sending them again on every start has no second
// effect on the box.
var Provisioning = []map[string]any{
	{"id": "demo-1", "type": "settings.set", "data": map[string]any{"key_codes_enabled": true}},
	{"id": "demo-2", "type": "key.upsert", "data": map[string]any{"key_id": "front-door", "name": "Front door", "description": "Blue fob, brass key", "serial_number": "0A1B2C3D4E"}},
	{"id": "demo-3", "type": "key.upsert", "data": map[string]any{"key_id": "garage", "name": "Garage", "serial_number": "00C0FFEE42"}},
	{"id": "demo-4", "type": "key.upsert", "data": map[string]any{"key_id": "guest-house", "name": "Guest house", "virtual": true, "key_code": "97531"}},
	{"id": "demo-5", "type": "access_code.upsert", "data": map[string]any{"access_code_id": "host-dropoff", "code": "5678", "name": "Host drops the front door key", "type": "ongoing", "key_id": "front-door", "action": "dropoff"}},
	{"id": "demo-6", "type": "access_code.upsert", "data": map[string]any{"access_code_id": "guest-pickup", "code": "1234", "name": "Guest picks it up", "type": "ongoing", "key_id": "front-door", "action": "pickup"}},
	{"id": "demo-7", "type": "access_code.upsert", "data": map[string]any{"access_code_id": "cleaner-dropoff", "code": "4321", "name": "Cleaner returns the garage key", "type": "ongoing", "key_id": "garage", "action": "dropoff"}},
	{"id": "demo-8", "type": contract.TypeOfflineSetKey, "data": map[string]any{"key": base64.StdEncoding.EncodeToString(OfflineKey)}},
}

// Cloud is a running demo cloud.
type Cloud struct {
	cfg    Config
	srv    *mqtt.Server
	topics contract.Topics
	mu     sync.Mutex // guards out and acked
	acked  uint64
	work   chan func()
	online bool
	key    ed25519.PrivateKey
	// counter is the last counter signed; it starts at the time in
	// milliseconds so that it keeps rising across restarts of the cloud.
	counter uint64
	update  *update
}

// Start starts the broker and the cloud client on it.
func Start(cfg Config) (*Cloud, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: cfg.Logger})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Listen})); err != nil {
		return nil, fmt.Errorf("democloud: listen %s: %w", cfg.Listen, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	c := &Cloud{cfg: cfg, srv: srv, topics: contract.TopicsFor(cfg.Prefix, cfg.BoxID), work: make(chan func(), 4096),
		key: demoKey(), counter: uint64(time.Now().UnixMilli())}
	if cfg.Update.File != "" {
		u, err := startUpdate(cfg.Update)
		if err != nil {
			srv.Close()
			return nil, err
		}
		c.update = u
	}
	go c.loop()
	subs := []struct {
		topic string
		fn    func([]byte)
	}{
		{c.topics.Events, c.onEvent},
		{c.topics.Reply, c.onReply},
		{c.topics.Status, c.onStatus},
	}
	for i, s := range subs {
		fn := s.fn
		err := srv.Subscribe(s.topic, i+1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			payload := append([]byte(nil), pk.Payload...)
			c.work <- func() { fn(payload) } // never block the broker's goroutine on printing
		})
		if err != nil {
			srv.Close()
			return nil, err
		}
	}
	c.printf("cloud   listening on %s for box %s", cfg.Listen, cfg.BoxID)
	return c, nil
}

// Close stops the broker.
func (c *Cloud) Close() error {
	err := c.srv.Close()
	if c.update != nil {
		c.update.srv.Close()
	}
	close(c.work)
	return err
}

// Run serves until ctx ends.
func (c *Cloud) Run(ctx context.Context) error {
	<-ctx.Done()
	return c.Close()
}

func (c *Cloud) loop() {
	for f := range c.work {
		f()
	}
}

// Acked is the highest event seq acked so far.
func (c *Cloud) Acked() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

func (c *Cloud) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.cfg.Out, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

func (c *Cloud) publishRaw(topic string, raw []byte) {
	if err := c.srv.Publish(topic, raw, false, 1); err != nil {
		c.printf("cloud   publish %s: %v", topic, err)
	}
}

// sign makes the JWS of payload with the demo key.
func (c *Cloud) sign(payload map[string]any) []byte {
	raw, _ := json.Marshal(payload)
	return []byte(trust.Sign(c.key, DemoKeyName, raw))
}

// send signs a command for the box, with its box_id and the next counter,
// after sealing its codes to the box's seal_key (when it has one).
func (c *Cloud) send(cmd map[string]any, sealTo *[32]byte) {
	out := maps.Clone(cmd)
	if data, ok := cmd["data"].(map[string]any); ok && sealTo != nil {
		data = maps.Clone(data)
		for _, field := range []string{"code", "key_code", "key"} {
			if plain, ok := data[field].(string); ok {
				sealed, err := trust.Seal(sealTo, []byte(plain))
				if err != nil {
					c.printf("cloud   seal %s: %v", field, err)
					return
				}
				delete(data, field)
				data[field+"_sealed"] = sealed
			}
		}
		out["data"] = data
	}
	c.counter++
	out["box_id"], out["counter"] = c.cfg.BoxID, c.counter
	c.publishRaw(c.topics.Cmd, c.sign(out))
}

func (c *Cloud) onStatus(payload []byte) {
	var st contract.Status
	if json.Unmarshal(payload, &st) != nil {
		return
	}
	if st.Online == c.online {
		return
	}
	c.online = st.Online
	if !st.Online {
		c.printf("box     %s offline", c.cfg.BoxID)
		return
	}
	c.printf("box     %s online (version %s)", c.cfg.BoxID, st.Version)
	if c.cfg.Provision {
		var sealTo *[32]byte
		if pub, err := base64.StdEncoding.DecodeString(st.SealKey); err == nil && len(pub) == 32 {
			sealTo = (*[32]byte)(pub)
		} else {
			c.printf("cloud   the box publishes no seal_key: codes go in plain text")
		}
		c.printf("cloud   provisioning %d commands, signed by %s, codes sealed", len(Provisioning), DemoKeyName)
		for _, cmd := range Provisioning {
			c.send(cmd, sealTo)
		}
		c.printOfflineCodes()
	}
	if c.update != nil && st.Version != c.update.version && (st.Firmware == nil || st.Firmware.Trial == nil) {
		c.printf("cloud   pushing firmware %s from %s, signed by the demo release key", c.update.version, c.update.url)
		c.send(c.update.command(), nil)
	}
}

// printOfflineCodes prints the demo's offline codes for this box, as a
// cloud would send them to a guest: nothing goes to the box.
func (c *Cloud) printOfflineCodes() {
	start := c.cfg.Now()
	for _, oc := range OfflineCodes {
		code, err := offline.Generate(OfflineKey, c.cfg.BoxID, oc.KeyID, oc.Mode, offlineClass, start)
		if err != nil {
			c.printf("cloud   offline code for %s: %v", oc.KeyID, err)
			continue
		}
		from, to := offline.Window(offline.HourOf(start), offlineClass)
		c.printf("cloud   offline code %s: %s of %s, %s to %s", code, oc.Mode, oc.KeyID,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
}

func (c *Cloud) onEvent(payload []byte) {
	var ev contract.Event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.Seq == 0 {
		c.printf("event   malformed: %.80q", payload)
		return
	}
	c.printf("event   #%-4d %-22s %s", ev.Seq, ev.Type, fields(ev.Data))
	c.mu.Lock()
	if ev.Seq > c.acked {
		c.acked = ev.Seq
	}
	ack := c.acked
	c.mu.Unlock()
	c.publishRaw(c.topics.Ack, c.sign(map[string]any{"box_id": c.cfg.BoxID, "seq": ack}))
}

func (c *Cloud) onReply(payload []byte) {
	r, err := contract.DecodeReply(payload)
	if err != nil {
		c.printf("reply   malformed: %.80q", payload)
		return
	}
	if !r.OK && r.Error != nil {
		c.printf("reply   %-8s ERR %s: %s", r.ID, r.Error.Code, r.Error.Message)
		return
	}
	c.printf("reply   %-8s ok  %s", r.ID, fields(r.Result))
}

// quiet are fields too long or too dull for a one-line summary.
var quiet = map[string]bool{"name": true, "description": true, "notes": true, "pickup_note": true,
	"created_at": true, "any_location": true, "has_key_code": true, "errors": true, "warnings": true}

// fields prints a JSON object as sorted key=value pairs: scalars only,
// without empty strings, false flags and the quiet fields.
func fields(raw json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if quiet[k] {
			continue
		}
		switch v := m[k].(type) {
		case nil, map[string]any, []any:
			continue
		case string:
			if v != "" {
				fmt.Fprintf(&b, "%s=%s ", k, v)
			}
		case bool:
			if v {
				fmt.Fprintf(&b, "%s=true ", k)
			}
		default:
			fmt.Fprintf(&b, "%s=%v ", k, v)
		}
	}
	return strings.TrimSpace(b.String())
}
