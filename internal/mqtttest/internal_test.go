package mqtttest

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestInstallDepsQuietWhenInstalled checks that .ci/install-deps.sh, which
// tests and CI call freely, does nothing and says nothing once mosquitto is
// there.
func TestInstallDepsQuietWhenInstalled(t *testing.T) {
	if _, err := MosquittoBinary(); err != nil { // installs it if needed
		t.Fatal(err)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", filepath.Join(root, ".ci", "install-deps.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("install-deps.sh: %v\n%s", err, out)
	}
	if len(out) != 0 {
		t.Fatalf("install-deps.sh printed %q with mosquitto installed, want nothing", out)
	}
}

func TestTopicMatches(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"+/+", "a/b", true},
		{"+", "a", true},
		{"+", "", true},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "b/c", false},
		{"#", "a/b", true},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"smartbox/box-0001/events", "smartbox/box-0001/events/ack", false},
		{"smartbox/+/events/#", "smartbox/box-0001/events/ack", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.topic, func(t *testing.T) {
			if got := topicMatches(tt.filter, tt.topic); got != tt.want {
				t.Errorf("topicMatches(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}
