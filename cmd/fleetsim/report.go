package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is the JSON line: the figures of every broker run.
type report struct {
	N       int                `json:"n"`
	Results map[string]*result `json:"results"`
}

// result holds one broker's figures. Times are in seconds.
type result struct {
	Brokers          []string `json:"brokers"`
	TimeToAllOnlineS float64  `json:"time_to_all_online_s"`
	// The storm: the broker restart (mosquitto) or the node kill (RabbitMQ).
	Storm            string  `json:"storm"`
	StormReconnected int     `json:"storm_reconnected"`   // boxes that made a new session
	PeakConnectsPerS int     `json:"peak_connects_per_s"` // in any one-second bucket
	PeakShare        float64 `json:"peak_share"`          // of the fleet
	// StormSeries counts the reconnects per second: the first entry those
	// before the broker's return (or the kill), then one a second.
	StormSeries []int `json:"storm_series"`
	// StormAttempts counts the connection attempts a second, the failed
	// ones included, from the broker's stop (or the kill) on: on
	// mosquitto the first StormDownS seconds are the broker's absence.
	StormAttempts []int   `json:"storm_attempts"`
	StormDownS    float64 `json:"storm_down_s,omitempty"`
	BackOnlineS   float64 `json:"back_online_s"` // from the broker's return (or the kill)
	StaleWills    int     `json:"stale_wills"`   // wills of older sessions the cloud ignored

	OutageBacklog int     `json:"outage_backlog,omitempty"` // events waiting in the outboxes
	OutageDrainS  float64 `json:"outage_drain_s,omitempty"` // from the broker's return to every outbox empty
	// The boxes' return after the outage, as for the storm: the broker's
	// downtime, the time until every box had a new session, and the
	// reconnects a second from the broker's return.
	OutageDownS            float64 `json:"outage_down_s,omitempty"`
	OutageBackOnlineS      float64 `json:"outage_back_online_s,omitempty"`
	OutagePeakConnectsPerS int     `json:"outage_peak_connects_per_s,omitempty"`
	OutagePeakShare        float64 `json:"outage_peak_share,omitempty"`
	OutageSeries           []int   `json:"outage_series,omitempty"`

	Produced  uint64 `json:"events_produced"`
	Delivered uint64 `json:"events_delivered"` // distinct seqs the cloud got
	Lost      uint64 `json:"events_lost"`
	// Undelivered are still in the outboxes: 0 once the fleet drained.
	Undelivered uint64  `json:"events_undelivered"`
	Duplicated  int     `json:"events_duplicated"`
	CmdP50Ms    float64 `json:"cmd_rtt_p50_ms"`
	CmdP99Ms    float64 `json:"cmd_rtt_p99_ms"`
	CmdFailed   int     `json:"cmd_failed"`
	RSSPerBoxK  int     `json:"rss_per_box_kib"`
	// BrokerRSSPerBoxK is the broker processes' RSS over N, all online.
	BrokerRSSPerBoxK int `json:"broker_rss_per_box_kib"`
	// SteadyEventsPerS is the event rate of the steady traffic.
	SteadyEventsPerS float64  `json:"steady_events_per_s"`
	Notes            []string `json:"notes,omitempty"`
}

func printResult(w io.Writer, kind string, r *result) {
	fmt.Fprintf(w, "%s (%s)\n", kind, strings.Join(r.Brokers, " "))
	row := func(name, value string) { fmt.Fprintf(w, "  %-34s %s\n", name, value) }
	row("time to all online", fmt.Sprintf("%.1f s", r.TimeToAllOnlineS))
	row("storm", r.Storm)
	row("  boxes reconnected", strconv.Itoa(r.StormReconnected))
	row("  peak connects a second", fmt.Sprintf("%d (%.1f%% of the fleet)", r.PeakConnectsPerS, 100*r.PeakShare))
	row("  connects a second", fmt.Sprint(r.StormSeries))
	row("  attempts a second", fmt.Sprint(r.StormAttempts))
	row("  every box back online after", fmt.Sprintf("%.1f s", r.BackOnlineS))
	row("  stale wills ignored", strconv.Itoa(r.StaleWills))
	if r.OutageBacklog > 0 {
		row("outage backlog", fmt.Sprintf("%d events", r.OutageBacklog))
		row("  broker down", fmt.Sprintf("%.1f s", r.OutageDownS))
		row("  peak connects a second", fmt.Sprintf("%d (%.1f%% of the fleet)", r.OutagePeakConnectsPerS, 100*r.OutagePeakShare))
		row("  connects a second", fmt.Sprint(r.OutageSeries))
		row("  every box back online after", fmt.Sprintf("%.1f s", r.OutageBackOnlineS))
		row("  drained in", fmt.Sprintf("%.1f s", r.OutageDrainS))
	}
	row("events produced", strconv.FormatUint(r.Produced, 10))
	row("events delivered", strconv.FormatUint(r.Delivered, 10))
	row("events lost", strconv.FormatUint(r.Lost, 10))
	row("events undelivered (in outboxes)", strconv.FormatUint(r.Undelivered, 10))
	row("events duplicated", strconv.Itoa(r.Duplicated))
	row("command round trip p50 / p99", fmt.Sprintf("%.1f ms / %.1f ms (%d failed)", r.CmdP50Ms, r.CmdP99Ms, r.CmdFailed))
	row("steady traffic", fmt.Sprintf("%.0f events/s", r.SteadyEventsPerS))
	row("RSS per box", fmt.Sprintf("%d KiB (the brokers: %d KiB per box)", r.RSSPerBoxK, r.BrokerRSSPerBoxK))
	for _, n := range r.Notes {
		row("note", n)
	}
}

// percentile is the p-th percentile (0..1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// perSecond buckets ts into seconds from t0 (the first bucket holds what
// came before t0) and returns the counts and the largest.
func perSecond(ts []time.Time, t0 time.Time) (series []int, peak int) {
	for _, t := range ts {
		b := max(int(math.Floor(t.Sub(t0).Seconds()))+1, 0)
		for len(series) <= b {
			series = append(series, 0)
		}
		series[b]++
		peak = max(peak, series[b])
	}
	return series, peak
}

// rssKiB reads this process's resident set size.
func rssKiB() int { return procRSS("self") }

// brokerRSSKiB sums the resident set sizes of the processes whose command
// line names dir: the broker processes of a run.
func brokerRSSKiB(dir string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	total := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmd, []byte(dir)) {
			total += procRSS(e.Name())
		}
	}
	return total
}

// procRSS reads the VmRSS of a /proc entry, in KiB.
func procRSS(pid string) int {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
