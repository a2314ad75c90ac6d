package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// goal is a row's target.
type goal int

const (
	reportOnly   goal = iota // no target: the figure is reported
	ratioAtMost              // daemon/baseline must not exceed limit
	ratioAtLeast             // daemon/baseline must reach limit (throughput)
	valueAtMost              // the daemon figure must not exceed limit
)

// row is one line of the table: a path measured in the daemon and, when it
// has one, in its bare baseline, in the same run.
type row struct {
	key      string // the JSON name, snake case
	path     string // the table's name
	unit     string // us, ms, per_s, MiB
	daemon   float64
	baseline float64 // 0: no baseline
	goal     goal
	limit    float64
	note     string // aim for report-only rows
}

func (r row) hasBaseline() bool { return r.baseline > 0 }

func (r row) ratio() float64 {
	if !r.hasBaseline() {
		return 0
	}
	return r.daemon / r.baseline
}

// pass reports whether the row meets its target; ok is false for rows
// without one.
func (r row) pass() (pass, ok bool) {
	switch r.goal {
	case ratioAtMost:
		return r.ratio() <= r.limit, true
	case ratioAtLeast:
		return r.ratio() >= r.limit, true
	case valueAtMost:
		return r.daemon <= r.limit, true
	}
	return false, false
}

func (r row) target() string {
	switch r.goal {
	case ratioAtMost:
		return fmt.Sprintf("≤ %g×", r.limit)
	case ratioAtLeast:
		return fmt.Sprintf("≥ %g×", r.limit)
	case valueAtMost:
		return fmt.Sprintf("≤ %g %s", r.limit, unitText(r.unit))
	}
	if r.note != "" {
		return r.note
	}
	return "report"
}

func unitText(u string) string {
	switch u {
	case "us":
		return "µs"
	case "per_s":
		return "/s"
	}
	return u
}

func figure(v float64, unit string) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f %s", v, unitText(unit))
	case v >= 100:
		return fmt.Sprintf("%.1f %s", v, unitText(unit))
	}
	return fmt.Sprintf("%.2f %s", v, unitText(unit))
}

// report is everything one run measured.
type report struct {
	rows   []row
	extras []extra // further figures, for the JSON line only
}

type extra struct {
	key   string
	value any
}

func (r *report) add(x row)                  { r.rows = append(r.rows, x) }
func (r *report) note(key string, value any) { r.extras = append(r.extras, extra{key, value}) }

// misses lists the rows that miss their target.
func (r *report) misses() []string {
	var out []string
	for _, x := range r.rows {
		if p, ok := x.pass(); ok && !p {
			out = append(out, x.key)
		}
	}
	return out
}

// writeTable prints the table.
func (r *report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\tdaemon\tbaseline\tratio\ttarget\tresult")
	fmt.Fprintln(tw, "----\t------\t--------\t-----\t------\t------")
	for _, x := range r.rows {
		ratio := "—"
		if x.hasBaseline() {
			ratio = fmt.Sprintf("%.2f×", x.ratio())
		}
		result := "report"
		if p, ok := x.pass(); ok {
			result = map[bool]string{true: "pass", false: "MISS"}[p]
		}
		base := "—"
		if x.hasBaseline() {
			base = figure(x.baseline, x.unit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.path, figure(x.daemon, x.unit), base, ratio, x.target(), result)
	}
	return tw.Flush()
}

// jsonLine is the run as one JSON object, keys in the table's order.
func (r *report) jsonLine() ([]byte, error) {
	var kv []extra
	for _, x := range r.rows {
		kv = append(kv, extra{x.key + "_" + x.unit, round(x.daemon)})
		if x.hasBaseline() {
			kv = append(kv, extra{x.key + "_baseline_" + x.unit, round(x.baseline)}, extra{x.key + "_ratio", round(x.ratio())})
		}
		if p, ok := x.pass(); ok {
			kv = append(kv, extra{x.key + "_pass", p})
		}
	}
	kv = append(kv, r.extras...)
	misses := r.misses()
	if misses == nil {
		misses = []string{}
	}
	kv = append(kv, extra{"misses", misses})
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range kv {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// round keeps four significant digits, so the JSON line stays short.
func round(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// write prints the table, a blank line, and the JSON line last.
func (r *report) write(w io.Writer) error {
	if err := r.writeTable(w); err != nil {
		return err
	}
	if m := r.misses(); len(m) > 0 {
		fmt.Fprintf(w, "\nmissed: %s\n", strings.Join(m, ", "))
	}
	line, err := r.jsonLine()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s\n", line)
	return nil
}
