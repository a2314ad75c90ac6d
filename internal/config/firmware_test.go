package config

import (
	"os"
	"path/filepath"
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

func TestDataDirOf(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml, want string
		err              bool
	}{
		{"plain", "box_id: b\ndata_dir: /var/lib/smartbox\n", "/var/lib/smartbox", false},
		{"fields of a newer version", "data_dir: /d\nsomething_new: {a: 1}\n", "/d", false},
		{"none", "box_id: b\n", "", true},
		{"not yaml", "data_dir: [\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := DataDirOf(path)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("DataDirOf = %q, %v; want %q, error %t", got, err, tc.want, tc.err)
			}
		})
	}
}
