package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/device"
	"smartboxd/firmware"
	"smartboxd/internal/atomicfile"
	"smartboxd/internal/config"
	"smartboxd/sync/mqttlink"
	"smartboxd/trust"
)

// errRelaunch is serve's way of saying the installed binary is to start
// again in this process (an update was installed, or a trial failed).
var errRelaunch = errors.New("relaunch")

// trialPoll is how often a trial looks at the link's health.
const trialPoll = 250 * time.Millisecond

// handover runs the newest committed or trial firmware of the config's
// data directory in this process's place (see firmware.Handover). It reads
// only data_dir, leniently: newer firmware may take a config this binary
// does not. Whatever fails here, this binary runs itself.
func handover(path string, args []string, stderr io.Writer) {
	dir, err := config.DataDirOf(path)
	if err != nil {
		return // config.Load reports it
	}
	if err := firmware.Handover(dir, version, args); err != nil {
		fmt.Fprintln(stderr, "smartboxd: firmware hand-over failed; running", version+":", err)
	}
}

// newUpdater is the daemon's firmware updater.
func newUpdater(cfg *config.Config, clock clockwork.Clock, log *slog.Logger) (*firmware.Updater, error) {
	var keys []ed25519.PublicKey
	for i, k := range cfg.Trust.ReleaseKeys {
		pub, err := trust.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("trust.release_keys[%d]: %w", i, err)
		}
		keys = append(keys, pub)
	}
	return firmware.New(firmware.Config{
		DataDir: cfg.DataDir, ReleaseKeys: keys, Running: version,
		Installed: os.Getenv(firmware.EnvInstalledVersion), HandedOver: os.Getenv(firmware.EnvHandover) != "",
		Clock: clock, Logger: log,
	})
}

// trialGate is the component of a version on trial: it commits the trial
// once the link is online and the cloud acked, or, at the deadline,
// records the failure and relaunches (a second failed start rolls back).
func trialGate(u *firmware.Updater, box *device.Box, link *mqttlink.Link, trial time.Duration, clock clockwork.Clock,
	relaunch func(), log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		health := func() firmware.Health {
			if link == nil {
				return firmware.Health{}
			}
			s := link.Stats()
			return firmware.Health{Online: s.Connected, Acked: s.Acks > 0}
		}
		log.Info("firmware on trial", "version", u.Running(), "deadline", trial)
		err := firmware.WaitHealthy(ctx, clock, trial, trialPoll, health)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if err := box.CommitFirmware(ctx); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			if link != nil {
				link.StatusChanged()
			}
			return nil
		}
		log.Error("firmware trial failed", "version", u.Running(), "err", err)
		if err := box.TrialFailed(ctx, err); err != nil {
			log.Error("firmware trial failure not recorded", "err", err)
		}
		relaunch()
		return nil
	}
}

// releaseCommand is `smartboxd release sign -key K -version V FILE`: it
// prints the manifest JWS of FILE signed with the release key K and
// writes it to FILE.manifest.
func releaseCommand(args []string, stdout, stderr io.Writer) error {
	usage := errors.New("usage: smartboxd release sign -key KEYFILE -version MAJOR.MINOR.PATCH FILE")
	if len(args) == 0 || args[0] != "sign" {
		return &exitError{code: 2, err: usage}
	}
	fs := flag.NewFlagSet("smartboxd release sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "the release signing key (smartboxd keygen -release)")
	ver := fs.String("version", "", "the release's version, MAJOR.MINOR.PATCH")
	if err := fs.Parse(args[1:]); err != nil {
		return &exitError{code: 2, err: errors.New("")}
	}
	if *keyFile == "" || *ver == "" || fs.NArg() != 1 {
		return &exitError{code: 2, err: usage}
	}
	v, err := firmware.ParseVersion(*ver)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	keyText, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	priv, err := trust.ParsePrivateKey(string(keyText))
	if err != nil {
		return fmt.Errorf("release: %s: %w", *keyFile, err)
	}
	file := fs.Arg(0)
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if n < 1 || n > firmware.MaxSize {
		return fmt.Errorf("release: %s is %d bytes, want 1 to %d", file, n, firmware.MaxSize)
	}
	jws := firmware.SignManifest(priv, firmware.Manifest{Version: v, SHA256: [32]byte(h.Sum(nil)), Size: n})
	if err := atomicfile.WriteFile(file+".manifest", []byte(jws+"\n"), 0o644); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	fmt.Fprintln(stdout, jws)
	return nil
}
