// Command smartbench measures smartboxd's hot paths against their bare
// baselines, in one run so that each ratio holds on a noisy machine:
// daemon and baseline repetitions are interleaved and medians reported.
//
//	go run ./cmd/smartbench [-codes N] [-events N] [-only LIST] [-cpuprofile FILE]
//
// It prints a table (path, daemon figure, baseline figure, ratio, target,
// pass or miss) and, as its last line, one JSON object holding every figure.
// Progress goes to stderr. A missed target is reported, not an error: the
// exit status is non-zero only when a benchmark could not run.
//
// The paths:
//
//   - code check: a keypad entry to its decision, with the codes stored,
//     wrong codes and right ones (a drop-off and a pickup), p50 and p99:
//     from device.Box.KeypadEntry to the moment the box begins the write
//     transaction that records its decision (the code looked up and the
//     rules applied on a read transaction before it); baseline: one HMAC-SHA256 and one
//     bbolt Get on the same code index. Also reported: the entry to the
//     box's Feedback call, after the commit, against a bare commit (both
//     without fsync).
//   - durable decision: the entry to the Feedback call with fsync; baseline:
//     one fsync'd bbolt Update putting a record the size of a code.rejected
//     event.
//   - snapshot: a sync.snapshot of the codes (device.Box.Execute); baseline:
//     the same records, encoded and sorted, written in one bbolt transaction.
//   - outbox drain: the queued events drained by mqttlink.Link to a local
//     mosquitto at QoS 1, the cloud acking every 256 events (and at a pause);
//     baseline: a bare paho QoS 1 loop of the same payloads, same window.
//   - start-up and memory: the smartboxd binary on a data directory holding
//     the codes and the queued events: exec to retained "online":true; then
//     VmRSS (and its anonymous and file-backed parts) at online and while
//     the daemon drains its outbox to a cloud, and the Go heap (gctrace).
//   - binary: the stripped linux/arm (GOARM=7) build's size.
//
// The MQTT paths run a mosquitto of their own (internal/mqtttest), without
// per-client limits unless -broker-limits; the daemon paths build smartboxd
// from the module this runs in. -cpuprofile profiles this process, which
// hosts the box, the store and the link of the in-process paths.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"smartboxd/internal/mqtttest"
)

// logFunc reports progress.
type logFunc func(format string, args ...any)

// options size a run.
type options struct {
	codes, events  int
	checkCycles    int // code check: cycles of four entries
	durableCycles  int // durable decision: cycles of four entries
	snapshotReps   int
	drainReps      int
	startupReps    int
	only           map[string]bool // parts to run; empty: all
	dir            string          // work directory; "" makes a temporary one
	keep           bool            // keep the work directory
	log            *slog.Logger    // the link's log
	progress       logFunc
	skipBinarySize bool
	inFlight       int  // the link's window; 0: the daemon's default
	brokerLimits   bool // keep mosquitto's default per-client limits
}

var parts = []string{"keypad", "snapshot", "trust", "drain", "daemon", "binary"}

func defaultOptions() options {
	return options{
		codes: 100_000, events: 100_000,
		checkCycles: 1000, durableCycles: 100,
		snapshotReps: 5, drainReps: 3, startupReps: 4,
	}
}

func (o options) runs(part string) bool { return len(o.only) == 0 || o.only[part] }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "smartbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	o := defaultOptions()
	fs := flag.NewFlagSet("smartbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.codes, "codes", o.codes, "access codes stored")
	fs.IntVar(&o.events, "events", o.events, "events queued in the outbox")
	fs.IntVar(&o.checkCycles, "check-cycles", o.checkCycles, "code check: cycles of four keypad entries")
	fs.IntVar(&o.durableCycles, "durable-cycles", o.durableCycles, "durable decision: cycles of four keypad entries")
	fs.IntVar(&o.snapshotReps, "snapshot-reps", o.snapshotReps, "snapshot repetitions")
	fs.IntVar(&o.drainReps, "drain-reps", o.drainReps, "outbox drain repetitions")
	fs.IntVar(&o.startupReps, "startup-reps", o.startupReps, "daemon runs: start-up, then a full drain")
	fs.IntVar(&o.inFlight, "in-flight", 0, "outbox drain: events in flight (default: the daemon's mqtt.in_flight default)")
	only := fs.String("only", "", "comma-separated parts to run: "+strings.Join(parts, ","))
	fs.StringVar(&o.dir, "dir", "", "work directory (on the disk to measure; default a new temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (with the daemon's logs)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the in-process box, store and link) to FILE")
	fs.BoolVar(&o.brokerLimits, "broker-limits", false, "keep mosquitto's default max_inflight_messages (20) and max_queued_messages (1000)")
	verbose := fs.Bool("v", false, "log the MQTT link's warnings")
	oneCoreToo := fs.Bool("one-core", false, "measure every figure a second time pinned to one core with GOMAXPROCS=1 (a Pi-class proxy)")
	rowsJSON := fs.Bool("rows-json", false, "print the rows as JSON only (the one-core child's output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			if !slices.Contains(parts, p) {
				return fmt.Errorf("-only: unknown part %q (want %s)", p, strings.Join(parts, ","))
			}
			o.only[p] = true
		}
	}
	o.progress = func(format string, args ...any) {
		fmt.Fprintf(stderr, "smartbench: "+format+"\n", args...)
	}
	o.log = slog.New(slog.DiscardHandler)
	if *verbose {
		o.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, o)
	if err != nil {
		return err
	}
	if *rowsJSON {
		return rep.writeRows(stdout)
	}
	if *oneCoreToo {
		o.progress("measuring again on one core")
		if err := oneCore(ctx, rep, args, stderr); err != nil {
			return err
		}
	}
	return rep.write(stdout)
}

// bench runs every part o asks for and reports the figures.
func bench(ctx context.Context, o options) (*report, error) {
	if o.codes < 2 || o.events < 1 {
		return nil, errors.New("at least 2 codes and 1 event")
	}
	logf := o.progress
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	work := o.dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "smartbench-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	began := time.Now()
	rep := &report{}
	rep.note("codes", o.codes)
	rep.note("events", o.events)

	if o.runs("keypad") {
		logf("keypad: storing %d codes", o.codes)
		r, err := benchEntries(ctx, work, o.codes, o.checkCycles, o.durableCycles, logf)
		if err != nil {
			return nil, err
		}
		addEntryRows(rep, r)
	}
	if o.runs("snapshot") {
		logf("snapshot: %d codes", o.codes)
		r, err := benchSnapshot(ctx, work, o.codes, o.snapshotReps, logf)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		rep.add(row{key: "snapshot", path: fmt.Sprintf("snapshot (%d codes)", o.codes), unit: "ms",
			daemon: ms(r.daemon.median()), baseline: ms(r.baseline.median()), goal: ratioAtMost, limit: 2})
		rep.note("snapshot_payload_bytes", r.payloadBytes)
		rep.note("snapshot_records", r.records)
		rep.note("snapshot_parse_command_ms", round(ms(r.parse.median())))
		rep.note("snapshot_keypad_entries", len(r.keypad))
		rep.note("snapshot_keypad_p50_ms", round(ms(r.keypad.median())))
		rep.note("snapshot_keypad_p99_ms", round(ms(r.keypad.quantile(0.99))))
		rep.note("snapshot_keypad_max_ms", round(ms(r.keypad.quantile(1))))
	}

	if o.runs("trust") {
		logf("trust: signed commands and sealed codes")
		r, err := benchTrust(work, max(o.checkCycles, 200))
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		rep.add(row{key: "signed_command_verify", path: "signed command read and verified", unit: "us",
			daemon: us(r.verify.median()), baseline: us(r.verifyBare.median()), goal: ratioAtMost, limit: 1.5})
		rep.add(row{key: "sealed_code_open", path: "sealed code opened", unit: "us",
			daemon: us(r.open.median()), baseline: us(r.openBare.median()), goal: ratioAtMost, limit: 1.5})
		o48, err := benchOffline(max(o.checkCycles/10, 50))
		if err != nil {
			return nil, fmt.Errorf("offline: %w", err)
		}
		rep.add(row{key: "offline_check_48", path: "offline code tag check, 48 keys in", unit: "us",
			daemon: us(o48.match48.median()), baseline: us(o48.bare48.median()), goal: ratioAtMost, limit: 1.5})
		rep.add(row{key: "offline_check_1000", path: "offline code tag check, 1,000 keys", unit: "us",
			daemon: us(o48.match1000.median()), baseline: us(o48.bare1000.median()), goal: ratioAtMost, limit: 1.5})
	}

	var template string
	if o.runs("drain") || o.runs("daemon") {
		template = filepath.Join(work, "template")
		logf("preparing a data directory: %d codes, %d queued events", o.codes, o.events)
		snap, err := snapshotData(o.codes, time.Now(), "prepared")
		if err != nil {
			return nil, err
		}
		if err := prepareDataDir(ctx, template, snap, o.events); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if fi, err := os.Stat(filepath.Join(template, "smartbox.db")); err == nil {
			rep.add(row{key: "db_file", path: fmt.Sprintf("database file (%d codes, %d events)", o.codes, o.events), unit: "MiB",
				daemon: float64(fi.Size()) / (1 << 20), goal: valueAtMost, limit: 48})
		}
	}
	var mq *mqtttest.Broker
	if o.runs("drain") || o.runs("daemon") {
		var err error
		opts := []mqtttest.Option{mqtttest.WithoutPersistence()}
		if o.brokerLimits {
			opts = append(opts, mqtttest.WithMosquittoLimits())
		}
		if mq, err = mqtttest.Launch(filepath.Join(work, "mosquitto"), opts...); err != nil {
			return nil, err
		}
		defer mq.Stop()
	}
	if o.runs("drain") {
		r, err := benchDrain(ctx, work, template, mq.URL(), o.drainReps, o.inFlight, !o.brokerLimits, o.log, logf)
		if err != nil {
			return nil, fmt.Errorf("outbox drain: %w", err)
		}
		drain := row{key: "outbox_drain", path: fmt.Sprintf("outbox drain (%d events, QoS 1)", r.events), unit: "per_s",
			daemon: medianFloat(r.daemon), baseline: medianFloat(r.baseline), goal: ratioAtLeast, limit: 0.9}
		if o.brokerLimits {
			drain.goal, drain.note = reportOnly, "report (broker limits: no bare loop)"
		}
		rep.add(drain)
		rep.note("outbox_drain_in_flight", r.inFlight)
		rep.note("broker_default_limits", o.brokerLimits)
		rep.note("outbox_drain_cloud_ack_every", ackEvery)
		rep.note("outbox_drain_duplicates", r.dups)
		rep.note("outbox_drain_empty_after_last_ack_ms", round(ms(r.emptyAfter.median())))
	}

	var root string
	if o.runs("daemon") || (o.runs("binary") && !o.skipBinarySize) {
		var err error
		if root, err = moduleRoot(ctx); err != nil {
			return nil, err
		}
	}
	if o.runs("daemon") {
		logf("building smartboxd")
		bin := filepath.Join(work, "smartboxd")
		if err := goBuild(ctx, root, bin); err != nil {
			return nil, err
		}
		r, err := benchProcess(ctx, bin, work, template, mq.URL(), o.startupReps, logf)
		if err != nil {
			return nil, err
		}
		rep.add(row{key: "startup", path: "start-up to online", unit: "ms", daemon: ms(r.startup.median()), note: "aim ≤ 300 ms"})
		rep.add(row{key: "rss_online", path: "memory: RSS at online", unit: "MiB", daemon: kibToMiB(medianInt(r.rssOnline)), goal: valueAtMost, limit: 48})
		rep.add(row{key: "rss_draining", path: "memory: RSS draining (max)", unit: "MiB", daemon: kibToMiB(medianInt(r.rssMax)), goal: valueAtMost, limit: 48})
		rep.add(row{key: "rss_anon_draining", path: "  of which RssAnon (max)", unit: "MiB", daemon: kibToMiB(medianInt(r.anonMax))})
		rep.add(row{key: "rss_file_draining", path: "  of which RssFile (max)", unit: "MiB", daemon: kibToMiB(medianInt(r.fileMax))})
		rep.add(row{key: "rss_peak", path: "memory: RSS peak (VmHWM)", unit: "MiB", daemon: kibToMiB(medianInt(r.hwm))})
		heapNote := "report (gctrace, whole MB)"
		peak, live := medianInt(r.heapPeak), medianInt(r.heapLive)
		if peak < 0 {
			heapNote = "report (no GC ran: under 4 MB)"
		}
		rep.add(row{key: "go_heap_peak", path: "memory: Go heap at GC start (max)", unit: "MiB", daemon: float64(max(peak, 0)), note: heapNote})
		rep.add(row{key: "go_heap_live", path: "memory: Go heap live after GC (max)", unit: "MiB", daemon: float64(max(live, 0)), note: heapNote})
		rep.note("gc_runs", r.gcs)
		rep.note("startup_samples_ms", roundAll(r.startup))
		rep.note("daemon_drain_per_s", round(medianFloat(r.drain)))
	}
	if o.runs("binary") && !o.skipBinarySize {
		logf("building smartboxd for linux/arm (GOARM=7)")
		size, err := binarySize(ctx, root, work)
		if err != nil {
			return nil, err
		}
		rep.add(row{key: "binary_linux_armv7", path: "binary: stripped linux/arm v7", unit: "MiB",
			daemon: float64(size) / (1 << 20), goal: valueAtMost, limit: 15})
		rep.note("binary_linux_armv7_bytes", size)
	}
	rep.note("run_seconds", round(time.Since(began).Seconds()))
	return rep, nil
}

// addEntryRows reports the keypad paths.
func addEntryRows(rep *report, r *entryResult) {
	c, d := r.check, r.durable
	q := func(key, path string, s, base samples, p, limit float64) {
		rep.add(row{key: key, path: path, unit: "us", daemon: us(s.quantile(p)), baseline: us(base.quantile(p)),
			goal: ratioAtMost, limit: limit})
	}
	q("code_check_wrong_p50", "code check, wrong code p50", c.wrongStaged, c.baseWrong, 0.5, 1.5)
	q("code_check_wrong_p99", "code check, wrong code p99", c.wrongStaged, c.baseWrong, 0.99, 2)
	q("code_check_right_p50", "code check, right code p50", c.rightStaged, c.baseR, 0.5, 1.5)
	q("code_check_right_p99", "code check, right code p99", c.rightStaged, c.baseR, 0.99, 2)
	rep.add(row{key: "committed_nosync_wrong", path: "  committed (no fsync), wrong code p50", unit: "us",
		daemon: us(c.wrong.median()), baseline: us(r.commitFloor.median()), note: "report: vs a bare commit"})
	rep.add(row{key: "committed_nosync_right", path: "  committed (no fsync), right code p50", unit: "us",
		daemon: us(c.right.median()), baseline: us(r.commitFloor.median()), note: "report: vs a bare commit"})
	q("durable_decision_wrong", "durable decision, wrong code p50", d.wrong, d.baseWrong, 0.5, 1.3)
	q("durable_decision_right", "durable decision, right code p50", d.right, d.baseR, 0.5, 1.3)
	rep.note("code_check_entries", len(c.wrong)+len(c.right))
	rep.note("durable_decision_entries", len(d.wrong)+len(d.right))
	rep.note("committed_nosync_wrong_p99_us", round(us(c.wrong.quantile(0.99))))
	rep.note("committed_nosync_right_p99_us", round(us(c.right.quantile(0.99))))
	rep.note("durable_decision_wrong_p99_us", round(us(d.wrong.quantile(0.99))))
	rep.note("durable_decision_right_p99_us", round(us(d.right.quantile(0.99))))
	rep.note("durable_decision_baseline_p99_us", round(us(d.baseWrong.quantile(0.99))))
}

func medianInt(xs []int64) int64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return int64(medianFloat(f))
}

func kibToMiB(k int64) float64 { return float64(k) / 1024 }

func roundAll(s samples) []float64 {
	out := make([]float64, len(s))
	for i, d := range s {
		out[i] = round(ms(d))
	}
	return out
}
