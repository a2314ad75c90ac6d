package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smartboxd/internal/mqtttest"
)

// needMosquitto installs the broker the way the other tests do (make deps)
// when it is missing.
func needMosquitto(t *testing.T) {
	t.Helper()
	if _, err := mqtttest.MosquittoBinary(); err != nil {
		t.Fatal(err)
	}
}

// TestSmoke runs every part except the arm cross build at a tiny size
// through the command line, and checks the report's shape and that every
// figure was measured. It asserts no timings.
func TestSmoke(t *testing.T) {
	needMosquitto(t)
	var out, errs bytes.Buffer
	args := []string{"-codes", "1000", "-events", "1000", "-check-cycles", "10", "-durable-cycles", "3",
		"-snapshot-reps", "2", "-drain-reps", "1", "-startup-reps", "1", "-only", "keypad,snapshot,trust,drain,daemon",
		"-dir", t.TempDir()}
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "path") {
		t.Errorf("the table does not come first:\n%s", out.String())
	}
	var figures map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &figures); err != nil {
		t.Fatalf("the last line is not a JSON object: %v\n%s", err, out.String())
	}
	for _, key := range []string{
		"code_check_wrong_p50_us", "code_check_wrong_p50_baseline_us", "code_check_wrong_p99_ratio",
		"code_check_right_p50_us", "code_check_right_p99_baseline_us", "committed_nosync_wrong_us", "committed_nosync_right_baseline_us",
		"durable_decision_wrong_us", "durable_decision_right_baseline_us",
		"snapshot_ms", "snapshot_baseline_ms",
		"outbox_drain_per_s", "outbox_drain_baseline_per_s",
		"startup_ms", "rss_online_MiB", "rss_draining_MiB", "daemon_drain_per_s",
	} {
		v, ok := figures[key].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a measured figure", key, figures[key])
		}
	}
	if _, ok := figures["go_heap_peak_MiB"].(float64); !ok {
		t.Errorf("go_heap_peak_MiB = %v, want a figure", figures["go_heap_peak_MiB"])
	}
	for key, want := range map[string]float64{
		"code_check_entries":       40,
		"durable_decision_entries": 12,
		"codes":                    1000,
		"events":                   1000,
		"outbox_drain_duplicates":  0,
	} {
		if got := figures[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	for _, key := range []string{"code_check_wrong_p50_pass", "snapshot_pass", "outbox_drain_pass", "rss_online_pass"} {
		if _, ok := figures[key].(bool); !ok {
			t.Errorf("%s = %v, want a verdict", key, figures[key])
		}
	}
	if _, ok := figures["misses"].([]any); !ok {
		t.Errorf("misses = %v, want a list", figures["misses"])
	}
	for _, path := range []string{"code check, wrong code p50", "durable decision", "snapshot (1000 codes)", "outbox drain", "start-up to online", "memory: RSS"} {
		if !strings.Contains(out.String(), path) {
			t.Errorf("the table has no %q row", path)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-only", "keypad,nothing"}, {"-codes", "1", "-only", "keypad"}, {"-bogus"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := run(args, &out, &errs); err == nil {
				t.Errorf("run %v: no error", args)
			}
			if out.Len() != 0 {
				t.Errorf("run %v printed a report:\n%s", args, out.String())
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	ms := func(ns ...int) samples {
		var s samples
		for _, n := range ns {
			s = append(s, time.Duration(n)*time.Millisecond)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		s    samples
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median odd", ms(5, 1, 3), 0.5, 3 * time.Millisecond},
		{"median even, lower middle", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99 of 1000 is the 990th", ms(seq(1000)...), 0.99, 990 * time.Millisecond},
		{"max", ms(3, 9, 1), 1, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	if got := medianFloat([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("medianFloat = %v, want 2.5", got)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestRowVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        row
		pass, ok bool
	}{
		{"ratio at most, under", row{daemon: 3, baseline: 2, goal: ratioAtMost, limit: 2}, true, true},
		{"ratio at most, over", row{daemon: 5, baseline: 2, goal: ratioAtMost, limit: 2}, false, true},
		{"ratio at least, over", row{daemon: 8, baseline: 10, goal: ratioAtLeast, limit: 0.7}, true, true},
		{"ratio at least, under", row{daemon: 6, baseline: 10, goal: ratioAtLeast, limit: 0.7}, false, true},
		{"value at most, equal", row{daemon: 48, goal: valueAtMost, limit: 48}, true, true},
		{"value at most, over", row{daemon: 48.1, goal: valueAtMost, limit: 48}, false, true},
		{"report only", row{daemon: 1}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass, ok := tc.r.pass()
			if pass != tc.pass || ok != tc.ok {
				t.Errorf("pass() = %v, %v; want %v, %v", pass, ok, tc.pass, tc.ok)
			}
		})
	}
}

func TestReportEndsWithJSON(t *testing.T) {
	r := &report{}
	r.add(row{key: "a", path: "a path", unit: "us", daemon: 30, baseline: 10, goal: ratioAtMost, limit: 2})
	r.add(row{key: "b", path: "b path", unit: "MiB", daemon: 9.5, goal: valueAtMost, limit: 48})
	r.note("n", 3)
	var out bytes.Buffer
	if err := r.write(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line: %v", err)
	}
	want := map[string]any{"a_us": 30.0, "a_baseline_us": 10.0, "a_ratio": 3.0, "a_pass": false,
		"b_MiB": 9.5, "b_pass": true, "n": 3.0, "misses": []any{"a"}}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("JSON line = %s, want %s", g, w)
	}
	if !strings.Contains(out.String(), "MISS") || !strings.Contains(out.String(), "pass") {
		t.Errorf("the table lacks a verdict:\n%s", out.String())
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGCTrace(t *testing.T) {
	log := strings.Join([]string{
		`time=2026-03-01T09:00:00Z level=WARN msg="something"`,
		`gc 1 @0.011s 2%: 0.010+0.50+0.003 ms clock, 0.021+0.1/0.2/0.3+0.006 ms cpu, 4->5->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P`,
		`gc 2 @0.100s 1%: 0.010+0.50+0.003 ms clock, 0.021+0.1/0.2/0.3+0.006 ms cpu, 7->7->1 MB, 8 MB goal, 0 MB stacks, 0 MB globals, 2 P`,
		`gc 3 @0.200s 1%: 0.010+0.50+0.003 ms clock, 0.021+0.1/0.2/0.3+0.006 ms cpu, 3->3->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)`,
	}, "\n")
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	peak, live, n, err := gcTrace(path)
	if err != nil || peak != 7 || live != 2 || n != 3 {
		t.Errorf("gcTrace = %d, %d, %d, %v; want 7, 2, 3, nil", peak, live, n, err)
	}
}

func TestProcStatus(t *testing.T) {
	st, err := procStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st["VmRSS"] <= 0 || st["VmHWM"] < st["VmRSS"] || st["RssAnon"] <= 0 {
		t.Errorf("VmRSS %d, VmHWM %d, RssAnon %d: not this process's figures", st["VmRSS"], st["VmHWM"], st["RssAnon"])
	}
}

func TestCodesAreDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 200_000 {
		c := codeOf(i)
		if len(c) != 8 {
			t.Fatalf("codeOf(%d) = %q, want 8 digits", i, c)
		}
		if j, dup := seen[c]; dup {
			t.Fatalf("codeOf(%d) = codeOf(%d) = %s", i, j, c)
		}
		seen[c] = i
	}
}
