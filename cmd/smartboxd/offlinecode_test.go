package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The key and box of offline/testdata/vectors.md.
const (
	vectorKey = "iM6XpijApFiZnFo0bN9w42am5QKbrEW6bDDF1Uz5E40="
	vectorBox = "box-0042"
)

func TestOfflineCodeCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "box_id: "+vectorBox+"\ndata_dir: "+filepath.Join(dir, "data")+"\nhardware: {backend: sim, bins: [{id: 1}]}\nkeypad: {type: none}\n")
	keyFile := filepath.Join(dir, "offline.key")
	if err := os.WriteFile(keyFile, []byte(vectorKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(badKey, []byte("c2VjcmV0LWJ1dC1zaG9ydA==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-config", cfg, "offline-code", "-key-file", keyFile}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  []string // lines of the output, in order
		exit  int      // 0: success
		err   string   // what the error says
	}{
		{"a vector", append(base, "-key-id", "key-1", "-mode", "pickup", "-hours", "672", "-start", "2025-02-20T16:00:00Z"), "",
			[]string{"code   19000025204743", "box    box-0042, key key-1, pickup", "valid  2025-02-20T16:00:00Z to 2025-03-20T16:00:00Z (672 hours, class 9)"}, 0, ""},
		{"hours round up, start rounds down", append(base, "-key-id", "k", "-mode", "dropoff_once", "-hours", "2", "-start", "2025-02-20T16:59:59Z"), "",
			[]string{"code   41000091082976", "valid  2025-02-20T16:00:00Z to 2025-02-20T18:00:00Z (2 hours, class 1)"}, 0, ""},
		{"hours between classes", append(base, "-key-id", "key-1", "-mode", "pickup", "-hours", "20", "-start", "2025-02-20T15:30:00Z"), "",
			[]string{"note: -hours 20 rounds up to 24, the shortest class that covers it", "valid  2025-02-20T15:00:00Z to 2025-02-21T15:00:00Z (24 hours, class 4)"}, 0, ""},
		{"the key on stdin", []string{"-config", cfg, "offline-code", "-key-file", "-", "-key-id", "Schlüssel 3", "-mode", "pickup_once", "-hours", "48", "-start", "2025-02-20T15:30:00Z"}, vectorKey,
			[]string{"code   35999939949069"}, 0, ""},
		{"no key file", []string{"-config", cfg, "offline-code", "-key-id", "k"}, "", nil, 2, "-key-file is required"},
		{"a key flag", append(base, "-key", vectorKey, "-key-id", "k"), "", nil, 2, ""},
		{"no key id", append(base, "-mode", "pickup"), "", nil, 2, "-key-id is required"},
		{"mode 0", append(base, "-key-id", "k", "-mode", "0"), "", nil, 2, "-mode"},
		{"an unknown mode", append(base, "-key-id", "k", "-mode", "borrow"), "", nil, 2, "-mode"},
		{"no hours", append(base, "-key-id", "k", "-hours", "0"), "", nil, 2, "at least 1"},
		{"too many hours", append(base, "-key-id", "k", "-hours", "673"), "", nil, 2, "at most 672"},
		{"a bad start", append(base, "-key-id", "k", "-start", "tomorrow"), "", nil, 2, "RFC 3339"},
		{"before the epoch", append(base, "-key-id", "k", "-start", "2023-12-31T23:00:00Z"), "", nil, 1, "before 2024"},
		{"a short key", []string{"-config", cfg, "offline-code", "-key-file", badKey, "-key-id", "k"}, "", nil, 1, "does not hold an offline key"},
		{"a missing key file", []string{"-config", cfg, "offline-code", "-key-file", filepath.Join(dir, "nope"), "-key-id", "k"}, "", nil, 1, "read the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdin = strings.NewReader(tc.stdin)
			defer func() { stdin = os.Stdin }()
			var out, errOut bytes.Buffer
			err := run(tc.args, &out, &errOut)
			if tc.exit == 0 {
				if err != nil {
					t.Fatalf("run: %v\n%s", err, errOut.String())
				}
				at := 0
				for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					if at < len(tc.want) && line == tc.want[at] {
						at++
					}
				}
				if at < len(tc.want) {
					t.Fatalf("output lacks %q:\n%s", tc.want[at], out.String())
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tc.exit {
				t.Fatalf("run = %v, want exit %d", err, tc.exit)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q does not say %q", err, tc.err)
			}
			if out.Len() > 0 {
				t.Errorf("a failed command printed %q", out.String())
			}
			if strings.Contains(err.Error()+errOut.String(), "c2VjcmV0") {
				t.Error("the key file's content is in the error")
			}
		})
	}
}
