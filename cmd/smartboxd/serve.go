package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.bug.st/serial"
	"golang.org/x/sync/errgroup"

	"smartboxd/console"
	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/fob"
	"smartboxd/internal/atomicfile"
	"smartboxd/internal/config"
	"smartboxd/internal/sdnotify"
	"smartboxd/internal/sysclock"
	"smartboxd/keypad"
	"smartboxd/locks"
	"smartboxd/store"
	"smartboxd/sync/mqttlink"
)

// faults are hooks that a test build (-tags faults) sets to inject
// failures; in the daemon they change nothing.
var faults = struct {
	store  func(*store.DB) device.Store // the store the decision loop gets
	halted func(hw *hardware, energised []int)
}{
	store:  func(db *store.DB) device.Store { return db },
	halted: func(*hardware, []int) {},
}

// component is one part of the daemon with a Run(ctx) error.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// serve runs the daemon until ctx ends. Every lock is driven inert before
// anything else, and again on the way out, panics included.
func serve(ctx context.Context, cfg *config.Config, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	clock := clockwork.NewRealClock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var relaunching atomic.Bool
	relaunch := func() { relaunching.Store(true); cancel() }

	hw, err := openHardware(cfg, boardEnv)
	if err != nil {
		return err
	}
	// Registered before the lock bank's Halt, so run after it: the bank
	// de-energises its locks first, then every expander pin goes inert.
	defer hw.close()
	sink := &lockSink{}
	lockActive, _ := locks.ParsePolarity(cfg.Hardware.LockActive)
	doorOpen, _ := locks.ParsePolarity(cfg.Hardware.DoorOpen)
	bank, err := locks.New(locks.Config{
		Bins: hw.bins, LockActive: lockActive, DoorOpen: doorOpen,
		Pulse: cfg.Timing.LockPulse(), Rest: cfg.Timing.LockRest(), MaxEnergised: cfg.Timing.MaxEnergised,
		DoorDebounce: cfg.Timing.DoorDebounce(), HeldOpen: cfg.Timing.DoorHeldOpen(),
		Clock: clock, Logger: log.With("part", "locks"), Sink: sink,
	})
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	defer bank.Halt()
	defer func() {
		if r := recover(); r != nil {
			bank.Halt()
			panic(r)
		}
	}()
	if hw.sim != nil {
		hw.sim.SetDoorPolarity(doorOpen)
	}
	var gst *guest
	if cfg.Hardware.Display.Type != "none" || len(hw.leds) > 0 {
		if gst, err = openGuest(cfg, hw, clock, log); err != nil {
			return err
		}
	}

	if err := atomicfile.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	unclean, err := countStart(cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err == nil { // a clean stop: the count starts again
			if e := resetStarts(cfg.DataDir); e != nil {
				log.Error("start counter not reset", "err", e)
			}
		}
	}()
	safe := unclean >= safeAfter
	if safe {
		log.Error("starting in safe mode: the keypad is off", "unclean_starts", unclean)
	}
	rec, err := store.Recover(cfg.DataDir, clock.Now())
	if err != nil {
		return err
	}
	if rec != nil {
		log.Error("database corrupt: moved aside", "moved_to", rec.MovedTo, "started_on", rec.From, "problem", rec.Problem)
	}

	// The identity is made before the database, so a database on disk
	// always has the identity whose seal_key it may have published.
	identity, err := loadIdentity(cfg)
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.DataDir, store.Options{BoxID: cfg.BoxID, MaxEvents: cfg.Outbox.MaxEvents, Replies: cfg.Limits.Replies})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := reportStart(db, rec, unclean, safe, clock.Now()); err != nil {
		return err
	}

	trustCfg, err := boxTrust(cfg, identity)
	if err != nil {
		return err
	}

	updater, err := newUpdater(cfg, clock, log.With("part", "firmware"))
	if err != nil {
		return err
	}

	var fb *keypad.Buzzer
	if hw.buzzer != nil {
		fb = keypad.NewBuzzer(hw.buzzer, clock, log.With("part", "buzzer"))
		defer fb.Halt()
	}
	bootID := randomHex(8)
	boxCfg := device.Config{
		BoxID: cfg.BoxID, Version: version, BootID: bootID,
		FobAbsent:       cfg.Timing.FobAbsent(),
		DropoffTimeout:  cfg.Timing.DropoffTimeout(),
		InventorySettle: cfg.Timing.InventorySettle(),
		LateAfter:       cfg.Timing.LateAfter(),
		LockoutAfter:    cfg.Security.LockoutAfter,
		LockoutBase:     time.Duration(cfg.Security.LockoutS) * time.Second,
		LockoutMax:      time.Duration(cfg.Security.LockoutMaxS) * time.Second,
		LockoutWindow:   time.Duration(cfg.Security.LockoutWindowS) * time.Second,
		LockoutDecay:    time.Duration(cfg.Security.LockoutDecayS) * time.Second,
		RequireSync:     cfg.Clock.RequiresSync(),
		Synced:          sysclock.Synced,
		MaxAccessCodes:  cfg.Limits.MaxAccessCodes,
		Limits:          contract.Limits{MaxPayload: cfg.MQTT.MaxPayloadKB << 10, MaxSnapshotPayload: cfg.MQTT.SnapshotMaxMB << 20},
		Trust:           trustCfg,
		MaxKeys:         cfg.Limits.MaxKeys,
		Mode:            map[bool]string{false: contract.ModeNormal, true: contract.ModeSafe}[safe],
		Firmware:        updater,
		Relaunch:        relaunch,
		Store:           faults.store(db),
		Locks:           bank,
		Clock:           clock,
		Logger:          log.With("part", "device"),
	}
	boxCfg.RemovedRetention = time.Duration(cfg.Limits.RemovedRetentionS) * time.Second
	if fb != nil {
		boxCfg.Feedback = fb
	}
	if gst != nil {
		boxCfg.Guest = gst.panel
	}
	for _, b := range cfg.Hardware.Bins {
		spec := device.BinSpec{ID: b.ID, HasDoor: bank.HasDoor(b.ID)}
		if r := cfg.ReaderForBin(b.ID); r != nil {
			spec.Reader = readerName(*r)
		}
		boxCfg.Bins = append(boxCfg.Bins, spec)
	}
	if rec != nil {
		boxCfg.StoreRestored = rec.From
	}
	backups := make(chan struct{}, 1)
	boxCfg.SnapshotApplied = func() {
		select {
		case backups <- struct{}{}:
		default:
		}
	}
	box, err := device.New(boxCfg)
	if err != nil {
		return err
	}
	sink.box = box

	comps := []component{{"locks", bank.Run}, {"device", box.Run},
		{"backup", func(ctx context.Context) error {
			return backupLoop(ctx, db, cfg.DataDir, backups, clock, log.With("part", "backup"))
		}},
		{"starts", func(ctx context.Context) error { return forgetStarts(ctx, cfg.DataDir, clock, log) }}}
	if gst != nil {
		comps = append(comps, component{"display", gst.panel.Run})
	}
	monitor, err := openPower(cfg, hw, box, clock, log)
	if err != nil {
		return err
	}
	if monitor != nil {
		comps = append(comps, component{"power", monitor.Run})
	}
	readers, err := openReaders(cfg, hw, box, clock, log)
	if err != nil {
		return err
	}
	var readerStats []func() fob.Stats
	for _, r := range readers {
		comps = append(comps, component{"reader " + r.name, r.run})
		readerStats = append(readerStats, r.stats)
	}
	var entries keypad.Sink = box
	if safe {
		entries = offKeypad{}
	}
	kcfg := keypad.CollectorConfig{Timeout: cfg.Timing.KeyTimeout(), Clock: clock, Feedback: feedbackOrNil(fb), Logger: log.With("part", "keypad")}
	if gst != nil {
		kcfg.Typed = gst.panel.Typed // the number of digits, never the digits
	}
	collector := keypad.NewCollector(entries, kcfg)
	kp, err := openKeypad(cfg, hw, collector, log)
	if err != nil {
		return err
	}
	if kp != nil && !safe {
		comps = append(comps, *kp)
	}

	var link *mqttlink.Link
	if len(cfg.MQTT.BrokerURLs()) > 0 {
		if link, err = newLink(cfg, box, db, bootID, identity.Public(), updater.Status, clock, log); err != nil {
			return err
		}
		comps = append(comps, component{"mqtt", link.Run})
	}
	if updater.OnTrial() {
		comps = append(comps, component{"firmware trial", trialGate(updater, box, link, cfg.Firmware.Trial(), clock, relaunch, log.With("part", "firmware"))})
	}

	var stdioConsole func(context.Context)
	if cfg.Console.Port != "" {
		con, err := newConsole(cfg, box, db, collector, hw, gst, link, readerStats, bootID, clock, log)
		if err != nil {
			return err
		}
		if cfg.Console.Port == "stdio" {
			// A blocked read of the terminal cannot be ended; the process
			// does not wait for it.
			stdioConsole = func(ctx context.Context) {
				if err := con.Serve(ctx, stdio{}); err != nil && ctx.Err() == nil {
					log.Error("console", "err", err)
				}
			}
		} else {
			run, err := serialConsole(con, cfg.Console, log)
			if err != nil {
				return err
			}
			comps = append(comps, component{"console", run})
		}
	}

	// A panic in any of them drives every lock inert before the process
	// goes: a coil mid-pulse on memory-mapped GPIO would stay driven.
	halt := func() {
		energised := bank.Energised
		var before []int
		for _, id := range bank.Bins() {
			if energised(id) {
				before = append(before, id)
			}
		}
		bank.Halt()
		faults.halted(hw, before)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range comps {
		g.Go(guarded(c.name, halt, log, func() error {
			if err := c.run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		}))
	}
	if stdioConsole != nil {
		go func() { _ = guarded("console", halt, log, func() error { stdioConsole(gctx); return nil })() }()
	}
	g.Go(guarded("supervise", halt, log, func() error { return supervise(gctx, box, log) }))
	log.Info("smartboxd started", "box_id", cfg.BoxID, "version", version, "boot_id", bootID, "backend", cfg.Hardware.Backend, "bins", len(cfg.Hardware.Bins))
	err = g.Wait()
	if !relaunching.Load() {
		// A relaunch keeps the service running: the same pid starts again.
		sdnotify.Stopping()
	}
	bank.Halt()
	if err != nil {
		return err
	}
	if relaunching.Load() {
		log.Info("smartboxd stopped to relaunch")
		return errRelaunch
	}
	log.Info("smartboxd stopped")
	return nil
}

// guarded runs fn, turning a panic into an error after halt has driven
// every lock inert, so that the daemon stops as after any other failure
// (and systemd restarts it).
func guarded(name string, halt func(), log *slog.Logger, fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				halt()
				log.Error("panic: every lock halted; stopping", "part", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("%s: panic: %v", name, r)
			}
		}()
		return fn()
	}
}

// offKeypad takes the keypad's entries in safe mode, and drops them.
type offKeypad struct{}

func (offKeypad) KeypadEntry(string) {}

// reportStart records how this start found the database, and safe mode.
func reportStart(db *store.DB, rec *store.Recovery, unclean int, safe bool, now time.Time) error {
	if rec == nil && !safe {
		return nil
	}
	return db.Update(func(tx *store.Tx) error {
		if rec != nil {
			r := contract.StoreRestored{From: rec.From, MovedTo: filepath.Base(rec.MovedTo), Problem: rec.Problem}
			if !rec.BackupAt.IsZero() {
				r.BackupAt = &rec.BackupAt
			}
			if _, err := tx.Append(contract.EventStoreRestored, now, r); err != nil {
				return err
			}
		}
		if safe {
			if _, err := tx.Append(contract.EventSafeMode, now, contract.SafeMode{UncleanStarts: unclean}); err != nil {
				return err
			}
		}
		return nil
	})
}

// supervise tells systemd the daemon is ready once the decision loop serves,
// and feeds the watchdog only while the loop answers: a wedged loop stops
// the feeding, and systemd restarts the daemon.
func supervise(ctx context.Context, box *device.Box, log *slog.Logger) error {
	interval := sdnotify.WatchdogInterval()
	probe := 5 * time.Second
	if interval > 0 {
		probe = interval / 2
	}
	ready := false
	tick := time.NewTicker(max(interval/2, 50*time.Millisecond))
	defer tick.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, probe)
		err := box.Flush(fctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("decision loop does not answer; not feeding the watchdog", "err", err)
		case !ready:
			ready = true
			sdnotify.Ready()
		case interval > 0:
			sdnotify.Watchdog()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// lockSink passes the lock bank's reports to the box, which is made after
// the bank (the bank must exist first, to drive every lock inert).
type lockSink struct{ box *device.Box }

func (s *lockSink) LockChanged(bin int, on bool)   { s.box.LockChanged(bin, on) }
func (s *lockSink) DoorChanged(bin int, open bool) { s.box.DoorChanged(bin, open) }
func (s *lockSink) OpenFailed(bin int)             { s.box.OpenFailed(bin) }
func (s *lockSink) DoorHeldOpen(bin int)           { s.box.DoorHeldOpen(bin) }
func (s *lockSink) DoorForced(bin int)             { s.box.DoorForced(bin) }

var (
	_ locks.Sink   = (*lockSink)(nil)
	_ mqttlink.Box = (*device.Box)(nil)
)

func feedbackOrNil(b *keypad.Buzzer) keypad.Feedback {
	if b == nil {
		return nil
	}
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func readerName(r config.Reader) string {
	switch r.Type {
	case "rdm6300":
		return r.Port
	case "wiegand":
		return "wiegand:" + r.D0 + "/" + r.D1
	case "mfrc522":
		return r.SPI
	}
	return fmt.Sprintf("sim:%d", r.Bin)
}

// reader is one running fob reader.
type reader struct {
	name  string
	run   func(ctx context.Context) error
	stats func() fob.Stats
}

// openReaders opens every configured reader. A serial port that cannot be
// opened stops start-up, naming the port.
func openReaders(cfg *config.Config, hw *hardware, sink fob.Sink, clock clockwork.Clock, log *slog.Logger) ([]reader, error) {
	var out []reader
	for _, rc := range cfg.Readers {
		name := readerName(rc)
		switch rc.Type {
		case "rdm6300":
			port, baud := rc.Port, rc.Baud
			r, err := fob.NewSerialReader(fob.SerialConfig{
				Name: name, Bin: rc.Bin, Sink: sink, AbsentAfter: cfg.Timing.FobAbsent(), Clock: clock,
				Logger: log.With("part", "reader", "reader", name),
				Open: func() (io.ReadCloser, error) {
					return serial.Open(port, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
				},
			})
			if err != nil {
				return nil, fmt.Errorf("reader on %s: %w", port, err)
			}
			out = append(out, reader{name, r.Run, r.Stats})
		case "wiegand":
			r, err := hw.wiegandReader(rc, name, sink, cfg.Timing.FobAbsent(), clock, log)
			if err != nil {
				return nil, err
			}
			out = append(out, reader{name, r.Run, r.Stats})
		case "mfrc522":
			r, err := hw.mfrc522Reader(rc, sink, cfg.Timing.FobAbsent(), clock, log)
			if err != nil {
				return nil, err
			}
			out = append(out, reader{name, r.Run, r.Stats})
		case "sim":
			// Nothing to run: the console's sim commands are this reader.
			bin := rc.Bin
			out = append(out, reader{name, func(ctx context.Context) error { <-ctx.Done(); return nil },
				func() fob.Stats { return fob.Stats{Name: name, Type: "sim", Bin: bin} }})
		}
	}
	return out, nil
}

// openKeypad starts the configured keypad driver feeding the collector.
func openKeypad(cfg *config.Config, hw *hardware, keys *keypad.Collector, log *slog.Logger) (*component, error) {
	kc := cfg.Keypad
	switch kc.Type {
	case "serial":
		mode := &serial.Mode{BaudRate: kc.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
		port, err := serial.Open(kc.Port, mode)
		if err != nil {
			return nil, fmt.Errorf("keypad on %s: %w", kc.Port, err)
		}
		return &component{"keypad", func(ctx context.Context) error {
			return reopenLoop(ctx, log.With("part", "keypad", "port", kc.Port), port,
				func() (serial.Port, error) { return serial.Open(kc.Port, mode) },
				func(ctx context.Context, p serial.Port) error {
					return keypad.NewSerial(p, keys, log.With("part", "keypad")).Run(ctx)
				})
		}}, nil
	case "wiegand", "matrix":
		return hw.gpioKeypad(kc, keys, log)
	}
	return nil, nil // sim (the console presses keys) or none
}

// reopenLoop runs serve on a serial port, closing it when ctx ends (which is
// how a blocked Read ends) and reopening it with backoff when it fails.
func reopenLoop(ctx context.Context, log *slog.Logger, port serial.Port, open func() (serial.Port, error), serve func(context.Context, serial.Port) error) error {
	backoff := 100 * time.Millisecond
	for {
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				port.Close()
			case <-done:
			}
		}()
		err := serve(ctx, port)
		close(done)
		port.Close()
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("serial port failed; reopening", "err", err)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			p, err := open()
			if err == nil {
				port, backoff = p, 100*time.Millisecond
				log.Info("serial port back")
				break
			}
		}
	}
}

func newLink(cfg *config.Config, box *device.Box, db *store.DB, bootID, sealKey string, fw func() contract.Firmware, clock clockwork.Clock, log *slog.Logger) (*mqttlink.Link, error) {
	m := cfg.MQTT
	pw, err := m.Password()
	if err != nil {
		return nil, err
	}
	lc := mqttlink.Config{
		Brokers: m.BrokerURLs(), TopicPrefix: m.TopicPrefix, BoxID: cfg.BoxID, ClientID: m.ClientID,
		Username: m.Username, Password: pw, Ack: m.Ack,
		KeepAlive: time.Duration(m.KeepAliveS) * time.Second, InFlight: m.InFlight,
		Version: version, BootID: bootID, SealKey: sealKey, Firmware: fw, Clock: clock, Logger: log.With("part", "mqtt"),
	}
	lc.ReconnectMax = time.Duration(m.ReconnectMaxS) * time.Second
	lc.ReconnectMin = time.Duration(m.ReconnectMinS) * time.Second
	if m.TLS.CAFile != "" || m.TLS.CertFile != "" {
		if lc.TLS, err = mqttlink.TLSConfig(m.TLS.CAFile, m.TLS.CertFile, m.TLS.KeyFile); err != nil {
			return nil, fmt.Errorf("mqtt.tls: %w", err)
		}
	}
	return mqttlink.New(lc, box, db)
}

func newConsole(cfg *config.Config, box *device.Box, db *store.DB, keys *keypad.Collector, hw *hardware, gst *guest, link *mqttlink.Link,
	readers []func() fob.Stats, bootID string, clock clockwork.Clock, log *slog.Logger) (*console.Console, error) {
	cc := console.Config{
		Box: box, PINHash: cfg.Console.TechnicianPINHash,
		Events: db.Recent, Outbox: db.OutboxStats,
		Readers: func() []fob.Stats {
			out := make([]fob.Stats, len(readers))
			for i, f := range readers {
				out[i] = f()
			}
			return out
		},
		Version: version, BootID: bootID, BoxID: cfg.BoxID,
		IdleLogout: time.Duration(cfg.Console.IdleLogoutS) * time.Second,
		Clock:      clock, Logger: log.With("part", "console"),
	}
	if link != nil {
		cc.Sync = func() console.SyncStatus {
			s := link.Stats()
			return console.SyncStatus{Connected: s.Connected, Broker: s.Broker, LastAck: s.LastAck, InFlight: s.InFlight,
				Published: s.Published, Reconnects: s.Reconnects, LastError: s.LastError}
		}
	}
	if hw.sim != nil {
		cc.Sim = &console.Sim{Press: keys.Press, Door: hw.sim.SetDoor}
	}
	if gst != nil {
		cc.Display = gst.status
	}
	return console.New(cc)
}

// serialConsole opens the console's port now, so that a port that cannot
// be opened stops start-up, and returns the component that serves it.
func serialConsole(con *console.Console, cc config.Console, log *slog.Logger) (func(context.Context) error, error) {
	mode := &serial.Mode{BaudRate: cc.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	port, err := serial.Open(cc.Port, mode)
	if err != nil {
		return nil, fmt.Errorf("console on %s: %w", cc.Port, err)
	}
	return func(ctx context.Context) error {
		return reopenLoop(ctx, log.With("part", "console", "port", cc.Port), port,
			func() (serial.Port, error) { return serial.Open(cc.Port, mode) },
			func(ctx context.Context, p serial.Port) error {
				err := con.Serve(ctx, p)
				if err == nil && ctx.Err() == nil {
					err = errors.New("console session ended")
				}
				return err
			})
	}, nil
}

// stdio is the terminal as the console's stream.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
