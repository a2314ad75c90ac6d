package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"smartboxd/internal/mqtttest"
)

// TestSmallFleet runs the simulator's small form: about thirty boxes on
// mosquitto (restart storm, outage) and on a three-node RabbitMQ cluster
// (one node killed under load, then every node killed for the outage), and
// checks its report: every event the boxes wrote reached the cloud, the
// boxes that lost their broker came back with a new session, and every
// command was answered. The boxes' first reconnect window is 2 s, not the
// fleet's 20 s: the spreading is sync/mqttlink's to test, and this form
// must stay short.
func TestSmallFleet(t *testing.T) {
	for _, tc := range []struct {
		broker string
		args   []string
	}{
		{"mosquitto", []string{"-n", "20", "-down", "2s", "-outage-steps", "10"}},
		// The cluster's full outage (every node killed, booted
		// together) takes minutes of boot; make fleet runs it.
		{"rabbitmq", []string{"-n", "30", "-skip", "outage"}},
	} {
		t.Run(tc.broker, func(t *testing.T) {
			t.Parallel() // the cluster's start-up dominates; mosquitto's run fits beside it
			args := append([]string{"-brokers", tc.broker, "-dir", t.TempDir(), "-steady", "3s", "-rate", "30", "-wait", "90s", "-reconnect-min", "2s"}, tc.args...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if errors.Is(err, mqtttest.ErrRabbitUnavailable) {
				t.Skipf("no RabbitMQ here: %v", err)
			}
			if err != nil {
				t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			t.Logf("report:\n%s", &stdout)
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			var rep report
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
				t.Fatalf("last line is not the JSON report: %v", err)
			}
			r := rep.Results[tc.broker]
			switch {
			case r == nil:
				t.Fatalf("no %s result in %+v", tc.broker, rep)
			case r.Produced == 0 || r.Delivered != r.Produced || r.Lost != 0 || r.Undelivered != 0:
				t.Errorf("events produced %d, delivered %d, lost %d, undelivered %d", r.Produced, r.Delivered, r.Lost, r.Undelivered)
			case r.StormReconnected == 0:
				t.Errorf("no box reconnected in the storm (%s)", r.Storm)
			case r.CmdFailed != 0 || r.CmdP50Ms <= 0:
				t.Errorf("fan-out: %d failed, p50 %v ms", r.CmdFailed, r.CmdP50Ms)
			case r.RSSPerBoxK <= 0:
				t.Errorf("RSS per box %d KiB", r.RSSPerBoxK)
			}
			if tc.broker == "mosquitto" && r.StormReconnected != rep.N {
				t.Errorf("mosquitto: %d of %d boxes reconnected after the restart", r.StormReconnected, rep.N)
			}
			if tc.broker == "mosquitto" && (r.OutageBacklog == 0 || r.OutageBackOnlineS <= 0) {
				t.Errorf("outage: backlog %d, back online after %v s", r.OutageBacklog, r.OutageBackOnlineS)
			}
		})
	}
}
