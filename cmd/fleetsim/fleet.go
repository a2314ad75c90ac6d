package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"smartboxd/internal/mqtttest"
)

// brokers is the broker side of a run: one mosquitto or a RabbitMQ cluster.
type brokers struct {
	kind     string
	mosq     *mqtttest.Broker
	rabbit   *mqtttest.RabbitCluster
	urls     []string
	shared   bool // shared subscriptions
	clusterd bool
}

func launchBrokers(kind, dir string) (*brokers, error) {
	switch kind {
	case "mosquitto":
		b, err := mqtttest.Launch(dir)
		if err != nil {
			return nil, err
		}
		return &brokers{kind: kind, mosq: b, urls: []string{b.URL()}, shared: true}, nil
	default:
		c, err := mqtttest.StartRabbitCluster(dir, 3)
		if err != nil {
			return nil, err
		}
		return &brokers{kind: kind, rabbit: c, urls: c.URLs(), clusterd: true}, nil
	}
}

func (b *brokers) close() error {
	if b.mosq != nil {
		b.mosq.Stop()
		return nil
	}
	return b.rabbit.Stop()
}

// fleet is one run: the brokers, the cloud and the boxes.
type fleet struct {
	o     options
	br    *brokers
	cloud *cloud
	boxes []*simBox
	ids   []string
	res   *result
	// brokerDir holds the brokers' files; their command lines name it.
	brokerDir string
	cancel    context.CancelFunc // of the running traffic, if any
	trWG      sync.WaitGroup

	// The boxes' reconnects, as their links count them (sampleConnects).
	connMu   sync.Mutex
	connects []time.Time
	attempts []time.Time
	stopSamp chan struct{}
	sampDone chan struct{}
}

// sampleConnects notes, every 20 ms, each reconnect and each connection
// attempt the boxes' links counted since the last look: the times of the
// reconnect storm, seen from the boxes (the cloud's own reconnect would
// bunch the statuses it receives).
func (f *fleet) sampleConnects() {
	defer close(f.sampDone)
	last := make([]int, len(f.boxes))
	lastTry := make([]uint64, len(f.boxes))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-f.stopSamp:
			return
		case now := <-t.C:
			var add, tries []time.Time
			for i, b := range f.boxes {
				s := b.link.Stats()
				for ; last[i] < s.Reconnects; last[i]++ {
					add = append(add, now)
				}
				for ; lastTry[i] < s.Attempts; lastTry[i]++ {
					tries = append(tries, now)
				}
			}
			if len(add) > 0 || len(tries) > 0 {
				f.connMu.Lock()
				f.connects = append(f.connects, add...)
				f.attempts = append(f.attempts, tries...)
				f.connMu.Unlock()
			}
		}
	}
}

// reconnectsSince are the reconnect and attempt times noted from t on.
func (f *fleet) reconnectsSince(t time.Time) (connects, attempts []time.Time) {
	f.connMu.Lock()
	defer f.connMu.Unlock()
	from := func(ts []time.Time) []time.Time {
		var out []time.Time
		for _, c := range ts {
			if !c.Before(t) {
				out = append(out, c)
			}
		}
		return out
	}
	return from(f.connects), from(f.attempts)
}

// runFleet runs every scenario of kind's broker on a fleet of o.n boxes.
func runFleet(ctx context.Context, o options, kind string) (*result, error) {
	dir := filepath.Join(o.dir, kind)
	o.progress("%s: starting the broker", kind)
	br, err := launchBrokers(kind, filepath.Join(dir, "broker"))
	if err != nil {
		return nil, err
	}
	defer br.close()
	f := &fleet{o: o, br: br, brokerDir: filepath.Join(dir, "broker"), res: &result{Brokers: br.urls}}
	ids := make([]string, o.n)
	for i := range ids {
		ids[i] = boxID(i)
	}
	f.cloud, err = newCloud(cloudOptions{url: br.urls[0], shared: br.shared, subscribers: o.subscribers, boxes: ids, tag: kind})
	if err != nil {
		return nil, err
	}
	defer f.cloud.close()
	defer f.stopBoxes()

	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"ramp", func(ctx context.Context) error { return f.ramp(ctx, filepath.Join(dir, "boxes")) }},
		{"provision", f.provisionAll},
		{"steady", f.steady},
		{"storm", f.storm},
		{"outage", f.outage},
		{"fan-out", f.fanout},
		{"drain", f.drainAll},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return f.res, err
		}
		if slices.Contains(o.skip, s.name) {
			o.progress("%s: %s skipped", kind, s.name)
			continue
		}
		o.progress("%s: %s", kind, s.name)
		if err := s.run(ctx); err != nil {
			f.stopTraffic()
			f.count()
			return f.res, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	f.count()
	return f.res, nil
}

// brokerList is box i's list of brokers: on a cluster each box starts on
// a different node, so that the fleet spreads over the nodes.
func (f *fleet) brokerList(i int) []string {
	urls := f.br.urls
	out := make([]string, len(urls))
	for k := range urls {
		out[k] = urls[(i+k)%len(urls)]
	}
	return out
}

func (f *fleet) stopBoxes() {
	f.stopTraffic()
	if f.stopSamp != nil {
		close(f.stopSamp)
		<-f.sampDone
		f.stopSamp = nil
	}
	var wg sync.WaitGroup
	for _, b := range f.boxes {
		wg.Add(1)
		go func() { defer wg.Done(); b.stop() }()
	}
	wg.Wait()
	f.boxes = nil
}

// startTraffic runs guest traffic until stopTraffic.
func (f *fleet) startTraffic() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.trWG.Add(1)
	go func() { defer f.trWG.Done(); f.traffic(ctx, f.o.rate) }()
}

func (f *fleet) stopTraffic() {
	if f.cancel != nil {
		f.cancel()
		f.trWG.Wait()
		f.cancel = nil
	}
}

// waitFor polls cond every 100 ms until it holds, ctx ends or o.wait
// passes.
func (f *fleet) waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(f.o.wait)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, f.o.wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// ramp starts the boxes at o.rampRate a second and waits until the cloud
// has seen each online.
func (f *fleet) ramp(ctx context.Context, dir string) error {
	bo := boxOptions{dir: dir, brokers: f.brokerList, cloudKey: f.cloud.public(), ackTimeout: f.o.ackTimeout, reconnMin: f.o.reconnMin, fsync: f.o.fsync, log: f.o.log}
	t0 := time.Now()
	every := time.Duration(float64(time.Second) / f.o.rampRate)
	for i := range f.o.n {
		if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		b, err := startBox(i, bo)
		if err != nil {
			return err
		}
		f.boxes = append(f.boxes, b)
		f.ids = append(f.ids, b.id)
	}
	err := f.waitFor(ctx, "every box online", func() bool { return f.cloud.onlineCount(f.ids) == len(f.ids) })
	f.res.TimeToAllOnlineS = time.Since(t0).Seconds()
	f.stopSamp, f.sampDone = make(chan struct{}), make(chan struct{})
	go f.sampleConnects()
	f.res.RSSPerBoxK = rssKiB() / f.o.n
	f.res.BrokerRSSPerBoxK = brokerRSSKiB(f.brokerDir) / f.o.n
	return err
}

// provisionAll provisions every box, 32 at a time.
func (f *fleet) provisionAll(context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 32)
	for i, b := range f.boxes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f.provision(b, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d boxes not provisioned, the first: %w", len(errs), errs[0])
	}
	return nil
}

// steady runs guest traffic for o.steady, which then goes on in the
// background through the storm.
func (f *fleet) steady(ctx context.Context) error {
	before := f.written()
	t0 := time.Now()
	f.startTraffic()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.o.steady):
	}
	f.res.SteadyEventsPerS = float64(f.written()-before) / time.Since(t0).Seconds()
	return nil
}

// written is how many events the boxes have written so far.
func (f *fleet) written() uint64 {
	var n uint64
	for _, b := range f.boxes {
		n += b.outbox().LastSeq
	}
	return n
}

// sessions is every box's current session number, as its link reports it.
func (f *fleet) sessions() []uint64 {
	out := make([]uint64, len(f.boxes))
	for i, b := range f.boxes {
		out[i] = b.link.Stats().Session
	}
	return out
}

// storm: the broker restart on mosquitto, the node kill on a cluster,
// under traffic. It waits until every box that lost its broker has a new
// session and is connected.
func (f *fleet) storm(ctx context.Context) error {
	before := f.sessions()
	var t0, stopped time.Time
	var moved []int // the boxes expected to reconnect
	if f.br.mosq != nil {
		f.res.Storm = fmt.Sprintf("broker restart, down %v", f.o.down)
		stopped = time.Now()
		f.br.mosq.Stop()
		time.Sleep(f.o.down)
		if err := f.br.mosq.Relaunch(); err != nil {
			return err
		}
		t0 = time.Now()
		f.res.StormDownS = t0.Sub(stopped).Seconds()
		for i := range f.boxes {
			moved = append(moved, i)
		}
	} else {
		// Kill the node the most boxes are on, but not the cloud's (node 0).
		on := map[string][]int{}
		for i, b := range f.boxes {
			s := b.link.Stats()
			on[s.Broker] = append(on[s.Broker], i)
		}
		victim := 1
		for k := 2; k < len(f.br.urls); k++ {
			if len(on[f.br.urls[k]]) > len(on[f.br.urls[victim]]) {
				victim = k
			}
		}
		moved = on[f.br.urls[victim]]
		f.res.Storm = fmt.Sprintf("node %d of %d killed (%d boxes on it)", victim+1, len(f.br.urls), len(moved))
		t0 = time.Now()
		stopped = t0
		if err := f.br.rabbit.Kill(victim); err != nil {
			return err
		}
		defer func() {
			f.o.progress("%s: starting the killed node again", f.br.kind)
			if err := f.br.rabbit.Start(victim); err != nil {
				f.res.Notes = append(f.res.Notes, "killed node did not start again: "+err.Error())
			}
		}()
	}
	err := f.waitFor(ctx, "every box back online", func() bool {
		for _, i := range moved {
			s := f.boxes[i].link.Stats()
			if s.Session <= before[i] || !s.Connected {
				return false
			}
		}
		return true
	})
	back := time.Since(t0)
	f.res.BackOnlineS = back.Seconds()
	conns, tries := f.reconnectsSince(stopped.Add(-time.Second))
	f.res.StormSeries, f.res.PeakConnectsPerS = perSecond(conns, t0)
	f.res.StormAttempts, _ = perSecond(tries, stopped)
	if len(f.res.StormAttempts) > 0 {
		f.res.StormAttempts = f.res.StormAttempts[1:] // nothing before the stop
	}
	f.res.PeakShare = float64(f.res.PeakConnectsPerS) / float64(len(f.boxes))
	now := f.sessions()
	for i := range now {
		if now[i] > before[i] {
			f.res.StormReconnected++
		}
	}
	f.res.StaleWills = f.cloud.staleWills()
	return err
}

// outage: the broker is away while every box writes o.outageSteps guest
// steps; then it comes back and the backlog drains. On mosquitto the broker
// is stopped; on a cluster every node is killed at once, as a site's power
// loss would (one node or two down leave the boxes a node to move to, or,
// without a majority, refuse them all), and all are started again together.
// It notes, as for the storm, how the boxes came back.
func (f *fleet) outage(ctx context.Context) error {
	f.stopTraffic()
	if err := f.drained(ctx); err != nil {
		return err
	}
	before := f.sessions()
	stopped := time.Now()
	if f.br.mosq != nil {
		f.br.mosq.Stop()
	} else {
		for i := range f.br.urls {
			if err := f.br.rabbit.Kill(i); err != nil {
				return err
			}
		}
	}
	f.burst(f.o.outageSteps)
	backlog := 0
	for _, b := range f.boxes {
		backlog += b.outbox().Depth
	}
	f.res.OutageBacklog = backlog
	if err := f.restartAll(); err != nil {
		return err
	}
	t0 := time.Now()
	f.res.OutageDownS = t0.Sub(stopped).Seconds()
	err := f.waitFor(ctx, "every box back online after the outage", func() bool {
		for i, b := range f.boxes {
			if s := b.link.Stats(); s.Session <= before[i] || !s.Connected {
				return false
			}
		}
		return true
	})
	f.res.OutageBackOnlineS = time.Since(t0).Seconds()
	conns, _ := f.reconnectsSince(stopped)
	f.res.OutageSeries, f.res.OutagePeakConnectsPerS = perSecond(conns, t0)
	f.res.OutagePeakShare = float64(f.res.OutagePeakConnectsPerS) / float64(len(f.boxes))
	if err != nil {
		return err
	}
	err = f.drained(ctx)
	f.res.OutageDrainS = time.Since(t0).Seconds()
	return err
}

// restartAll starts the broker again after the outage: mosquitto, or every
// node of the cluster at once (a node waits for its peers' tables as it
// boots).
func (f *fleet) restartAll() error {
	if f.br.mosq != nil {
		return f.br.mosq.Relaunch()
	}
	return f.br.rabbit.StartAll()
}

// drained waits until every box's outbox is empty and the cloud has every
// event each box wrote.
func (f *fleet) drained(ctx context.Context) error {
	return f.waitFor(ctx, "every outbox drained", func() bool {
		for _, b := range f.boxes {
			s := b.outbox()
			if s.Depth > 0 {
				return false
			}
			if contig, _, _ := f.cloud.delivered(b.id); contig < s.LastSeq {
				return false
			}
		}
		return true
	})
}

// fanout sends one signed bin.open to every box at once and measures each
// round trip to its reply.
func (f *fleet) fanout(ctx context.Context) error {
	var (
		mu   sync.Mutex
		rtts []time.Duration
		wg   sync.WaitGroup
	)
	failed := 0
	for _, b := range f.boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "fanout-1"
			t := time.Now()
			ch := f.cloud.send(b.id, id, "bin.open", map[string]any{"bin": 1})
			defer f.cloud.forget(b.id, id)
			select {
			case r := <-ch:
				mu.Lock()
				defer mu.Unlock()
				if !r.OK {
					failed++
					return
				}
				rtts = append(rtts, time.Since(t))
			case <-time.After(f.o.wait):
				mu.Lock()
				failed++
				mu.Unlock()
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	f.res.CmdP50Ms, f.res.CmdP99Ms = ms(percentile(rtts, 0.50)), ms(percentile(rtts, 0.99))
	f.res.CmdFailed = failed
	if failed > 0 {
		return fmt.Errorf("%d of %d commands got no reply or a refusal", failed, len(f.boxes))
	}
	return ctx.Err()
}

// drainAll stops the traffic and waits until everything is delivered.
func (f *fleet) drainAll(ctx context.Context) error {
	f.stopTraffic()
	return f.drained(ctx)
}

// count fills in the event figures from the boxes' stores and the cloud.
func (f *fleet) count() {
	r := f.res
	r.Produced, r.Delivered, r.Duplicated, r.Lost, r.Undelivered = 0, 0, 0, 0, 0
	for _, b := range f.boxes {
		s := b.outbox()
		_, distinct, dups := f.cloud.delivered(b.id)
		r.Produced += s.LastSeq
		r.Delivered += uint64(distinct)
		r.Duplicated += dups
		// Lost: let go of by the box (acked, or dropped on an overflow)
		// and never seen by the cloud.
		r.Lost += f.cloud.missing(b.id, s.LastSeq-uint64(s.Depth))
	}
	r.Undelivered = r.Produced - min(r.Delivered, r.Produced)
}
