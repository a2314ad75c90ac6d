package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smartboxd/store"
)

// The daemon as a process: start-up time and memory are measured on the
// real smartboxd binary, built here as `make build` builds it, started on a
// synced copy of the prepared data directory with the sim backend and the
// local broker. Start-up is timed from exec to the moment a subscriber sees
// the retained "online":true on P/status. Memory is then sampled while the
// daemon drains its full outbox to a cloud that acks (the heaviest thing a
// box does after a long time offline): VmRSS at online and at its highest
// from /proc/PID/status, the peak VmHWM, and the Go heap from the runtime's
// gctrace lines (GODEBUG=gctrace=1: the live heap after each collection).

// moduleRoot is the directory of the go.mod that `go` sees from here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the smartboxd module")
	}
	return filepath.Dir(mod), nil
}

// goBuild builds ./cmd/smartboxd stripped and static, as the Makefile does,
// with extra environment (GOOS, GOARCH, GOARM) for a cross build.
func goBuild(ctx context.Context, root, out string, env ...string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=bench", "-o", out, "./cmd/smartboxd")
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", env, err, b)
	}
	return nil
}

// binarySize is the size of the stripped linux/arm (v7) daemon.
func binarySize(ctx context.Context, root, work string) (int64, error) {
	out := filepath.Join(work, "smartboxd-linux-armv7")
	if err := goBuild(ctx, root, out, "GOOS=linux", "GOARCH=arm", "GOARM=7"); err != nil {
		return 0, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func daemonConfig(dataDir, url, prefix string) string {
	return fmt.Sprintf(`box_id: %s
data_dir: %s
mqtt:
  broker: %s
  topic_prefix: %s
hardware:
  backend: sim
  bins: [{id: 1}, {id: 2}, {id: 3}, {id: 4}]
keypad:
  type: none
log:
  level: warn
`, benchBoxID, dataDir, url, prefix)
}

type processResult struct {
	startup   samples
	rssOnline []int64   // VmRSS when online, KiB
	rssMax    []int64   // the highest VmRSS seen while draining, KiB
	anonMax   []int64   // the highest RssAnon (heap, stacks), KiB
	fileMax   []int64   // the highest RssFile (mapped file pages: the database), KiB
	hwm       []int64   // VmHWM at the end, KiB
	heapPeak  []int64   // the largest heap at the start of a collection, MB (-1: none ran)
	heapLive  []int64   // the largest live heap after a collection, MB (-1: none ran)
	gcs       []int     // collections during the run
	drain     []float64 // events per second, online to the last ack
}

// outboxRange is the first and last seq queued in a data directory.
func outboxRange(dir string) (first, last uint64, err error) {
	db, err := store.Open(dir, store.Options{BoxID: benchBoxID, NoSync: true})
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	recs, err := db.Pending(0, 1)
	if err != nil || len(recs) == 0 {
		return 0, 0, errors.Join(err, errors.New("the prepared outbox is empty"))
	}
	st, err := db.OutboxStats()
	return recs[0].Seq, st.LastSeq, err
}

// benchProcess starts the daemon reps times on copies of the template.
func benchProcess(ctx context.Context, bin, work, template, url string, reps int, logf logFunc) (*processResult, error) {
	first, last, err := outboxRange(template)
	if err != nil {
		return nil, err
	}
	res := &processResult{}
	for i := range reps {
		logf("daemon: start-up and drain, rep %d of %d", i+1, reps)
		// The daemon appends device.started as it starts.
		if err := startOnce(ctx, bin, work, template, url, i, first, last+1, res); err != nil {
			return nil, fmt.Errorf("daemon run %d: %w", i+1, err)
		}
	}
	return res, nil
}

func startOnce(ctx context.Context, bin, work, template, url string, rep int, first, last uint64, res *processResult) error {
	dir := filepath.Join(work, fmt.Sprintf("daemon-%d", rep))
	data := filepath.Join(dir, "data")
	if err := copyDataDir(template, data); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prefix := fmt.Sprintf("start%d", rep)
	cfgPath := filepath.Join(dir, "smartboxd.yaml")
	if err := os.WriteFile(cfgPath, []byte(daemonConfig(data, url, prefix)), 0o600); err != nil {
		return err
	}
	w, err := watchStatus(url, prefix)
	if err != nil {
		return err
	}
	defer w.close()
	c, err := newCloud(ctx, url, prefix, first, last)
	if err != nil {
		return err
	}
	defer c.close()
	logPath := filepath.Join(dir, "smartboxd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	var waitErr error
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	online, err := w.wait(30*time.Second, exited)
	if err != nil {
		return fmt.Errorf("%w; log:\n%s", err, tailFile(logPath, 2000))
	}
	res.startup = append(res.startup, online.Sub(start))

	st, err := procStatus(cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.rssOnline = append(res.rssOnline, st["VmRSS"])
	rss, anon, file := st["VmRSS"], st["RssAnon"], st["RssFile"]
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	drained := make(chan error, 1)
	go func() { _, err := c.waitDone(ctx); drained <- err }()
	for sampling := true; sampling; {
		select {
		case err := <-drained:
			if err != nil {
				return fmt.Errorf("daemon drain: %w", err)
			}
			sampling = false
		case <-exited:
			return fmt.Errorf("the daemon exited while draining; log:\n%s", tailFile(logPath, 2000))
		case <-tick.C:
		}
		if st, err = procStatus(cmd.Process.Pid); err != nil {
			return err
		}
		rss, anon, file = max(rss, st["VmRSS"]), max(anon, st["RssAnon"]), max(file, st["RssFile"])
	}
	doneAt := c.doneAt
	res.drain = append(res.drain, float64(last-first+1)/doneAt.Sub(online).Seconds())
	res.rssMax = append(res.rssMax, rss)
	res.anonMax = append(res.anonMax, anon)
	res.fileMax = append(res.fileMax, file)
	res.hwm = append(res.hwm, st["VmHWM"])

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return errors.New("the daemon did not stop within 30 s of SIGTERM")
	}
	if waitErr != nil {
		return fmt.Errorf("the daemon exited with %v; log:\n%s", waitErr, tailFile(logPath, 2000))
	}
	// Kept in the work directory (see -keep).
	if err := copyFile(logPath, filepath.Join(work, fmt.Sprintf("smartboxd-%d.log", rep))); err != nil {
		return err
	}
	peak, live, gcs, err := gcTrace(logPath)
	if err != nil {
		return err
	}
	if gcs == 0 {
		// The heap never reached the first collection's goal (4 MB).
		peak, live = -1, -1
	}
	res.heapPeak = append(res.heapPeak, peak)
	res.heapLive = append(res.heapLive, live)
	res.gcs = append(res.gcs, gcs)
	return nil
}

// procStatus reads the kB figures of /proc/PID/status.
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, sc.Err()
}

// gcLine matches a gctrace line's heap sizes: start->end->live MB.
var gcLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB`)

// gcTrace returns, over the collections in the log, the largest heap at a
// collection's start and the largest live heap after one (both in whole
// MB, as gctrace prints them), and how many collections ran.
func gcTrace(path string) (peak, live int64, n int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range bytes.Lines(b) {
		m := gcLine.FindSubmatch(line)
		if m == nil {
			continue
		}
		n++
		start, _ := strconv.ParseInt(string(m[1]), 10, 64)
		after, _ := strconv.ParseInt(string(m[3]), 10, 64)
		peak, live = max(peak, start), max(live, after)
	}
	return peak, live, n, nil
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
