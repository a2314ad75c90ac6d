package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Bases the rule cases build on; each is valid on its own.
const (
	head    = "box_id: b1\ndata_dir: /d\n"
	simBins = "hardware: {bins: [{id: 1}, {id: 2}]}\n"
	gpioHW  = "hardware: {backend: gpio, bins: [{id: 1, lock: GPIO17}, {id: 2, lock: GPIO27}]}\n"
	// testHash is a bcrypt hash (cost 4) of 135790.
	testHash = "$2a$04$dwzVPSSReoeSpiqLv/vkh.hXri1Z.Xemv7tJfo4GEFzB4MU4hRKYG"
)

// problemsOf parses doc and returns its problems, failing the test when the
// error is anything but a *Problems.
func problemsOf(t *testing.T, doc string) Problems {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err == nil {
		if c == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return nil
	}
	if c != nil {
		t.Errorf("Parse returned a config along with %v", err)
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error %v (%T) is not a *Problems", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	return *ps
}

func TestRules(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, cert, key, pw := file("ca.pem"), file("box.crt"), file("box.key"), file("pw")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name string
		doc  string
		want []string // the fields with problems, in order; nil = valid
		msg  string   // a part of the first problem's message
	}{
		// The bases themselves.
		{"sim base", head + simBins, nil, ""},
		{"gpio base", head + gpioHW, nil, ""},

		// box_id, data_dir.
		{"box_id missing", "data_dir: /d\n" + simBins, []string{"box_id"}, "required"},
		{"box_id bad char", "box_id: box/1\ndata_dir: /d\n" + simBins, []string{"box_id"}, "A-Z"},
		{"box_id space", "box_id: 'box 1'\ndata_dir: /d\n" + simBins, []string{"box_id"}, ""},
		{"box_id 64", "box_id: " + strings.Repeat("a", 64) + "\ndata_dir: /d\n" + simBins, nil, ""},
		{"box_id 65", "box_id: " + strings.Repeat("a", 65) + "\ndata_dir: /d\n" + simBins, []string{"box_id"}, ""},
		{"data_dir missing", "box_id: b1\n" + simBins, []string{"data_dir"}, "required"},

		// mqtt.brokers.
		{"brokers two", head + simBins + "mqtt: {brokers: ['tcp://10.0.0.1:1883', 'tcp://10.0.0.2:1883']}\n", nil, ""},
		{"brokers and broker", head + simBins + "mqtt: {broker: 'tcp://10.0.0.1:1883', brokers: ['tcp://10.0.0.2:1883']}\n", []string{"mqtt.brokers"}, "beside mqtt.broker"},
		{"brokers bad second", head + simBins + "mqtt: {brokers: ['tcp://10.0.0.1:1883', 'foo://x:1']}\n", []string{"mqtt.brokers[1]"}, "scheme must be tcp, ssl or ws"},
		{"brokers empty entry", head + simBins + "mqtt: {brokers: ['']}\n", []string{"mqtt.brokers[0]"}, ""},
		{"brokers ssl without ca", head + simBins + "mqtt: {brokers: ['tcp://a:1883', 'ssl://b:8883']}\n", []string{"mqtt.tls.ca_file"}, "ssl://"},
		{"reconnect max zero", head + simBins + "mqtt: {broker: 'tcp://a:1883', reconnect_max_s: 0}\n", []string{"mqtt.reconnect_max_s"}, ""},
		{"reconnect min 20", head + simBins + "mqtt: {broker: 'tcp://a:1883', reconnect_min_s: 20}\n", nil, ""},
		{"reconnect min zero", head + simBins + "mqtt: {broker: 'tcp://a:1883', reconnect_min_s: 0}\n", []string{"mqtt.reconnect_min_s"}, ""},
		{"reconnect min above max", head + simBins + "mqtt: {broker: 'tcp://a:1883', reconnect_min_s: 90}\n", []string{"mqtt.reconnect_min_s"}, "above mqtt.reconnect_max_s (60)"},
		{"reconnect min at max", head + simBins + "mqtt: {broker: 'tcp://a:1883', reconnect_min_s: 30, reconnect_max_s: 30}\n", nil, ""},

		// mqtt.broker.
		{"broker offline", head + simBins + "mqtt: {broker: ''}\n", nil, ""},
		{"broker tcp", head + simBins + "mqtt: {broker: 'tcp://10.0.0.1:1883'}\n", nil, ""},
		{"broker ws", head + simBins + "mqtt: {broker: 'ws://broker.example/mqtt'}\n", nil, ""},
		{"broker scheme", head + simBins + "mqtt: {broker: 'foo://x:1'}\n", []string{"mqtt.broker"}, "scheme must be tcp, ssl or ws"},
		{"broker mqtt scheme", head + simBins + "mqtt: {broker: 'mqtt://x:1883'}\n", []string{"mqtt.broker"}, "scheme must be tcp, ssl or ws"},
		{"broker no scheme", head + simBins + "mqtt: {broker: 'broker.example'}\n", []string{"mqtt.broker"}, "scheme"},
		{"broker not a url", head + simBins + "mqtt: {broker: '127.0.0.1:1883'}\n", []string{"mqtt.broker"}, "URL"},
		{"broker no host", head + simBins + "mqtt: {broker: 'tcp://:1883'}\n", []string{"mqtt.broker"}, "host required"},
		{"broker no port", head + simBins + "mqtt: {broker: 'tcp://broker'}\n", []string{"mqtt.broker"}, "port required"},
		{"broker port 0", head + simBins + "mqtt: {broker: 'tcp://broker:0'}\n", []string{"mqtt.broker"}, "1 to 65535"},
		{"broker port big", head + simBins + "mqtt: {broker: 'tcp://broker:65536'}\n", []string{"mqtt.broker"}, "1 to 65535"},

		// mqtt TLS and files.
		{"ssl with ca", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + "}}\n", nil, ""},
		{"ssl with client cert", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + key + "}}\n", nil, ""},
		{"ssl without ca", head + simBins + "mqtt: {broker: 'ssl://b:8883'}\n", []string{"mqtt.tls.ca_file"}, "required"},
		{"cert without key", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + cert + "}}\n", []string{"mqtt.tls.key_file"}, "required"},
		{"key without cert", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", key_file: " + key + "}}\n", []string{"mqtt.tls.cert_file"}, "required"},
		{"tls with tcp", head + simBins + "mqtt: {broker: 'tcp://b:1883', tls: {ca_file: " + ca + "}}\n", []string{"mqtt.tls"}, "not ssl://"},
		{"ca missing", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + missing + "}}\n", []string{"mqtt.tls.ca_file"}, "cannot read"},
		{"ca is a directory", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + dir + "}}\n", []string{"mqtt.tls.ca_file"}, "not a regular file"},
		{"cert missing", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + missing + ", key_file: " + key + "}}\n", []string{"mqtt.tls.cert_file"}, "cannot read"},
		{"key missing", head + simBins + "mqtt: {broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + missing + "}}\n", []string{"mqtt.tls.key_file"}, "cannot read"},
		{"password file", head + simBins + "mqtt: {username: u, password_file: " + pw + "}\n", nil, ""},
		{"password file missing", head + simBins + "mqtt: {password_file: " + missing + "}\n", []string{"mqtt.password_file"}, "cannot read"},

		// Other mqtt fields.
		{"ack broker", head + simBins + "mqtt: {ack: broker}\n", nil, ""},
		{"ack bad", head + simBins + "mqtt: {ack: never}\n", []string{"mqtt.ack"}, "cloud or broker"},
		{"topic_prefix nested", head + simBins + "mqtt: {topic_prefix: 'acme/boxes'}\n", nil, ""},
		{"topic_prefix empty", head + simBins + "mqtt: {topic_prefix: ''}\n", []string{"mqtt.topic_prefix"}, "empty"},
		{"topic_prefix plus", head + simBins + "mqtt: {topic_prefix: 'a/+'}\n", []string{"mqtt.topic_prefix"}, "wildcards"},
		{"topic_prefix hash", head + simBins + "mqtt: {topic_prefix: 'a#'}\n", []string{"mqtt.topic_prefix"}, "wildcards"},
		{"topic_prefix leading slash", head + simBins + "mqtt: {topic_prefix: '/a'}\n", []string{"mqtt.topic_prefix"}, "/"},
		{"topic_prefix trailing slash", head + simBins + "mqtt: {topic_prefix: 'a/'}\n", []string{"mqtt.topic_prefix"}, "/"},
		{"client_id wildcard", head + simBins + "mqtt: {client_id: 'box+1'}\n", []string{"mqtt.client_id"}, "wildcards"},
		{"client_id long", head + simBins + "mqtt: {client_id: " + strings.Repeat("c", 65536) + "}\n", []string{"mqtt.client_id"}, "65535"},
		{"keepalive_s 0", head + simBins + "mqtt: {keepalive_s: 0}\n", []string{"mqtt.keepalive_s"}, "positive"},
		{"in_flight negative", head + simBins + "mqtt: {in_flight: -1}\n", []string{"mqtt.in_flight"}, "positive"},
		{"max_payload_kb 0", head + simBins + "mqtt: {max_payload_kb: 0}\n", []string{"mqtt.max_payload_kb"}, "positive"},
		{"snapshot_max_mb 0", head + simBins + "mqtt: {snapshot_max_mb: 0}\n", []string{"mqtt.snapshot_max_mb"}, "positive"},

		// console.
		{"console off", head + simBins + "console: {port: ''}\n", nil, ""},
		{"console stdio with pin", head + simBins + "console: {port: stdio, technician_pin: '135790'}\n", nil, ""},
		{"console with hash", head + simBins + "console: {port: /dev/ttyS0, technician_pin_hash: '" + testHash + "'}\n", nil, ""},
		{"console 2y hash", head + simBins + "console: {port: /dev/ttyS0, technician_pin_hash: '$2y" + testHash[3:] + "'}\n", nil, ""},
		{"console port without pin", head + simBins + "console: {port: /dev/ttyS0}\n", []string{"console.technician_pin"}, "required"},
		{"console baud 0", head + simBins + "console: {baud: 0}\n", []string{"console.baud"}, "positive"},
		{"console idle 0", head + simBins + "console: {idle_logout_s: 0}\n", []string{"console.idle_logout_s"}, "positive"},
		{"pin short", head + simBins + "console: {port: stdio, technician_pin: '13579'}\n", []string{"console.technician_pin"}, "6 to 12 digits"},
		{"pin long", head + simBins + "console: {port: stdio, technician_pin: '1357913579135'}\n", []string{"console.technician_pin"}, "6 to 12 digits"},
		{"pin letters", head + simBins + "console: {port: stdio, technician_pin: '13579a'}\n", []string{"console.technician_pin"}, "6 to 12 digits"},
		{"pin and hash", head + simBins + "console: {port: stdio, technician_pin: '135790', technician_pin_hash: '" + testHash + "'}\n", []string{"console.technician_pin"}, "not both"},
		{"hash bad", head + simBins + "console: {port: stdio, technician_pin_hash: '$1$abc'}\n", []string{"console.technician_pin_hash"}, "bcrypt"},
		{"hash truncated", head + simBins + "console: {port: stdio, technician_pin_hash: '" + testHash[:59] + "'}\n", []string{"console.technician_pin_hash"}, "bcrypt"},
		{"console port shared", head + simBins + "console: {port: /dev/ttyUSB0, technician_pin_hash: '" + testHash + "'}\nkeypad: {type: serial, port: /dev/ttyUSB0}\n", []string{"keypad.port"}, "console.port"},

		// hardware.
		{"backend bad", head + "hardware: {backend: pigpio, bins: [{id: 1}]}\n", []string{"hardware.backend"}, "sim or gpio"},
		{"no bins", head + "hardware: {backend: sim}\n", []string{"hardware.bins"}, "at least one"},
		{"empty bins", head + "hardware: {bins: []}\n", []string{"hardware.bins"}, "at least one"},
		{"bins out of order", head + "hardware: {bins: [{id: 2}, {id: 1}]}\n", nil, ""},
		{"bin duplicate", head + "hardware: {bins: [{id: 1}, {id: 2}, {id: 3}, {id: 3}]}\n", []string{"hardware.bins[3].id"}, "duplicate id 3"},
		{"bin id missing", head + "hardware: {bins: [{id: 1}, {door: sim}]}\n", []string{"hardware.bins[1].id"}, "required"},
		{"bin id negative", head + "hardware: {bins: [{id: 1}, {id: -2}]}\n", []string{"hardware.bins[1].id"}, "out of range"},
		{"bin ids gap", head + "hardware: {bins: [{id: 1}, {id: 3}]}\n", []string{"hardware.bins[1].id"}, "1 to 2"},
		{"sim doors", head + "hardware: {bins: [{id: 1, door: sim}, {id: 2, door: sim}]}\n", nil, ""},
		{"gpio lock missing", head + "hardware: {backend: gpio, bins: [{id: 1, lock: GPIO17}, {id: 2, door: GPIO4}]}\n", []string{"hardware.bins[1].lock"}, "required"},
		{"gpio pin with space", head + "hardware: {backend: gpio, bins: [{id: 1, lock: 'GPIO 17'}]}\n", []string{"hardware.bins[0].lock"}, "spaces"},
		{"gpio lock and door shared", head + "hardware: {backend: gpio, bins: [{id: 1, lock: GPIO17}, {id: 2, lock: GPIO27, door: GPIO17}]}\n", []string{"hardware.bins[1].door"}, "hardware.bins[0].lock"},
		{"gpio pin case", head + "hardware: {backend: gpio, bins: [{id: 1, lock: GPIO17}, {id: 2, lock: gpio17}]}\n", []string{"hardware.bins[1].lock"}, "already used"},
		{"gpio buzzer shared", head + "hardware: {backend: gpio, buzzer: GPIO27, bins: [{id: 1, lock: GPIO17}, {id: 2, lock: GPIO27}]}\n", []string{"hardware.buzzer"}, "hardware.bins[1].lock"},
		{"gpio buzzer with space", head + "hardware: {backend: gpio, buzzer: 'GPIO 18', bins: [{id: 1, lock: GPIO17}]}\n", []string{"hardware.buzzer"}, "spaces"},
		{"lock_active low", head + "hardware: {lock_active: low, door_open: low, bins: [{id: 1}]}\n", nil, ""},
		{"lock_active bad", head + "hardware: {lock_active: on, bins: [{id: 1}]}\n", []string{"hardware.lock_active"}, "high or low"},
		{"door_open bad", head + "hardware: {door_open: 1, bins: [{id: 1}]}\n", []string{"hardware.door_open"}, "high or low"},

		// readers.
		{"reader sim", head + simBins + "readers: [{type: sim, bin: 1}, {type: sim, bin: 2}]\n", nil, ""},
		{"reader rdm6300", head + simBins + "readers: [{type: rdm6300, port: /dev/ttyUSB0, bin: 1}]\n", nil, ""},
		{"reader wiegand", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO6, bits: 34, serial: facility_card, bin: 1}]\n", nil, ""},
		{"reader type missing", head + simBins + "readers: [{bin: 1}]\n", []string{"readers[0].type"}, "required"},
		{"reader type bad", head + simBins + "readers: [{type: em4100, bin: 1}]\n", []string{"readers[0].type"}, "rdm6300, wiegand, mfrc522 or sim"},
		{"rdm6300 port missing", head + simBins + "readers: [{type: rdm6300, bin: 1}]\n", []string{"readers[0].port"}, "required"},
		{"rdm6300 baud negative", head + simBins + "readers: [{type: rdm6300, port: /dev/ttyUSB0, baud: -9600, bin: 1}]\n", []string{"readers[0].baud"}, "positive"},
		{"wiegand on sim", head + simBins + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO6, bin: 1}]\n", []string{"readers[0].type"}, "gpio backend"},
		{"wiegand d0 missing", head + gpioHW + "readers: [{type: wiegand, d1: GPIO6, bin: 1}]\n", []string{"readers[0].d0"}, "required"},
		{"wiegand d1 missing", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, bin: 1}]\n", []string{"readers[0].d1"}, "required"},
		{"wiegand bits", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO6, bits: 37, bin: 1}]\n", []string{"readers[0].bits"}, "26 or 34"},
		{"wiegand serial", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO6, serial: decimal, bin: 1}]\n", []string{"readers[0].serial"}, "raw or facility_card"},
		{"wiegand pin shared", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO17, bin: 1}]\n", []string{"readers[0].d1"}, "hardware.bins[0].lock"},
		{"wiegand d0 is d1", head + gpioHW + "readers: [{type: wiegand, d0: GPIO5, d1: GPIO5, bin: 1}]\n", []string{"readers[0].d1"}, "readers[0].d0"},
		{"sim reader on gpio", head + gpioHW + "readers: [{type: sim, bin: 1}]\n", []string{"readers[0].type"}, "sim backend"},
		{"reader bin missing", head + simBins + "readers: [{type: sim}]\n", []string{"readers[0].bin"}, "required"},
		{"reader no such bin", head + simBins + "readers: [{type: sim, bin: 9}]\n", []string{"readers[0].bin"}, "no bin 9"},
		{"two readers one bin", head + simBins + "readers: [{type: sim, bin: 2}, {type: sim, bin: 1}, {type: sim, bin: 2}]\n", []string{"readers[2].bin"}, "readers[0]"},
		{"reader ports shared", head + simBins + "readers: [{type: rdm6300, port: /dev/ttyUSB0, bin: 1}, {type: rdm6300, port: /dev/../dev/ttyUSB0, bin: 2}]\n", []string{"readers[1].port"}, "readers[0].port"},
		{"reader and console port", head + simBins + "console: {port: /dev/ttyUSB0, technician_pin_hash: '" + testHash + "'}\nreaders: [{type: rdm6300, port: /dev/ttyUSB0, bin: 1}]\n", []string{"readers[0].port"}, "console.port"},

		// keypad.
		{"keypad serial", head + simBins + "keypad: {type: serial, port: /dev/ttyUSB4}\n", nil, ""},
		{"keypad sim", head + simBins + "keypad: {type: sim}\n", nil, ""},
		{"keypad wiegand", head + gpioHW + "keypad: {type: wiegand, d0: GPIO5, d1: GPIO6, star: 12, hash: 13}\n", nil, ""},
		{"keypad matrix", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20]}\n", nil, ""},
		{"keypad matrix 4x4", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20, GPIO21], layout: [123A, 456B, 789C, '*0#D']}\n", nil, ""},
		{"keypad type bad", head + simBins + "keypad: {type: usb}\n", []string{"keypad.type"}, "serial, wiegand, matrix, sim or none"},
		{"keypad type empty", head + simBins + "keypad: {type: ''}\n", []string{"keypad.type"}, "none"},
		{"keypad serial port missing", head + simBins + "keypad: {type: serial}\n", []string{"keypad.port"}, "required"},
		{"keypad serial baud 0", head + simBins + "keypad: {type: serial, port: /dev/ttyUSB4, baud: 0}\n", []string{"keypad.baud"}, "positive"},
		{"keypad serial shares reader port", head + simBins + "readers: [{type: rdm6300, port: /dev/ttyUSB0, bin: 1}]\nkeypad: {type: serial, port: /dev/ttyUSB0}\n", []string{"keypad.port"}, "readers[0].port"},
		{"keypad wiegand on sim", head + simBins + "keypad: {type: wiegand, d0: GPIO5, d1: GPIO6}\n", []string{"keypad.type"}, "gpio backend"},
		{"keypad wiegand d0 missing", head + gpioHW + "keypad: {type: wiegand, d1: GPIO6}\n", []string{"keypad.d0"}, "required"},
		{"keypad wiegand d1 missing", head + gpioHW + "keypad: {type: wiegand, d0: GPIO5}\n", []string{"keypad.d1"}, "required"},
		{"keypad wiegand pin shared", head + gpioHW + "keypad: {type: wiegand, d0: GPIO27, d1: GPIO6}\n", []string{"keypad.d0"}, "hardware.bins[1].lock"},
		{"keypad star a digit", head + gpioHW + "keypad: {type: wiegand, d0: GPIO5, d1: GPIO6, star: 9}\n", []string{"keypad.star"}, "10 to 15"},
		{"keypad hash too big", head + gpioHW + "keypad: {type: wiegand, d0: GPIO5, d1: GPIO6, hash: 16}\n", []string{"keypad.hash"}, "10 to 15"},
		{"keypad star is hash", head + gpioHW + "keypad: {type: wiegand, d0: GPIO5, d1: GPIO6, star: 11}\n", []string{"keypad.hash"}, "differ"},
		{"keypad matrix on sim", head + simBins + "keypad: {type: matrix, rows: [a, b, c, d], cols: [e, f, g]}\n", []string{"keypad.type"}, "gpio backend"},
		{"keypad matrix no rows", head + gpioHW + "keypad: {type: matrix, cols: [GPIO12, GPIO16, GPIO20], layout: []}\n", []string{"keypad.rows"}, "at least one"},
		{"keypad matrix no cols", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5], layout: ['']}\n", []string{"keypad.cols"}, "at least one"},
		{"keypad matrix rows vs layout", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13], cols: [GPIO12, GPIO16, GPIO20]}\n", []string{"keypad.layout"}, "4 rows"},
		{"keypad matrix cols vs layout", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20], layout: ['123', '456', '789', '*0#D']}\n", []string{"keypad.layout[3]"}, "4 keys"},
		{"keypad matrix pin shared", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO5], cols: [GPIO12, GPIO16, GPIO20]}\n", []string{"keypad.rows[3]"}, "keypad.rows[0]"},
		{"keypad matrix empty pin", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, ''], cols: [GPIO12, GPIO16, GPIO20]}\n", []string{"keypad.rows[3]"}, "required"},
		{"keypad debounce low", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20], debounce_ms: 4}\n", []string{"keypad.debounce_ms"}, "5 to 10"},
		{"keypad debounce high", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20], debounce_ms: 11}\n", []string{"keypad.debounce_ms"}, "5 to 10"},
		{"keypad active level", head + gpioHW + "keypad: {type: matrix, rows: [GPIO5, GPIO6, GPIO13, GPIO19], cols: [GPIO12, GPIO16, GPIO20], active: sideways}\n", []string{"keypad.active"}, "low"},
		{"keypad sim on gpio", head + gpioHW + "keypad: {type: sim}\n", []string{"keypad.type"}, "sim backend"},

		// timing.
		{"lock_pulse_ms low", head + simBins + "timing: {lock_pulse_ms: 49}\n", []string{"timing.lock_pulse_ms"}, "50 to 5000"},
		{"lock_pulse_ms high", head + simBins + "timing: {lock_pulse_ms: 5001}\n", []string{"timing.lock_pulse_ms"}, "50 to 5000"},
		{"lock_pulse_ms edges", head + simBins + "timing: {lock_pulse_ms: 50, fob_absent_ms: 10000, dropoff_timeout_s: 5, key_timeout_s: 120}\n", nil, ""},
		{"max_energised 0", head + simBins + "timing: {max_energised: 0}\n", []string{"timing.max_energised"}, "at least 1"},
		{"lock_rest_ms 0", head + simBins + "timing: {lock_rest_ms: 0}\n", []string{"timing.lock_rest_ms"}, "positive"},
		{"fob_absent_ms low", head + simBins + "timing: {fob_absent_ms: 99}\n", []string{"timing.fob_absent_ms"}, "100 to 10000"},
		{"fob_absent_ms high", head + simBins + "timing: {fob_absent_ms: 10001}\n", []string{"timing.fob_absent_ms"}, "100 to 10000"},
		{"dropoff_timeout_s low", head + simBins + "timing: {dropoff_timeout_s: 4}\n", []string{"timing.dropoff_timeout_s"}, "5 to 3600"},
		{"dropoff_timeout_s high", head + simBins + "timing: {dropoff_timeout_s: 3601}\n", []string{"timing.dropoff_timeout_s"}, "5 to 3600"},
		{"key_timeout_s low", head + simBins + "timing: {key_timeout_s: 1}\n", []string{"timing.key_timeout_s"}, "2 to 120"},
		{"key_timeout_s high", head + simBins + "timing: {key_timeout_s: 121}\n", []string{"timing.key_timeout_s"}, "2 to 120"},
		{"door_held_open_s 0", head + simBins + "timing: {door_held_open_s: 0}\n", []string{"timing.door_held_open_s"}, "positive"},
		{"door_debounce_ms 0", head + simBins + "timing: {door_debounce_ms: 0}\n", []string{"timing.door_debounce_ms"}, "positive"},
		{"inventory_settle_s 0", head + simBins + "timing: {inventory_settle_s: 0}\n", []string{"timing.inventory_settle_s"}, "positive"},
		{"late_after_s 0", head + simBins + "timing: {late_after_s: 0}\n", []string{"timing.late_after_s"}, "positive"},

		// security, outbox, limits, log.
		{"lockout_after 0", head + simBins + "security: {lockout_after: 0}\n", []string{"security.lockout_after"}, "1 to 100"},
		{"lockout_after 101", head + simBins + "security: {lockout_after: 101}\n", []string{"security.lockout_after"}, "1 to 100"},
		{"lockout_s 0", head + simBins + "security: {lockout_s: 0}\n", []string{"security.lockout_s"}, "1 to 3600"},
		{"lockout_s 3601", head + simBins + "security: {lockout_s: 3601, lockout_max_s: 7200}\n", []string{"security.lockout_s"}, "1 to 3600"},
		{"lockout_max_s below lockout_s", head + simBins + "security: {lockout_s: 60, lockout_max_s: 59}\n", []string{"security.lockout_max_s"}, "lockout_s"},
		{"lockout_max_s equal", head + simBins + "security: {lockout_s: 60, lockout_max_s: 60}\n", nil, ""},
		{"lockout_window_s 0", head + simBins + "security: {lockout_window_s: 0}\n", []string{"security.lockout_window_s"}, "1 to 86400"},
		{"lockout_window_s a day", head + simBins + "security: {lockout_window_s: 86400}\n", nil, ""},
		{"lockout_decay_s 0", head + simBins + "security: {lockout_decay_s: 0}\n", []string{"security.lockout_decay_s"}, "1 to 604800"},
		{"lockout_decay_s too long", head + simBins + "security: {lockout_decay_s: 604801}\n", []string{"security.lockout_decay_s"}, "1 to 604800"},
		{"max_events 99", head + simBins + "outbox: {max_events: 99}\n", []string{"outbox.max_events"}, "at least 100"},
		{"max_events 100", head + simBins + "outbox: {max_events: 100}\n", nil, ""},
		{"max_access_codes 0", head + simBins + "limits: {max_access_codes: 0}\n", []string{"limits.max_access_codes"}, "positive"},
		{"max_keys 0", head + simBins + "limits: {max_keys: 0}\n", []string{"limits.max_keys"}, "positive"},
		{"replies 0", head + simBins + "limits: {replies: 0}\n", []string{"limits.replies"}, "positive"},
		{"removed_retention_s 0", head + simBins + "limits: {removed_retention_s: 0}\n", []string{"limits.removed_retention_s"}, "1 to 31622400"},
		{"removed_retention_s a day", head + simBins + "limits: {removed_retention_s: 86400}\n", nil, ""},
		{"log level", head + simBins + "log: {level: debug}\n", nil, ""},
		{"log level bad", head + simBins + "log: {level: verbose}\n", []string{"log.level"}, "debug, info, warn or error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.doc)
			if got := ps.Fields(); !slices.Equal(got, tt.want) {
				t.Fatalf("problems on %q, want %q:\n%v", got, tt.want, ps.Error())
			}
			if len(ps) > 0 && !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("message %q does not say %q", ps[0].Message, tt.msg)
			}
		})
	}
}

// The example of the contract: no box_id and a broker with a foreign scheme
// give exactly two problems, each naming its field.
func TestProblemsNameTheirFields(t *testing.T) {
	_, err := Parse([]byte("data_dir: /d\nmqtt:\n  broker: foo://x\n" + simBins))
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error = %v, want a *Problems", err)
	}
	want := "box_id: required\nmqtt.broker: scheme must be tcp, ssl or ws"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if got := ps.Fields(); !slices.Equal(got, []string{"box_id", "mqtt.broker"}) {
		t.Errorf("fields = %q", got)
	}
}

// Every problem is reported at once, not only the first.
func TestAllProblemsReported(t *testing.T) {
	doc := "mqtt: {ack: x}\nhardware: {backend: gpio, bins: [{id: 1}, {id: 1}]}\n" +
		"readers: [{type: rdm6300, bin: 7}]\nkeypad: {type: serial}\ntiming: {key_timeout_s: 0}\nlog: {level: loud}\n"
	ps := problemsOf(t, doc)
	want := []string{
		"box_id", "data_dir", "mqtt.ack",
		"hardware.bins[0].lock", "hardware.bins[1].id", "hardware.bins[1].lock",
		"readers[0].port", "readers[0].bin", "keypad.port", "timing.key_timeout_s", "log.level",
	}
	if got := ps.Fields(); !slices.Equal(got, want) {
		t.Errorf("fields =\n%q\nwant\n%q", got, want)
	}
	if n := strings.Count(ps.Error(), "\n") + 1; n != len(want) {
		t.Errorf("Error() has %d lines, want %d", n, len(want))
	}
}

func TestValidateBuiltConfig(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil {
		t.Fatal("Validate accepted a config without box_id, data_dir and bins")
	}
	c.BoxID, c.DataDir = "b1", "/d"
	c.Hardware.Bins = []Bin{{ID: 1}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(default + box) = %v", err)
	}
	c.Timing.LockPulseMS = 0
	var ps *Problems
	if err := c.Validate(); !errors.As(err, &ps) || !slices.Equal(ps.Fields(), []string{"timing.lock_pulse_ms"}) {
		t.Errorf("Validate = %v, want a problem on timing.lock_pulse_ms", err)
	}
}

// Credentials in the clear to another host, and secrets in files others
// can read, are refused unless the config says it means it.
func TestSecretsAndCleartext(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw, pwGroup, pwOthers := file("pw", 0o600), file("pw-group", 0o640), file("pw-others", 0o604)
	pwOwnerRead := file("pw-0400", 0o400)
	ca, caLoose := file("ca.pem", 0o600), file("ca-loose.pem", 0o644)
	cert, key, keyLoose := file("box.crt", 0o644), file("box.key", 0o600), file("box-loose.key", 0o644)

	tests := []struct {
		name string
		mqtt string
		want []string
		msg  string
	}{
		{"tcp remote with user", "{broker: 'tcp://10.0.0.1:1883', username: u}", []string{"mqtt.broker"}, "mqtt.insecure"},
		{"tcp remote with password", "{broker: 'tcp://broker.example:1883', password_file: " + pw + "}", []string{"mqtt.broker"}, "in the clear"},
		{"ws remote with user", "{broker: 'ws://broker.example/mqtt', username: u, password_file: " + pw + "}", []string{"mqtt.broker"}, "ws://"},
		{"tcp remote insecure", "{broker: 'tcp://10.0.0.1:1883', username: u, password_file: " + pw + ", insecure: true}", nil, ""},
		{"tcp remote without credentials", "{broker: 'tcp://10.0.0.1:1883'}", nil, ""},
		{"tcp 127.0.0.1", "{broker: 'tcp://127.0.0.1:1883', username: u, password_file: " + pw + "}", nil, ""},
		{"tcp 127.0.0.9", "{broker: 'tcp://127.0.0.9:1883', username: u}", nil, ""},
		{"tcp localhost", "{broker: 'tcp://LocalHost:1883', username: u}", nil, ""},
		{"tcp ::1", "{broker: 'tcp://[::1]:1883', username: u}", nil, ""},
		{"ssl remote with user", "{broker: 'ssl://b:8883', username: u, password_file: " + pw + ", tls: {ca_file: " + ca + "}}", nil, ""},
		{"password file 0400", "{broker: 'tcp://127.0.0.1:1883', username: u, password_file: " + pwOwnerRead + "}", nil, ""},
		{"password file group", "{broker: 'tcp://127.0.0.1:1883', username: u, password_file: " + pwGroup + "}", []string{"mqtt.password_file"}, "0640"},
		{"password file others", "{broker: 'tcp://127.0.0.1:1883', username: u, password_file: " + pwOthers + "}", []string{"mqtt.password_file"}, "0600 or stricter"},
		{"password file insecure still", "{broker: 'tcp://10.0.0.1:1883', username: u, password_file: " + pwGroup + ", insecure: true}", []string{"mqtt.password_file"}, "0640"},
		{"key file loose", "{broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + keyLoose + "}}", []string{"mqtt.tls.key_file"}, "0644"},
		{"key file tight", "{broker: 'ssl://b:8883', tls: {ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + key + "}}", nil, ""},
		{"ca file loose is public", "{broker: 'ssl://b:8883', tls: {ca_file: " + caLoose + "}}", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, head+simBins+"mqtt: "+tt.mqtt+"\n")
			if got := ps.Fields(); !slices.Equal(got, tt.want) {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.want, ps.Error())
			}
			if tt.msg != "" && !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("message %q does not say %q", ps[0].Message, tt.msg)
			}
		})
	}
}

// A config file that holds a plain technician PIN is refused while group
// or others can read it; one with only the hash may be world-readable.
func TestConfigFileWithPINMode(t *testing.T) {
	pin := head + simBins + "console: {port: stdio, technician_pin: '135790'}\n"
	hash := head + simBins + "console: {port: stdio, technician_pin_hash: '" + testHash + "'}\n"
	tests := []struct {
		name string
		doc  string
		mode os.FileMode
		want []string
	}{
		{"pin 0600", pin, 0o600, nil},
		{"pin 0400", pin, 0o400, nil},
		{"pin 0640", pin, 0o640, []string{"console.technician_pin"}},
		{"pin 0644", pin, 0o644, []string{"console.technician_pin"}},
		{"pin 0602", pin, 0o602, []string{"console.technician_pin"}},
		{"hash 0644", hash, 0o644, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var ps *Problems
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load = %v", err)
				}
				return
			}
			if !errors.As(err, &ps) || !slices.Equal(ps.Fields(), tt.want) {
				t.Fatalf("Load = %v, want a problem on %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "135790") {
				t.Errorf("the problem shows the PIN: %v", err)
			}
		})
	}
}
