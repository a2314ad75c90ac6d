package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"smartboxd/internal/atomicfile"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BackupDir is the folder of the hot backup inside the data directory; the
// backup itself is BackupDir/DBFile.
const BackupDir = "backup"

// Bounds of CheckFile.
const (
	// FullCheckMax is the largest file CheckFile checks page by page;
	// a larger one gets the quick check (every bucket read, not every
	// page), so that start-up stays bounded.
	FullCheckMax = 512 << 20
	// maxProblems is how many problems CheckFile lists.
	maxProblems = 20
)

// ErrCorrupt is returned (wrapped) by CheckFile for a database file that
// bbolt cannot open or whose consistency check fails.
var ErrCorrupt = errors.New("store: database is corrupt")

// CheckFile opens the database file at path read-only and runs bbolt's
// consistency check on it, surviving the panics a corrupt file causes in
// bbolt. It returns nil for a sound file, ErrLocked while another process
// holds it, and an error wrapping ErrCorrupt listing the first problems.
func CheckFile(path string) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var problems []string
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, fmt.Sprintf("panic: %v", r))
		}
		if len(problems) > 0 && err == nil {
			err = fmt.Errorf("%w: %s: %d problem(s), first: %s", ErrCorrupt, path, len(problems), problems[0])
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		problems = append(problems, err.Error())
		return nil
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if fi.Size() > FullCheckMax {
			return quickCheck(tx)
		}
		for e := range tx.Check() {
			if len(problems) < maxProblems {
				problems = append(problems, e.Error())
			}
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
		err = nil
	}
	return nil
}

// quickCheck reads every key of every bucket, which touches every branch
// and leaf page in use, without bbolt's page accounting.
func quickCheck(tx *bolt.Tx) error {
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if c := b.Bucket(k); c != nil {
					return walk(c)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
}

// Recovery says how Recover found the database.
type Recovery struct {
	Problem  string    // what the check found
	MovedTo  string    // where the corrupt file went
	From     string    // "backup" or "empty"
	BackupAt time.Time // the restored backup's time, when From is "backup"
}

// What Recovery.From says the box started on.
const (
	RestoredBackup = "backup"
	RestoredEmpty  = "empty"
)

// Recover checks the database in dir before it is opened. A sound or
// missing file gives nil. A corrupt one is moved aside as
// smartbox.db.corrupt-<time> and replaced by the hot backup when that is
// sound, or by nothing (the box then starts empty); the Recovery says
// which. ErrLocked passes through.
func Recover(dir string, now time.Time) (*Recovery, error) {
	path := filepath.Join(dir, DBFile)
	err := CheckFile(path)
	switch {
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case !errors.Is(err, ErrCorrupt):
		return nil, err
	}
	r := &Recovery{Problem: err.Error(), From: RestoredEmpty}
	// Whatever the box starts on has an older outbox sequence than the
	// file it replaces: the mark makes the next Open raise it to the floor.
	if err := atomicfile.WriteFile(filepath.Join(dir, restoredMark), nil, 0o600); err != nil {
		return nil, fmt.Errorf("store: mark the restore: %w", err)
	}
	r.MovedTo = path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, r.MovedTo); err != nil {
		return nil, fmt.Errorf("store: move the corrupt database aside: %w", err)
	}
	backup := filepath.Join(dir, BackupDir, DBFile)
	if fi, err := os.Stat(backup); err == nil && CheckFile(backup) == nil {
		if err := copyFile(backup, path); err != nil {
			return nil, fmt.Errorf("store: restore the backup: %w", err)
		}
		r.From, r.BackupAt = RestoredBackup, fi.ModTime().UTC()
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("store: recover: %w", err)
	}
	return r, nil
}

// copyFile copies src to dst through a synced temporary file renamed into
// place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// writeAtomic writes path through fill into a synced temporary file beside
// it (mode 0600), renamed into place, and syncs the directory.
func writeAtomic(path string, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := fill(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// Backup writes a consistent copy of the open database, taken in one read
// transaction while the box runs, to BackupDir/DBFile in dir: synced and
// renamed into place, so a crash leaves the old backup or the new.
func (d *DB) Backup(dir string) error {
	bdir := filepath.Join(dir, BackupDir)
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	err := d.view(func(tx *bolt.Tx) error {
		return writeAtomic(filepath.Join(bdir, DBFile), func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// BackupTime is when the backup in dir was written, or zero when there is
// none.
func BackupTime(dir string) time.Time {
	fi, err := os.Stat(filepath.Join(dir, BackupDir, DBFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
