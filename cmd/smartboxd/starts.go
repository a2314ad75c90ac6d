package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"smartboxd/internal/atomicfile"
	"smartboxd/store"
)

// Unclean starts are counted in a file beside the database, not in it: a
// database that kills the daemon cannot be trusted to count.
const (
	startsFile = "starts"
	// safeAfter unclean starts in a row put the box in safe mode.
	safeAfter = 3
	// cleanAfter of running counts as a good start.
	cleanAfter = 10 * time.Minute
	// backupEvery is how often the database is backed up (and after
	// each snapshot).
	backupEvery = 24 * time.Hour
)

// countStart returns how many starts in a row before this one did not end
// in a clean stop, and counts this one. A missing or unreadable counter
// counts as none.
func countStart(dir string) (int, error) {
	path := filepath.Join(dir, startsFile)
	n := 0
	if raw, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		n = max(n, 0)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("start counter: %w", err)
	}
	if err := atomicfile.WriteFile(path, []byte(strconv.Itoa(n+1)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("start counter: %w", err)
	}
	return n, nil
}

// resetStarts marks the current start as good.
func resetStarts(dir string) error {
	return atomicfile.WriteFile(filepath.Join(dir, startsFile), []byte("0\n"), 0o600)
}

// forgetStarts resets the counter once the daemon has run cleanAfter.
func forgetStarts(ctx context.Context, dir string, clock clockwork.Clock, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		return nil
	case <-clock.After(cleanAfter):
	}
	if err := resetStarts(dir); err != nil {
		log.Error("start counter not reset", "err", err)
	}
	<-ctx.Done()
	return nil
}

// backupLoop backs the database up to <data_dir>/backup: when the last
// backup is a day old (or missing), then daily, and after each snapshot.
func backupLoop(ctx context.Context, db *store.DB, dir string, snapshots <-chan struct{}, clock clockwork.Clock, log *slog.Logger) error {
	backup := func(why string) {
		start := clock.Now()
		if err := db.Backup(dir); err != nil {
			log.Error("backup failed", "err", err)
			return
		}
		log.Info("database backed up", "why", why, "took", clock.Since(start).Round(time.Millisecond))
	}
	next := backupEvery
	if last := store.BackupTime(dir); !last.IsZero() {
		next = max(0, backupEvery-clock.Since(last))
	} else {
		next = 0
	}
	timer := clock.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.Chan():
			backup("daily")
		case <-snapshots:
			backup("snapshot")
		}
		timer.Reset(backupEvery)
	}
}
