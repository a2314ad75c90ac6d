package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(head + simBins))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.BoxID, want.DataDir = "b1", "/d"
	want.MQTT.ClientID = "b1"
	want.Hardware.Bins = []Bin{{ID: 1}, {ID: 2}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", c, want)
	}

	// Spot checks against the contract, so that Default itself is tested.
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"mqtt.broker", c.MQTT.Broker, ""},
		{"mqtt.topic_prefix", c.MQTT.TopicPrefix, "smartbox"},
		{"mqtt.client_id", c.MQTT.ClientID, "b1"},
		{"mqtt.ack", c.MQTT.Ack, "cloud"},
		{"mqtt.keepalive_s", c.MQTT.KeepAliveS, 30},
		{"mqtt.in_flight", c.MQTT.InFlight, 512},
		{"mqtt.max_payload_kb", c.MQTT.MaxPayloadKB, 256},
		{"mqtt.snapshot_max_mb", c.MQTT.SnapshotMaxMB, 64},
		{"console.port", c.Console.Port, ""},
		{"console.baud", c.Console.Baud, 115200},
		{"console.idle_logout_s", c.Console.IdleLogoutS, 300},
		{"hardware.backend", c.Hardware.Backend, "sim"},
		{"hardware.lock_active", c.Hardware.LockActive, "high"},
		{"hardware.door_open", c.Hardware.DoorOpen, "high"},
		{"keypad.type", c.Keypad.Type, "none"},
		{"keypad.baud", c.Keypad.Baud, 9600},
		{"keypad.star", c.Keypad.Star, 10},
		{"keypad.hash", c.Keypad.Hash, 11},
		{"keypad.layout", c.Keypad.Layout, []string{"123", "456", "789", "*0#"}},
		{"keypad.debounce_ms", c.Keypad.DebounceMS, 8},
		{"timing.lock_pulse_ms", c.Timing.LockPulseMS, 500},
		{"timing.max_energised", c.Timing.MaxEnergised, 2},
		{"timing.lock_rest_ms", c.Timing.LockRestMS, 1000},
		{"timing.fob_absent_ms", c.Timing.FobAbsentMS, 600},
		{"timing.dropoff_timeout_s", c.Timing.DropoffTimeoutS, 60},
		{"timing.key_timeout_s", c.Timing.KeyTimeoutS, 10},
		{"timing.door_held_open_s", c.Timing.DoorHeldOpenS, 120},
		{"timing.door_debounce_ms", c.Timing.DoorDebounceMS, 50},
		{"timing.inventory_settle_s", c.Timing.InventorySettleS, 3},
		{"timing.late_after_s", c.Timing.LateAfterS, 60},
		{"security.lockout_after", c.Security.LockoutAfter, 5},
		{"security.lockout_s", c.Security.LockoutS, 30},
		{"security.lockout_max_s", c.Security.LockoutMaxS, 900},
		{"security.lockout_window_s", c.Security.LockoutWindowS, 600},
		{"security.lockout_decay_s", c.Security.LockoutDecayS, 3600},
		{"clock.require_sync", c.Clock.RequireSync != nil && *c.Clock.RequireSync, true},
		{"outbox.max_events", c.Outbox.MaxEvents, 1_000_000},
		{"limits.max_access_codes", c.Limits.MaxAccessCodes, 200_000},
		{"limits.max_keys", c.Limits.MaxKeys, 100_000},
		{"limits.replies", c.Limits.Replies, 100_000},
		{"limits.removed_retention_s", c.Limits.RemovedRetentionS, 604800},
		{"log.level", c.Log.Level, "info"},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultsInListItems(t *testing.T) {
	c, err := Parse([]byte(head + gpioHW + `readers:
  - {type: rdm6300, port: /dev/ttyUSB0, bin: 1}
  - {type: wiegand, d0: GPIO5, d1: GPIO6, bin: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Reader{
		{Type: "rdm6300", Port: "/dev/ttyUSB0", Baud: 9600, Bin: 1},
		{Type: "wiegand", D0: "GPIO5", D1: "GPIO6", Bits: 26, Serial: "raw", Bin: 2},
	}
	if !reflect.DeepEqual(c.Readers, want) {
		t.Errorf("readers = %+v, want %+v", c.Readers, want)
	}
}

// Given values override the defaults, also false and explicit client ids,
// and null leaves a default in place.
func TestGivenValues(t *testing.T) {
	c, err := Parse([]byte(head + simBins + `mqtt:
  client_id: cloud-7
  topic_prefix: ~
clock: {require_sync: false}
keypad: {layout: ~, debounce_ms: 5}
timing: {lock_pulse_ms: 250}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.ClientID != "cloud-7" || c.MQTT.TopicPrefix != "smartbox" {
		t.Errorf("mqtt = %+v", c.MQTT)
	}
	if c.Clock.RequiresSync() {
		t.Error("clock.require_sync: false was not kept")
	}
	if !slices.Equal(c.Keypad.Layout, defaultLayout()) || c.Keypad.DebounceMS != 5 {
		t.Errorf("keypad = %+v", c.Keypad)
	}
	if c.Timing.LockPulse().Milliseconds() != 250 {
		t.Errorf("lock pulse = %v", c.Timing.LockPulse())
	}
}

func TestSchemaProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "field: message" lines
	}{
		{"unknown keys at every depth", head + `boxid: x
mqtt: {brokr: 'tcp://h:1', tls: {ca: x}}
hardware: {bins: [{id: 1}, {id: 2, lok: GPIO1}]}
readers: [{type: sim, bin: 1}, {type: sim, bin: 2, prot: x}]
keypad: {type: none, kind: x}
`, []string{
			"boxid: unknown field",
			"mqtt.brokr: unknown field",
			"mqtt.tls.ca: unknown field",
			"hardware.bins[1].lok: unknown field",
			"readers[1].prot: unknown field",
			"keypad.kind: unknown field",
		}},
		{"odd key quoted", head + simBins + "mqtt: {\"bro ker\": x, \"a\\nb\": y}\n", []string{
			`mqtt."bro ker": unknown field`,
			`mqtt."a\nb": unknown field`,
		}},
		{"duplicate key", head + simBins + "log:\n  level: info\n  level: debug\n", []string{
			"log.level: given twice (first on line 5)",
		}},
		{"wrong types", head + `hardware: {bins: [{id: one}]}
timing: {lock_pulse_ms: 1.5, key_timeout_s: "10"}
clock: {require_sync: maybe}
keypad: {rows: GPIO5}
mqtt: 5
readers: {type: sim}
`, []string{
			"hardware.bins[0].id: must be a whole number",
			"timing.lock_pulse_ms: must be a whole number",
			"timing.key_timeout_s: must be a whole number",
			"clock.require_sync: must be true or false",
			"keypad.rows: must be a list",
			"mqtt: must be a mapping",
			"readers: must be a list",
		}},
		{"string given a list", "box_id: [a]\ndata_dir: {a: b}\n" + simBins, []string{
			"box_id: must be a string",
			"data_dir: must be a string",
		}},
		{"number out of range", head + simBins + "timing: {lock_pulse_ms: 18446744073709551615}\n", []string{
			"timing.lock_pulse_ms: number out of range",
		}},
		{"unknown key and rule together", "data_dir: /d\n" + simBins + "mqtt: {brokr: x, broker: 'foo://x'}\n", []string{
			"mqtt.brokr: unknown field",
			"box_id: required",
			"mqtt.broker: scheme must be tcp, ssl or ws",
		}},
		{"not a mapping", "- box_id\n", []string{
			"yaml: the document must be a mapping of settings (box_id: ..., data_dir: ...)",
		}},
		{"two documents", head + simBins + "---\nbox_id: b2\n", []string{
			"yaml: the file must hold one document",
		}},
		{"trailing document marker", head + simBins + "---\n", nil},
		{"empty", "", []string{"box_id: required", "data_dir: required", "hardware.bins: at least one bin required"}},
		{"merged unknown key", head + simBins + "base: &b {type: sim}\n", []string{"base: unknown field"}},
		{"unknown key inside a merge", head + simBins + "readers:\n  - &r {type: sim, bin: 1, colour: red}\n  - {<<: *r, bin: 2}\n", []string{
			"readers[0].colour: unknown field",
			"readers[1].colour: unknown field",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.doc)
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	ps := problemsOf(t, "box_id: [\n")
	if len(ps) != 1 || ps[0].Field != "" || !strings.HasPrefix(ps[0].Message, "yaml: line ") {
		t.Errorf("problems = %q", ps.Error())
	}
}

func TestAliasesAndMerges(t *testing.T) {
	c, err := Parse([]byte(head + simBins + `readers:
  - &r {type: rdm6300, port: /dev/ttyUSB0, baud: 19200, bin: 1}
  - {<<: *r, port: /dev/ttyUSB1, bin: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Reader{
		{Type: "rdm6300", Port: "/dev/ttyUSB0", Baud: 19200, Bin: 1},
		{Type: "rdm6300", Port: "/dev/ttyUSB1", Baud: 19200, Bin: 2},
	}
	if !reflect.DeepEqual(c.Readers, want) {
		t.Errorf("readers = %+v, want %+v", c.Readers, want)
	}
}

func TestPINIsHashed(t *testing.T) {
	t.Parallel()
	const pin = "135790"
	c, err := Parse([]byte(head + simBins + "console: {port: stdio, technician_pin: '" + pin + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.TechnicianPIN != "" {
		t.Error("the plain PIN was kept")
	}
	h := []byte(c.Console.TechnicianPINHash)
	if err := bcrypt.CompareHashAndPassword(h, []byte(pin)); err != nil {
		t.Errorf("hash does not match the PIN: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword(h, []byte("135791")); err == nil {
		t.Error("hash matches another PIN")
	}
	if cost, _ := bcrypt.Cost(h); cost != bcrypt.DefaultCost {
		t.Errorf("cost = %d, want %d", cost, bcrypt.DefaultCost)
	}
	if s := fmt.Sprintf("%+v", c); strings.Contains(s, pin) {
		t.Error("the PIN shows in the printed config")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("a loaded config does not validate again: %v", err)
	}

	// A given hash is kept as it is.
	c, err = Parse([]byte(head + simBins + "console: {port: stdio, technician_pin_hash: '" + testHash + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.TechnicianPINHash != testHash {
		t.Errorf("hash = %q, want %q", c.Console.TechnicianPINHash, testHash)
	}
}

func TestPINNeverInErrors(t *testing.T) {
	for _, tt := range []struct {
		name, pin, rest string
	}{
		{"valid pin, other problems", "864209", "mqtt: {broker: 'foo://x'}\ntiming: {lock_pulse_ms: 1}\n"},
		{"too short", "86421", ""},
		{"too long", "8642086420864", ""},
		{"letters", "864z09", ""},
		{"pin and hash", "864209", ""},
		{"spaces", "864 209", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			console := "console: {port: /dev/ttyS0, technician_pin: '" + tt.pin + "'}\n"
			if tt.name == "pin and hash" {
				console = "console: {port: /dev/ttyS0, technician_pin: '" + tt.pin + "', technician_pin_hash: '" + testHash + "'}\n"
			}
			_, err := Parse([]byte(head + simBins + console + tt.rest))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			if strings.Contains(err.Error(), tt.pin) {
				t.Errorf("the PIN is in the error:\n%v", err)
			}
		})
	}
	// Nor when the PIN lands in a field of the wrong type.
	_, err := Parse([]byte(head + simBins + "console: {baud: 864209x}\ntiming: {lock_pulse_ms: \"864209\"}\n"))
	if err == nil || strings.Contains(err.Error(), "864209") {
		t.Errorf("error = %v", err)
	}
}

// configFiles maps each file in configs/ to the rewrites that make its
// outside references (TLS files under /etc/smartbox) exist in dir.
func configFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "/etc/smartbox/") {
		return data
	}
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "box.crt", "box.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []byte(strings.ReplaceAll(string(data), "/etc/smartbox/", dir+"/"))
}

func TestConfigFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"example.yaml", "pi-12bin.yaml", "sim.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("configs/%s missing", want)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(configFile(t, name)); err != nil {
				t.Errorf("configs/%s:\n%v", name, err)
			}
		})
	}
}

func TestSimConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join("..", "..", "configs", "sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.BoxID != "demo-box" || c.DataDir != ".run/sim" || c.MQTT.Broker != "tcp://127.0.0.1:18830" ||
		c.Console.Port != "stdio" || c.Hardware.Backend != "sim" || c.Keypad.Type != "sim" {
		t.Errorf("config = %+v", c)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(c.Console.TechnicianPINHash), []byte("246810")); err != nil {
		t.Errorf("technician PIN is not 246810: %v", err)
	}
	if got := c.BinIDs(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("bins = %v", got)
	}
	for _, b := range c.Hardware.Bins {
		if hasDoor := b.Door != ""; hasDoor != (b.ID >= 7) {
			t.Errorf("bin %d door = %q", b.ID, b.Door)
		}
		if r := c.ReaderForBin(b.ID); r == nil || r.Type != "sim" {
			t.Errorf("bin %d reader = %+v", b.ID, r)
		}
	}
}

func TestPiConfig(t *testing.T) {
	t.Parallel()
	c, err := Parse(configFile(t, "pi-12bin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hardware.Backend != "gpio" || len(c.Hardware.Bins) != 12 || len(c.Readers) != 12 ||
		c.Keypad.Type != "serial" || c.Keypad.Port != "/dev/smartbox/keypad" || c.Console.Port != "/dev/ttyS0" {
		t.Errorf("config = %+v", c)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(c.Console.TechnicianPINHash), []byte("246810")); err != nil {
		t.Errorf("technician_pin_hash is not a hash of 246810: %v", err)
	}
	// Only the Pi's free GPIOs: BCM 2-27, less the console UART (14, 15).
	var pins []string
	for _, b := range c.Hardware.Bins {
		pins = append(pins, b.Lock)
		if b.Door != "" {
			pins = append(pins, b.Door)
		}
	}
	pins = append(pins, c.Hardware.Buzzer)
	for _, p := range pins {
		var n int
		if _, err := fmt.Sscanf(p, "GPIO%d", &n); err != nil || n < 2 || n > 27 || n == 14 || n == 15 {
			t.Errorf("pin %q is not a free Pi GPIO", p)
		}
	}
	for i, r := range c.Readers {
		if r.Type != "rdm6300" || r.Bin != i+1 || r.Port != fmt.Sprintf("/dev/smartbox/reader%d", i+1) || r.Baud != 9600 {
			t.Errorf("readers[%d] = %+v", i, r)
		}
	}
}

// example.yaml documents the defaults: it means the same as a file that
// gives only what it has beyond them.
func TestExampleShowsDefaults(t *testing.T) {
	example, err := Parse(configFile(t, "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := Parse([]byte("box_id: box-0001\ndata_dir: /var/lib/smartbox\n" +
		"hardware: {bins: [{id: 1}, {id: 2}]}\nreaders: [{type: sim, bin: 1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	// keys: [] and absent keys mean the same, as do rows: [] and absent rows.
	for _, tr := range []*Trust{&example.Trust, &minimal.Trust} {
		if len(tr.Keys) == 0 {
			tr.Keys = nil
		}
		if len(tr.ReleaseKeys) == 0 {
			tr.ReleaseKeys = nil
		}
	}
	for _, k := range []*Keypad{&example.Keypad, &minimal.Keypad} {
		if len(k.Rows) == 0 {
			k.Rows = nil
		}
		if len(k.Cols) == 0 {
			k.Cols = nil
		}
	}
	if !reflect.DeepEqual(example, minimal) {
		t.Errorf("example.yaml =\n%+v\nthe defaults =\n%+v", example, minimal)
	}
	// And it names every field.
	text := string(configFile(t, "example.yaml"))
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !strings.Contains(text, name+":") {
				t.Errorf("example.yaml does not show %s", name)
			}
			switch ft := f.Type; {
			case ft.Kind() == reflect.Struct:
				walk(ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem())
			}
		}
	}
	walk(configType)
}

// The schema check handles every kind of field Config has.
func TestSchemaKinds(t *testing.T) {
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, path string) {
		switch rt.Kind() {
		case reflect.Struct:
			for i := range rt.NumField() {
				walk(rt.Field(i).Type, path+"."+rt.Field(i).Name)
			}
		case reflect.Slice, reflect.Pointer:
			walk(rt.Elem(), path)
		case reflect.String, reflect.Int, reflect.Bool, reflect.Float64:
		default:
			t.Errorf("%s: schemaCheck does not handle %v", path, rt)
		}
	}
	walk(configType, "Config")
}

func TestLoad(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("Load(missing) = %v", err)
	}
	if !strings.HasPrefix(fmt.Sprint(err), "config: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}

	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("data_dir: /d\n"+simBins), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	var ps *Problems
	if !errors.As(err, &ps) || !slices.Equal(ps.Fields(), []string{"box_id"}) {
		t.Errorf("Load(no box_id) = %v", err)
	}

	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("Load(big) = %v", err)
	}
}

func TestHelpers(t *testing.T) {
	c, err := Parse([]byte(`box_id: b1
data_dir: /var/lib/sb
mqtt: {topic_prefix: acme/boxes}
hardware: {bins: [{id: 3}, {id: 1}, {id: 2}]}
readers: [{type: sim, bin: 2}, {type: sim, bin: 3}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DBPath(); got != "/var/lib/sb/smartbox.db" {
		t.Errorf("DBPath = %q", got)
	}
	if got := c.SecretPath(); got != "/var/lib/sb/secret" {
		t.Errorf("SecretPath = %q", got)
	}
	if got := c.TopicBase(); got != "acme/boxes/b1" {
		t.Errorf("TopicBase = %q", got)
	}
	if got := c.BinIDs(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("BinIDs = %v", got)
	}
	if r := c.ReaderForBin(3); r != &c.Readers[1] {
		t.Errorf("ReaderForBin(3) = %p, want %p", r, &c.Readers[1])
	}
	if r := c.ReaderForBin(1); r != nil {
		t.Errorf("ReaderForBin(1) = %+v, want nil", r)
	}

	for _, tt := range []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError},
	} {
		c.Log.Level = tt.level
		if got := c.SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%s) = %v", tt.level, got)
		}
	}

	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("  s3cret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, want string
		err        bool
	}{
		{"", "", false},
		{pw, "s3cret", false},
		{pw + ".missing", "", true},
	} {
		got, err := MQTT{PasswordFile: tt.file}.Password()
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("Password(%q) = %q, %v", tt.file, got, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"sim.yaml", "example.yaml", "pi-12bin.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "[]", "- a", "a: [", head + simBins,
		head + gpioHW + "keypad: {type: matrix, rows: [a, b], cols: [c], layout: [x, y]}\n",
		head + simBins + "readers:\n  - &r {type: sim, bin: 1}\n  - {<<: [*r], bin: 2}\n",
		"a: &a [*a]\n", "box_id: !!binary '***'\n", "mqtt: {broker: 'tcp://[::1]:1883'}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without an error")
			}
			if c.Console.TechnicianPIN != "" {
				t.Fatal("plain PIN kept")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("a parsed config does not validate: %v", err)
			}
			return
		}
		var ps *Problems
		if !errors.As(err, &ps) || len(*ps) == 0 {
			t.Fatalf("error %v (%T) is not a non-empty *Problems", err, err)
		}
		for _, p := range *ps {
			if p.Message == "" || strings.Contains(p.String(), "\n") {
				t.Fatalf("bad problem %q", p.String())
			}
		}
	})
}

// Aliases and merges cannot make the check do unbounded work.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + simBins + "readers:\n  - &a0 {type: sim, bin: 1}\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&b, "  - &a%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	ps := problemsOf(t, b.String())
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "too large") {
		t.Errorf("problems = %v", ps.Error())
	}
}
