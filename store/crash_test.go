package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashDirEnv names the data directory the crash child writes to.
const crashDirEnv = "SMARTBOX_STORE_CRASH_DIR"

// TestCrashChild is the process TestCrashConsistency kills: it writes keys,
// each with the event that reports it, in one transaction each, until it
// is killed. Run without crashDirEnv it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashConsistency")
	}
	db, err := Open(dir, Options{BoxID: "box-crash"})
	if err != nil {
		t.Fatalf("child: open: %v", err)
	}
	boot := db.Boot()
	for i := 0; ; i++ {
		err := db.Update(func(tx *Tx) error {
			id := fmt.Sprintf("b%02d-%06d", boot, i)
			if err := tx.PutKey(&Key{ID: id, Name: id, Fob: fmt.Sprintf("%04X%06X", boot, i)}); err != nil {
				return err
			}
			if _, err := tx.Append("key.put", t0, map[string]string{"key_id": id}); err != nil {
				return err
			}
			if i%3 == 0 { // now and then two events in one transaction
				_, err := tx.Append("key.note", t0, map[string]string{"key_id": id})
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatalf("child: update %d: %v", i, err)
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
}

// TestCrashConsistency kills a writing process with SIGKILL at random
// moments, several times over one file, and checks after each crash that
// the file is sound, the outbox gapless and every committed key there with
// its event.
func TestCrashConsistency(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var lastSeq uint64
	for round := range 8 {
		// Round 1 kills the child whenever it gets that far, which may be
		// inside Open; the others let it commit first.
		waitReady := round != 1
		delay := time.Duration(r.IntN(250)) * time.Millisecond
		runAndKill(t, exe, dir, waitReady, delay)

		seq := checkAfterCrash(t, dir)
		if seq < lastSeq || waitReady && seq == lastSeq {
			t.Errorf("round %d: last seq %d after %d", round, seq, lastSeq)
		}
		t.Logf("round %d: killed after %v, last seq %d", round, delay, seq)
		lastSeq = seq
	}
}

// runAndKill starts the crash child on dir and kills it after delay
// (counted from its first commit when waitReady).
func runAndKill(t *testing.T, exe, dir string, waitReady bool, delay time.Duration) {
	t.Helper()
	args := []string{"-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m"}
	cmd := exec.Command(exe, args...)
	if w := os.Getenv("SMARTBOX_EXEC_WRAPPER"); w != "" {
		// Under user-mode emulation (make test-arm) the child runs through
		// the emulator too.
		cmd = exec.Command(w, append([]string{exe}, args...)...)
	}
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if s.Text() == "ready" {
				close(ready)
				continue
			}
			out.WriteString(s.Text() + "\n")
		}
	}()

	exited := make(chan struct{}) // closed when the child's output ends
	go func() { wg.Wait(); close(exited) }()
	if waitReady {
		select {
		case <-ready:
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Error("child never committed")
		}
	}
	select {
	case <-time.After(delay):
	case <-exited:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill child: %v", err)
	}
	<-exited
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v), not by the kill:\n%s%s", err, out.String(), stderr.String())
	}
}

// checkAfterCrash reopens dir and checks it; it returns the last seq.
func checkAfterCrash(t *testing.T, dir string) uint64 {
	t.Helper()
	db, err := Open(dir, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	checkConsistent(t, db)

	s := stats(t, db)
	recs := pending(t, db, 0, 1<<30)
	if got, want := seqs(recs), seqRange(1, s.LastSeq); !slices.Equal(got, want) {
		t.Errorf("outbox seqs are not 1..%d: %d records, first %v", s.LastSeq, len(got), got[:min(len(got), 5)])
	}
	if s.Depth != len(recs) || s.Depth != countRecords(t, db, bucketOutbox) {
		t.Errorf("depth counter %d, %d records", s.Depth, len(recs))
	}

	// Every key came with its key.put event, and no event outlived its key.
	keysSeen := map[string]bool{}
	for _, r := range recs {
		ev := decodeEvent(t, r.Payload)
		if ev.Seq != r.Seq {
			t.Errorf("record %d holds event seq %d", r.Seq, ev.Seq)
		}
		if ev.Type != "key.put" {
			continue
		}
		var data struct {
			KeyID string `json:"key_id"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		keysSeen[data.KeyID] = true
	}
	view(t, db, func(tx *Tx) error {
		if n := tx.KeyCount(); n != len(keysSeen) || n != countRecords(t, db, bucketKeys) {
			t.Errorf("key count %d, key records %d, key.put events %d", n, countRecords(t, db, bucketKeys), len(keysSeen))
		}
		return tx.ForEachKey(func(k *Key) error {
			if !keysSeen[k.ID] {
				t.Errorf("key %s stored without its event", k.ID)
			}
			if tx.KeyByFob(k.Fob) != k.ID {
				t.Errorf("key %s: fob %s not indexed", k.ID, k.Fob)
			}
			return nil
		})
	})
	if n := countRecords(t, db, bucketFobs); n != len(keysSeen) {
		t.Errorf("fob index holds %d entries for %d keys", n, len(keysSeen))
	}

	// The history moved with the outbox.
	if s.LastSeq > 0 {
		recent, err := db.Recent(1)
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 1 || recent[0].Seq != s.LastSeq {
			t.Errorf("history ends at %v, outbox at %d", recent, s.LastSeq)
		}
	}
	return s.LastSeq
}
