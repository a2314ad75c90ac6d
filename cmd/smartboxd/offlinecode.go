package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"smartboxd/internal/config"
	"smartboxd/offline"
)

// offlineCode prints an offline code for this box (contract §8), for a
// technician who holds the box's offline key:
//
//	smartboxd -config F offline-code -key-file F -key-id K -mode pickup -hours 24 -start 2026-05-01T14:00:00Z
//
// The key (base64 of its 32 bytes, as offline.set_key takes it) is read
// from -key-file, "-" for standard input, never from the command line,
// where ps would show it. -hours is rounded up to the shortest duration
// class that covers it; -start (default: now) is rounded down to its hour.
func offlineCode(cfg *config.Config, args []string, in io.Reader, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("offline-code", flag.ContinueOnError)
	fs.SetOutput(errOut)
	keyFile := fs.String("key-file", "", `a file holding the offline key in base64 ("-": standard input)`)
	keyID := fs.String("key-id", "", "the key the code is for")
	modeName := fs.String("mode", "pickup", "pickup, dropoff, pickup_once or dropoff_once")
	hours := fs.Int("hours", 24, "how long the code is valid, rounded up to 1, 2, 4, 8, 24, 48, 72, 168, 336 or 672")
	startText := fs.String("start", "", "when the code starts, RFC 3339 (default now; rounded down to the hour)")
	usage := func(err error) error { return &exitError{code: 2, err: fmt.Errorf("offline-code: %w", err)} }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: errors.New("")}
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected %q", fs.Arg(0)))
	}
	if *keyFile == "" {
		return usage(errors.New("-key-file is required (the key is never taken from the command line)"))
	}
	if *keyID == "" {
		return usage(errors.New("-key-id is required"))
	}
	mode, ok := modeNamed(*modeName)
	if !ok {
		return usage(fmt.Errorf("-mode %q: want pickup, dropoff, pickup_once or dropoff_once", *modeName))
	}
	class, err := classFor(*hours)
	if err != nil {
		return usage(err)
	}
	start := time.Now()
	if *startText != "" {
		if start, err = time.Parse(time.RFC3339, *startText); err != nil {
			return usage(fmt.Errorf("-start %q: not an RFC 3339 time", *startText))
		}
	}
	key, err := readOfflineKey(*keyFile, in)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer clear(key)
	code, err := offline.Generate(key, cfg.BoxID, *keyID, mode, class, start)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("offline-code: %w", err)}
	}
	from, to := offline.Window(offline.HourOf(start), class)
	h, _ := offline.Hours(class)
	if h != *hours {
		fmt.Fprintf(out, "note: -hours %d rounds up to %d, the shortest class that covers it\n", *hours, h)
	}
	fmt.Fprintf(out, "code   %s\n", code)
	fmt.Fprintf(out, "box    %s, key %s, %s\n", cfg.BoxID, *keyID, mode)
	fmt.Fprintf(out, "valid  %s to %s (%d hours, class %d)\n", from.Format(time.RFC3339), to.Format(time.RFC3339), h, class)
	return nil
}

func modeNamed(name string) (offline.Mode, bool) {
	for m := offline.Pickup; m <= offline.DropoffOnce; m++ {
		if m.String() == name {
			return m, true
		}
	}
	return 0, false
}

// classFor is the shortest duration class of at least hours.
func classFor(hours int) (int, error) {
	if hours < 1 {
		return 0, fmt.Errorf("-hours %d: at least 1", hours)
	}
	for c := range offline.Classes {
		if h, _ := offline.Hours(c); h >= hours {
			return c, nil
		}
	}
	longest, _ := offline.Hours(offline.Classes - 1)
	return 0, fmt.Errorf("-hours %d: at most %d", hours, longest)
}

// readOfflineKey reads a base64 offline key from path ("-": in). Its
// errors never show the file's content.
func readOfflineKey(path string, in io.Reader) ([]byte, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(io.LimitReader(in, 4096))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("offline-code: read the key: %w", err)
	}
	defer clear(raw)
	key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != offline.KeySize {
		clear(key)
		return nil, fmt.Errorf("offline-code: %s does not hold an offline key (base64 of %d bytes)", path, offline.KeySize)
	}
	return key, nil
}
