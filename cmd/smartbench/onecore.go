package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
)

// The Pi-class proxy: every figure measured a second time in a child
// process pinned to one core (taskset -c 0) with GOMAXPROCS=1. The child's
// rows come back as JSON and join the report with their keys prefixed
// one_core_, so the table, the misses and the JSON line hold both runs.

// rowJSON is a row as the child hands it to the parent.
type rowJSON struct {
	Key, Path, Unit, Note string
	Daemon, Baseline      float64
	Goal                  goal
	Limit                 float64
}

func (r row) toJSON() rowJSON {
	return rowJSON{Key: r.key, Path: r.path, Unit: r.unit, Note: r.note, Daemon: r.daemon, Baseline: r.baseline, Goal: r.goal, Limit: r.limit}
}

func (j rowJSON) toRow() row {
	return row{key: j.Key, path: j.Path, unit: j.Unit, note: j.Note, daemon: j.Daemon, baseline: j.Baseline, goal: j.Goal, limit: j.Limit}
}

// writeRows prints the child's rows as one JSON line.
func (r *report) writeRows(w io.Writer) error {
	out := make([]rowJSON, len(r.rows))
	for i, x := range r.rows {
		out[i] = x.toJSON()
	}
	return json.NewEncoder(w).Encode(out)
}

// oneCore runs this benchmark again, with args less -one-core, pinned to
// one core, and adds the child's rows to rep.
func oneCore(ctx context.Context, rep *report, args []string, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("one core: taskset (util-linux) is needed: %w", err)
	}
	childArgs := []string{"-c", "0", self, "-rows-json"}
	for _, a := range args {
		if a != "-one-core" && a != "--one-core" && a != "-one-core=true" {
			childArgs = append(childArgs, a)
		}
	}
	cmd := exec.CommandContext(ctx, taskset, childArgs...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return bytes.HasPrefix([]byte(kv), []byte("GOMAXPROCS=")) }), "GOMAXPROCS=1")
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("one core: %w", err)
	}
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			last = append(last[:0], line...)
		}
	}
	var rows []rowJSON
	if err := json.Unmarshal(last, &rows); err != nil {
		return fmt.Errorf("one core: the child's rows: %w", err)
	}
	for _, j := range rows {
		x := j.toRow()
		x.key = "one_core_" + x.key
		x.path += " (1 core)"
		rep.add(x)
	}
	rep.note("one_core", "taskset -c 0, GOMAXPROCS=1")
	return nil
}
