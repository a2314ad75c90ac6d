// Command fleetsim runs a fleet of SmartBoxes in one process against real
// brokers and measures what a fleet does to them, and they to it.
//
//	go run ./cmd/fleetsim [-n 1000] [-brokers mosquitto,rabbitmq] [-json FILE]
//
// Every box is a real box: its own bbolt file in a temporary directory, its
// device.Box decision loop, its mqttlink.Link, with simulated locks; the
// simulator types at its keypad (device.Box.KeypadEntry) and shows fobs to
// its reader (FobPresent, FobAbsent). A cloud side provisions each box (a
// key with a fob, a drop-off and a pickup code) with commands signed by a
// key the boxes trust (trust.Keygen), receives every event — through the
// shared subscription $share/cloud/smartbox/+/events on mosquitto, through
// one subscriber on RabbitMQ 3.10, which has no shared subscriptions —,
// checks each box's stream (no seq gap, nothing lost, duplicates counted)
// and acks it, signed, every 250 ms.
//
// The scenarios, in order, on one fleet per broker:
//
//   - ramp: the boxes start at -ramp-rate a second; time until the cloud has
//     seen every box's "online":true.
//   - steady: guest traffic, -rate guest steps a second over the fleet, for
//     -steady.
//   - restart (mosquitto): the broker is stopped under traffic, stays down
//     -down, and starts again: the reconnect storm. Peak connects a second
//     (the boxes' links' reconnects per one-second bucket; their attempts
//     a second too) and the time from the broker's return until every box
//     has a new session.
//   - node kill (RabbitMQ): under traffic, the node holding most boxes is
//     killed; its boxes move to the next node of their list. The same
//     figures; the node is started again afterwards.
//   - outage: the broker is stopped (on the cluster every node is killed at
//     once, as a site's power loss would) and every box writes
//     -outage-steps guest steps, as fast as the boxes take them: an hour of
//     a busy box's traffic compressed (the events carry the box's real clock,
//     so their "at" spans the compressed time, not an hour); the broker (all
//     its nodes together) starts again and the backlog drains. The backlog,
//     the reconnects as for the storm, and the drain time.
//   - fan-out: one signed bin.open to every box at once; the round trip
//     from publish to reply, p50 and p99.
//
// -skip leaves out the outage or the fan-out (the small fleet of the tests
// leaves out the cluster's outage, whose boot takes minutes).
//
// At the end the traffic stops and the fleet drains; every box's outbox is
// empty and the cloud has every seq. It prints a table and, last, one JSON
// line with every figure, per broker: time to all online, peak connects a
// second in the storm, events produced, delivered, lost (must be 0) and
// duplicated, command round trip p50 and p99, and RSS per box (this
// process's VmRSS over N: the boxes, their stores' mappings and the cloud).
// The exit status is non-zero when a scenario could not run or an event
// was lost.
//
// Each box uses the link's defaults (in-flight window 512, reconnect
// backoff up to 60 s, ack timeout 60 s) but for the backoff's first window,
// -reconnect-min (20 s, as mqtt.reconnect_min_s: 20 sets it for a fleet
// sharing a broker; the box's default is 1 s); stores skip fsync unless
// -fsync, since a thousand boxes share one disk here and not in the field.
// Raise the file descriptor limit first (ulimit -n): a box holds its
// database and its connection; make fleet does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"smartboxd/sync/mqttlink"
)

// options size a run.
type options struct {
	n           int
	brokers     []string
	rampRate    float64
	rate        float64
	steady      time.Duration
	down        time.Duration
	outageSteps int
	skip        []string // scenarios not run (-skip)
	ackTimeout  time.Duration
	reconnMin   time.Duration // the boxes' first reconnect window (mqtt.reconnect_min_s)
	subscribers int
	fsync       bool
	dir         string
	jsonOut     string
	wait        time.Duration // bounds every wait for the fleet
	progress    func(format string, args ...any)
	log         *slog.Logger
}

func defaultOptions() options {
	return options{
		n: 1000, brokers: []string{"mosquitto", "rabbitmq"},
		rampRate: 200, rate: 200, steady: 30 * time.Second, down: 10 * time.Second,
		outageSteps: 30, ackTimeout: 60 * time.Second, reconnMin: 20 * time.Second, subscribers: 4,
		wait: 5 * time.Minute,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := defaultOptions()
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", o.n, "boxes")
	brokers := fs.String("brokers", strings.Join(o.brokers, ","), "brokers to run the fleet on: mosquitto, rabbitmq (a 3-node cluster)")
	fs.Float64Var(&o.rampRate, "ramp-rate", o.rampRate, "boxes started a second in the ramp")
	fs.Float64Var(&o.rate, "rate", o.rate, "guest steps a second over the whole fleet")
	fs.DurationVar(&o.steady, "steady", o.steady, "how long the steady traffic runs")
	fs.DurationVar(&o.down, "down", o.down, "how long a restarted broker stays down")
	fs.IntVar(&o.outageSteps, "outage-steps", o.outageSteps, "guest steps every box takes during the outage")
	fs.DurationVar(&o.ackTimeout, "ack-timeout", o.ackTimeout, "the boxes' mqtt ack timeout")
	fs.DurationVar(&o.reconnMin, "reconnect-min", o.reconnMin, "the boxes' first reconnect window, at start and after a loss (mqtt.reconnect_min_s)")
	fs.IntVar(&o.subscribers, "subscribers", o.subscribers, "the cloud's event subscribers in the shared subscription (mosquitto)")
	fs.BoolVar(&o.fsync, "fsync", false, "fsync every box's store (one disk serves the whole fleet here)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default a new temporary one, removed at the end)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the JSON line to FILE")
	fs.DurationVar(&o.wait, "wait", o.wait, "how long to wait for the fleet at each step")
	verbose := fs.Bool("v", false, "log the boxes' warnings and errors")
	skip := fs.String("skip", "", "scenarios not to run, comma-separated: outage, fan-out")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *skip != "" {
		for _, s := range strings.Split(*skip, ",") {
			if s != "outage" && s != "fan-out" {
				return fmt.Errorf("-skip: %q is not a scenario that can be left out (outage, fan-out)", s)
			}
			o.skip = append(o.skip, s)
		}
	}
	if o.n < 1 {
		return errors.New("-n: at least one box")
	}
	if o.reconnMin <= 0 || o.reconnMin > mqttlink.DefaultReconnectMax {
		return fmt.Errorf("-reconnect-min: %v, want more than 0 and at most %v", o.reconnMin, mqttlink.DefaultReconnectMax)
	}
	o.brokers = strings.Split(*brokers, ",")
	for _, b := range o.brokers {
		if b != "mosquitto" && b != "rabbitmq" {
			return fmt.Errorf("-brokers: %q, want mosquitto or rabbitmq", b)
		}
	}
	level := slog.Level(100) // nothing
	if *verbose {
		level = slog.LevelWarn
	}
	o.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	o.progress = func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s fleetsim: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "fleetsim-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}

	out := report{N: o.n, Results: map[string]*result{}}
	var errs []error
	for _, kind := range o.brokers {
		r, err := runFleet(ctx, o, kind)
		if r != nil {
			out.Results[kind] = r
			printResult(stdout, kind, r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kind, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	line, _ := json.Marshal(out)
	fmt.Fprintln(stdout, string(line))
	if o.jsonOut != "" {
		if err := os.WriteFile(o.jsonOut, append(line, '\n'), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	for kind, r := range out.Results {
		if r.Lost != 0 {
			errs = append(errs, fmt.Errorf("%s: %d events lost", kind, r.Lost))
		}
	}
	return errors.Join(errs...)
}
