package main

import (
	"strings"
	"testing"
)

// TestUnitLetsTheClockBeRead: ProtectClock= makes even a read-only
// adjtimex(2) fail with EPERM, and an unreadable clock counts as not
// synchronised, so under it every time-bound code would fail closed. The
// unit must leave the clock readable, and setting it stays impossible: the
// bounding set grants no capability (so no CAP_SYS_TIME).
func TestUnitLetsTheClockBeRead(t *testing.T) {
	raw, err := readFile("../../configs/smartboxd.service")
	if err != nil {
		t.Fatal(err)
	}
	caps := false
	for _, ln := range strings.Split(raw, "\n") {
		ln = strings.TrimSpace(ln)
		if strings.HasPrefix(ln, "#") {
			continue
		}
		if strings.HasPrefix(ln, "ProtectClock=") {
			t.Errorf("the unit sets %s: the daemon could not read whether the clock is synchronised", ln)
		}
		if strings.HasPrefix(ln, "AmbientCapabilities=") && strings.Contains(ln, "CAP_SYS_TIME") {
			t.Errorf("the unit grants CAP_SYS_TIME: %s", ln)
		}
		if ln == "CapabilityBoundingSet=" {
			caps = true
		}
	}
	if !caps {
		t.Errorf("the unit does not empty CapabilityBoundingSet=")
	}
}
