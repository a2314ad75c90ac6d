//go:build linux && (amd64 || arm64)

package faultfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The crash child is this test binary run again with these variables set.
const (
	childEnv    = "FAULTFS_CHILD"     // workload: "bolt" or "atomic"
	childDirEnv = "FAULTFS_CHILD_DIR" // the mount point it writes to
	childLogEnv = "FAULTFS_CHILD_LOG" // outside the mount: one line per durable step
)

// TestCrashChild is the writer the crash tests kill; without childEnv it
// does nothing.
func TestCrashChild(t *testing.T) {
	work := os.Getenv(childEnv)
	if work == "" {
		t.Skip("run by the crash tests")
	}
	dir, logPath := os.Getenv(childDirEnv), os.Getenv(childLogEnv)
	lg, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	switch work {
	case "bolt":
		boltChild(t, dir, lg)
	case "atomic":
		atomicChild(t, dir, lg)
	default:
		t.Fatalf("child: unknown workload %q", work)
	}
}

// boltValue is the value of key i: its length and bytes follow from i.
func boltValue(i uint64) []byte {
	n := 20 + int(i*7919%5000)
	out := make([]byte, 0, n+sha256.Size)
	seed := sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
	for len(out) < n {
		out = append(out, seed[:]...)
		seed = sha256.Sum256(seed[:])
	}
	return out[:n]
}

func boltKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

var (
	keysBucket = []byte("keys")
	bulkBucket = []byte("bulk")
)

// boltChild commits one key per transaction, with churn in a second bucket
// that frees and reuses pages, and logs each key after its commit returned.
func boltChild(t *testing.T, dir string, lg *os.File) {
	db, err := bolt.Open(filepath.Join(dir, "test.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("child: open: %v", err)
	}
	var next uint64
	err = db.Update(func(tx *bolt.Tx) error {
		keys, err := tx.CreateBucketIfNotExists(keysBucket)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bulkBucket); err != nil {
			return err
		}
		if k, _ := keys.Cursor().Last(); k != nil {
			next = binary.BigEndian.Uint64(k) + 1
		}
		return nil
	})
	if err != nil {
		t.Fatalf("child: setup: %v", err)
	}
	r := rand.New(rand.NewPCG(next, 1))
	for i := next; ; i++ {
		err := db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(keysBucket).Put(boltKey(i), boltValue(i)); err != nil {
				return err
			}
			bulk := tx.Bucket(bulkBucket)
			for range r.IntN(4) {
				k := boltKey(uint64(r.IntN(64)))
				if r.IntN(3) == 0 {
					if err := bulk.Delete(k); err != nil {
						return err
					}
					continue
				}
				if err := bulk.Put(k, make([]byte, r.IntN(20000))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("child: commit %d: %v", i, err)
		}
		if _, err := fmt.Fprintf(lg, "%d\n", i); err != nil {
			t.Fatalf("child: log: %v", err)
		}
	}
}

// atomicContent is generation gen of the atomically replaced file.
func atomicContent(gen int) []byte {
	head := fmt.Sprintf("gen %d\n", gen)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + gen%26)}, 1+gen*4099%20000)...)
}

// parseAtomic returns the generation of b, or an error if b is not exactly
// one of the contents atomicContent makes.
func parseAtomic(b []byte) (int, error) {
	line, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("no header in %d bytes", len(b))
	}
	gen, err := strconv.Atoi(strings.TrimPrefix(string(line), "gen "))
	if err != nil {
		return 0, fmt.Errorf("header %q: %w", line, err)
	}
	if !bytes.Equal(b, atomicContent(gen)) {
		return gen, fmt.Errorf("generation %d: %d bytes do not match", gen, len(b))
	}
	return gen, nil
}

// writeAtomic replaces dir/name the durable way: a temporary file written
// and fsynced, renamed over the old one, and the directory fsynced.
func writeAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	fl, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := fl.Write(data); err != nil {
		fl.Close()
		return err
	}
	if err := fl.Sync(); err != nil {
		fl.Close()
		return err
	}
	if err := fl.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

const atomicName = "config"

func atomicChild(t *testing.T, dir string, lg *os.File) {
	b, err := os.ReadFile(filepath.Join(dir, atomicName))
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	gen, err := parseAtomic(b)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	for gen++; ; gen++ {
		if err := writeAtomic(dir, atomicName, atomicContent(gen)); err != nil {
			t.Fatalf("child: write %d: %v", gen, err)
		}
		if _, err := fmt.Fprintf(lg, "%d\n", gen); err != nil {
			t.Fatalf("child: log: %v", err)
		}
	}
}

// readLog returns the numbers the child logged.
func readLog(t *testing.T, p string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []uint64
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		n, err := strconv.ParseUint(s.Text(), 10, 64)
		if err != nil {
			break // a line cut short by the kill
		}
		out = append(out, n)
	}
	return out
}

// runAndKill runs workload on mnt until it has logged after+steps lines,
// and kills it with SIGKILL wait later.
func runAndKill(t *testing.T, work, mnt, logPath string, after, steps int, wait time.Duration) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m"}
	cmd := exec.Command(exe, args...)
	if w := os.Getenv("SMARTBOX_EXEC_WRAPPER"); w != "" {
		cmd = exec.Command(w, append([]string{exe}, args...)...)
	}
	cmd.Env = append(os.Environ(), childEnv+"="+work, childDirEnv+"="+mnt, childLogEnv+"="+logPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for exited := false; !exited; {
		select {
		case err := <-done:
			t.Fatalf("%s child exited by itself (%v):\n%s", work, err, out.String())
		case <-deadline:
			t.Errorf("%s child logged %d of %d steps in time", work, len(readLog(t, logPath))-after, steps)
			exited = true
		case <-time.After(time.Millisecond):
			exited = len(readLog(t, logPath)) >= after+steps
		}
	}
	select {
	case err := <-done:
		t.Fatalf("%s child exited by itself (%v):\n%s", work, err, out.String())
	case <-time.After(wait):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
}

// crashRounds is SMARTBOX_FAULTFS_ROUNDS when set (a longer hunt), else
// def, or 3 in short mode.
func crashRounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("SMARTBOX_FAULTFS_ROUNDS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 3
	}
	return def
}

// TestCrashBolt kills a process committing to a bbolt database on the
// mount at random moments, cuts the power, torn or not, and checks that
// the durable file opens, passes tx.Check and holds every transaction
// whose commit returned.
func TestCrashBolt(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	rounds := crashRounds(8)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	// bbolt does not fsync the directory when it creates the file, so a
	// new database can vanish whole at a cut: make it durable first.
	f, backing, mnt := mountT(t, Options{Seed: seed, TearWrites: 4}, func(b string) {
		db, err := bolt.Open(filepath.Join(b, "test.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { unmountT(t, f) }) // the last mount
	logPath := filepath.Join(t.TempDir(), "committed")
	var total CutStats
	for round := range rounds {
		tear := round%2 == 1
		if round%4 != 0 {
			// A stalled card: the kill lands inside an fdatasync, with
			// unsynced pages, more often.
			f.SetFsyncDelay(time.Duration(1+r.IntN(10)) * time.Millisecond)
		}
		logged := len(readLog(t, logPath))
		runAndKill(t, "bolt", mnt, logPath, logged, 1+r.IntN(40), time.Duration(r.IntN(5000))*time.Microsecond)
		if err := f.CutPower(tear); err != nil {
			t.Fatalf("round %d: cut: %v", round, err)
		}
		cs := f.Stats().Cut
		t.Logf("round %d (tear %v): %+v", round, tear, cs)
		total.WritesDropped += cs.WritesDropped
		total.PagesTorn += cs.PagesTorn
		checkBolt(t, filepath.Join(backing, "test.db"), readLog(t, logPath))
		var err error
		if f, err = f.Remount(); err != nil {
			t.Fatalf("round %d: remount: %v", round, err)
		}
	}
	t.Logf("over %d rounds: %d unsynced writes dropped, %d pages torn", rounds, total.WritesDropped, total.PagesTorn)
}

// checkBolt opens the database at p (outside any mount) and checks it.
func checkBolt(t *testing.T, p string, committed []uint64) {
	t.Helper()
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open after cut: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("check after cut: %v", err)
		}
		keys := tx.Bucket(keysBucket)
		if keys == nil {
			if len(committed) > 0 {
				return fmt.Errorf("no keys bucket, %d commits returned", len(committed))
			}
			return nil
		}
		for _, i := range committed {
			if v := keys.Get(boltKey(i)); !bytes.Equal(v, boltValue(i)) {
				t.Errorf("key %d committed but after the cut holds %d bytes", i, len(v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashAtomicWrite kills a process replacing a file atomically (write
// a temporary, fsync, rename, fsync the directory) and checks after each
// cut that the file is whole, old or new, never empty or missing, and no
// older than the last replacement that returned.
func TestCrashAtomicWrite(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	f, backing, mnt := mountT(t, Options{Seed: seed, TearWrites: 4}, func(b string) {
		writeFile(t, filepath.Join(b, atomicName), atomicContent(0))
	})
	t.Cleanup(func() { unmountT(t, f) }) // the last mount
	logPath := filepath.Join(t.TempDir(), "replaced")
	for round := range rounds {
		tear := round%2 == 1
		logged := len(readLog(t, logPath))
		if round%2 == 0 {
			f.SetFsyncDelay(time.Duration(1+r.IntN(5)) * time.Millisecond)
		}
		runAndKill(t, "atomic", mnt, logPath, logged, 1+r.IntN(30), time.Duration(r.IntN(3000))*time.Microsecond)
		if err := f.CutPower(tear); err != nil {
			t.Fatalf("round %d: cut: %v", round, err)
		}
		t.Logf("round %d (tear %v): %+v", round, tear, f.Stats().Cut)
		b, err := os.ReadFile(filepath.Join(backing, atomicName))
		if err != nil {
			t.Fatalf("round %d: after cut: %v", round, err)
		}
		gen, err := parseAtomic(b)
		if err != nil {
			t.Fatalf("round %d: after cut: %v", round, err)
		}
		done := readLog(t, logPath)
		if last := done[len(done)-1]; uint64(gen) < last {
			t.Errorf("round %d: generation %d after the cut, %d had returned", round, gen, last)
		}
		if f, err = f.Remount(); err != nil {
			t.Fatalf("round %d: remount: %v", round, err)
		}
	}
}
