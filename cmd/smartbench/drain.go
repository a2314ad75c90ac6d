package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

	"smartboxd/internal/config"
	"smartboxd/store"
	"smartboxd/sync/mqttlink"
)

// The outbox drain: a box back online with a full outbox. The daemon side
// is mqttlink.Link, configured as the daemon configures it by default,
// draining a copy of the prepared database to the local broker; the cloud
// acks as it stores. It is timed from Link.Run to the cloud's ack of the
// last event, and the outbox must then empty. The baseline is a bare paho
// client publishing the same payloads at QoS 1 with the same number in
// flight (awaiting PUBACKs instead of the cloud's acks), to the same kind
// of cloud, timed from its first publish to that ack. Throughput is events
// per second; the order of the two alternates between repetitions.
//
// Against a broker with mosquitto's default per-client limits (-broker-limits)
// only the daemon runs: the bare loop, paced by the broker's PUBACKs and not
// by the cloud, overflows the cloud's queue and the broker drops events.

type drainResult struct {
	daemon, baseline []float64 // events per second
	events           int
	inFlight         int
	dups             int // events the cloud received twice from the daemon
	emptyAfter       samples
}

// drainSetup is what both sides drain.
type drainSetup struct {
	template    string
	first, last uint64
	payloads    [][]byte
}

func readOutbox(dir string) (*drainSetup, error) {
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID, NoSync: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	recs, err := db.Pending(0, 1<<31)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("the prepared outbox is empty")
	}
	s := &drainSetup{template: dir, first: recs[0].Seq, last: recs[len(recs)-1].Seq}
	if int(s.last-s.first+1) != len(recs) {
		return nil, fmt.Errorf("the prepared outbox has gaps")
	}
	for _, r := range recs {
		s.payloads = append(s.payloads, r.Payload)
	}
	return s, nil
}

// benchDrain runs reps of the daemon's drain and the bare loop.
func benchDrain(ctx context.Context, work, template, url string, reps, inFlight int, bare bool, log *slog.Logger, logf logFunc) (*drainResult, error) {
	setup, err := readOutbox(template)
	if err != nil {
		return nil, err
	}
	if inFlight <= 0 {
		inFlight = config.Default().MQTT.InFlight
	}
	res := &drainResult{inFlight: inFlight}
	for i := range reps {
		sides := []func() error{
			func() error {
				logf("outbox drain: daemon, rep %d of %d", i+1, reps)
				rate, empty, dups, err := drainDaemon(ctx, work, url, setup, i, res.inFlight, log)
				res.daemon = append(res.daemon, rate)
				res.emptyAfter = append(res.emptyAfter, empty)
				res.dups += dups
				return err
			},
			func() error {
				logf("outbox drain: bare paho loop, rep %d of %d", i+1, reps)
				rate, err := drainBare(ctx, url, setup, i, res.inFlight)
				res.baseline = append(res.baseline, rate)
				return err
			},
		}
		if !bare {
			sides = sides[:1]
		}
		if i%2 == 1 && bare {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			if err := side(); err != nil {
				return nil, err
			}
		}
	}
	res.events = len(setup.payloads)
	return res, nil
}

// drainDaemon drains a fresh copy of the prepared outbox through the link
// and returns events per second, how long after the last ack the outbox
// was empty, and how many duplicates the cloud saw.
func drainDaemon(ctx context.Context, work, url string, s *drainSetup, rep, inFlight int, log *slog.Logger) (float64, time.Duration, int, error) {
	dir := filepath.Join(work, fmt.Sprintf("drain-%d", rep))
	if err := copyDataDir(s.template, dir); err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID})
	if err != nil {
		return 0, 0, 0, err
	}
	defer db.Close()
	b, err := startBox(ctx, db, clockwork.NewRealClock())
	if err != nil {
		return 0, 0, 0, err
	}
	defer b.stop()
	// The box wrote device.started on its start: the cloud takes that too.
	st, err := db.OutboxStats()
	if err != nil {
		return 0, 0, 0, err
	}
	prefix := fmt.Sprintf("drain%d", rep)
	c, err := newCloud(ctx, url, prefix, s.first, st.LastSeq)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.close()
	def := config.Default().MQTT
	link, err := mqttlink.New(mqttlink.Config{
		Broker: url, TopicPrefix: prefix, BoxID: benchBoxID, Ack: def.Ack,
		KeepAlive: time.Duration(def.KeepAliveS) * time.Second, InFlight: inFlight,
		Version: "bench", BootID: "bench", Logger: log,
	}, b.box, db)
	if err != nil {
		return 0, 0, 0, err
	}
	lctx, stop := context.WithCancel(ctx)
	linkDone := make(chan error, 1)
	start := time.Now()
	go func() { linkDone <- link.Run(lctx) }()
	defer func() { stop(); <-linkDone }()
	doneAt, err := c.waitDone(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("daemon drain: %w", err)
	}
	events := int(st.LastSeq - s.first + 1)
	rate := float64(events) / doneAt.Sub(start).Seconds()
	// The last ack must leave the outbox empty.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := db.OutboxStats()
		if err != nil {
			return 0, 0, 0, err
		}
		if st.Depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("daemon drain: %d events still in the outbox after the last ack", st.Depth)
		}
		time.Sleep(time.Millisecond)
	}
	empty := time.Since(doneAt)
	_, dups, bad := c.stats()
	if bad != nil {
		return 0, 0, 0, bad
	}
	return rate, empty, dups, nil
}

// drainBare publishes the same payloads with a bare paho client, at most
// inFlight awaiting their PUBACK.
func drainBare(ctx context.Context, url string, s *drainSetup, rep, inFlight int) (float64, error) {
	prefix := fmt.Sprintf("bare%d", rep)
	c, err := newCloud(ctx, url, prefix, s.first, s.last)
	if err != nil {
		return 0, err
	}
	defer c.close()
	pub, err := dial(url, "bench-publisher-"+prefix)
	if err != nil {
		return 0, err
	}
	defer pub.Disconnect(50)
	topic := prefix + "/" + benchBoxID + "/events"
	window := make([]mqtt.Token, 0, inFlight)
	start := time.Now()
	for _, p := range s.payloads {
		if len(window) == inFlight {
			if err := wait(window[0], "publish"); err != nil {
				return 0, err
			}
			window = append(window[:0], window[1:]...)
		}
		window = append(window, pub.Publish(topic, 1, false, p))
	}
	for _, tok := range window {
		if err := wait(tok, "publish"); err != nil {
			return 0, err
		}
	}
	doneAt, err := c.waitDone(ctx)
	if err != nil {
		return 0, fmt.Errorf("bare drain: %w", err)
	}
	if _, _, bad := c.stats(); bad != nil {
		return 0, bad
	}
	return float64(len(s.payloads)) / doneAt.Sub(start).Seconds(), nil
}
