package config

import (
	"strings"
	"testing"
	"time"
)

func TestFirmwareTrial(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want time.Duration
		prob string
	}{
		{"default", "", 120 * time.Second, ""},
		{"given", "firmware:\n  trial_s: 30\n", 30 * time.Second, ""},
		{"zero", "firmware:\n  trial_s: 0\n", 0, "firmware.trial_s: "},
		{"too long", "firmware:\n  trial_s: 3601\n", 0, "firmware.trial_s: "},
		{"unknown key", "firmware:\n  trial: 30\n", 0, "firmware.trial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(head + simBins + tc.yaml))
			if tc.prob == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Firmware.Trial(); got != tc.want {
					t.Fatalf("trial %v, want %v", got, tc.want)
				}
				return
			}
			probs := problemsOf(t, head+simBins+tc.yaml)
			if len(probs) != 1 || !strings.HasPrefix(probs[0].String(), tc.prob) {
				t.Fatalf("problems %v, want one starting %q", probs, tc.prob)
			}
		})
	}
}
