// Package config loads and validates the smartboxd YAML configuration.
//
// The names follow the SmartBox device contract. Every optional field has a
// default (see Default); Load reports unknown keys and every invalid field,
// one problem per line, each naming the field ("mqtt.broker: ...").
package config

import "time"

// Config is the whole daemon configuration.
type Config struct {
	BoxID    string   `yaml:"box_id"`
	DataDir  string   `yaml:"data_dir"`
	MQTT     MQTT     `yaml:"mqtt"`
	Console  Console  `yaml:"console"`
	Hardware Hardware `yaml:"hardware"`
	Readers  []Reader `yaml:"readers"`
	Keypad   Keypad   `yaml:"keypad"`
	Timing   Timing   `yaml:"timing"`
	Security Security `yaml:"security"`
	Clock    Clock    `yaml:"clock"`
	Outbox   Outbox   `yaml:"outbox"`
	Limits   Limits   `yaml:"limits"`
	Log      Log      `yaml:"log"`
}

// MQTT is the cloud link.
type MQTT struct {
	Broker        string `yaml:"broker"`        // tcp://, ssl://, ws://; "" runs the box offline
	TopicPrefix   string `yaml:"topic_prefix"`  // default "smartbox"
	ClientID      string `yaml:"client_id"`     // default box_id
	Username      string `yaml:"username"`      //
	PasswordFile  string `yaml:"password_file"` // the password is read from this file
	TLS           TLS    `yaml:"tls"`
	Ack           string `yaml:"ack"`             // "cloud" (default) or "broker"
	KeepAliveS    int    `yaml:"keepalive_s"`     // default 30
	InFlight      int    `yaml:"in_flight"`       // events published and not yet acked; default 512
	MaxPayloadKB  int    `yaml:"max_payload_kb"`  // command payload limit; default 256
	SnapshotMaxMB int    `yaml:"snapshot_max_mb"` // sync.snapshot payload limit; default 64
	// Insecure allows credentials over tcp:// or ws:// to a host that is
	// not loopback, where anyone on the path reads them.
	Insecure bool `yaml:"insecure"`
}

// TLS names the files of an ssl:// broker.
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Console is the technician console.
type Console struct {
	Port string `yaml:"port"` // a serial device, "stdio", or "" (off)
	Baud int    `yaml:"baud"` // default 115200
	// TechnicianPIN is a plain PIN in the file; Load replaces it by its hash
	// in TechnicianPINHash and clears it, so it is never kept.
	TechnicianPIN     string `yaml:"technician_pin"`
	TechnicianPINHash string `yaml:"technician_pin_hash"` // bcrypt
	IdleLogoutS       int    `yaml:"idle_logout_s"`       // default 300
}

// Hardware describes the bins and the backend that drives them.
type Hardware struct {
	Backend string `yaml:"backend"` // "sim" or "gpio"
	Bins    []Bin  `yaml:"bins"`
	// LockActive is the level that energises a lock: "high" (default) or "low".
	LockActive string `yaml:"lock_active"`
	// DoorOpen is the level a door sensor reads while its door is open:
	// "high" (default) or "low".
	DoorOpen string `yaml:"door_open"`
	// Buzzer is an optional output pin for keypad feedback.
	Buzzer string `yaml:"buzzer"`
}

// Bin is one locked bin. Lock and Door name GPIO pins on the gpio backend;
// on the sim backend a non-empty Door gives the bin a simulated door sensor.
type Bin struct {
	ID   int    `yaml:"id"`
	Lock string `yaml:"lock"`
	Door string `yaml:"door"`
}

// Reader is one fob reader, watching one bin.
type Reader struct {
	Type string `yaml:"type"` // rdm6300 | wiegand | sim
	Port string `yaml:"port"` // rdm6300
	Baud int    `yaml:"baud"` // rdm6300, default 9600
	D0   string `yaml:"d0"`   // wiegand
	D1   string `yaml:"d1"`   // wiegand
	Bits int    `yaml:"bits"` // wiegand: 26 or 34
	// Serial is how a Wiegand card becomes a fob serial: "raw" (default:
	// the 24 or 32 data bits as upper-case hex) or "facility_card" (the
	// facility code and card number, as hex, padded: FF-CCCC for 26 bits).
	Serial string `yaml:"serial"`
	Bin    int    `yaml:"bin"`
}

// Keypad is the code entry device.
type Keypad struct {
	Type string   `yaml:"type"` // serial | wiegand | matrix | sim | none
	Port string   `yaml:"port"` // serial
	Baud int      `yaml:"baud"` // serial, default 9600
	D0   string   `yaml:"d0"`   // wiegand
	D1   string   `yaml:"d1"`   // wiegand
	Star int      `yaml:"star"` // wiegand value of '*', default 10
	Hash int      `yaml:"hash"` // wiegand value of '#', default 11
	Rows []string `yaml:"rows"` // matrix: row output pins
	Cols []string `yaml:"cols"` // matrix: column input pins
	// Layout is the matrix's keys, one string per row, e.g. "123", "456",
	// "789", "*0#" (the default for a 4x3 keypad).
	Layout     []string `yaml:"layout"`
	DebounceMS int      `yaml:"debounce_ms"` // matrix, default 8 (5-10)
	// Active is the matrix's active level: "low" (default: the scanned row
	// driven low, columns pulled up, a low column is a key down) or "high".
	Active string `yaml:"active"`
}

// Timing holds the box's time constants.
type Timing struct {
	LockPulseMS      int `yaml:"lock_pulse_ms"`      // default 500
	MaxEnergised     int `yaml:"max_energised"`      // default 2
	LockRestMS       int `yaml:"lock_rest_ms"`       // rest between two pulses of one coil, default 1000
	FobAbsentMS      int `yaml:"fob_absent_ms"`      // default 600
	DropoffTimeoutS  int `yaml:"dropoff_timeout_s"`  // default 60
	KeyTimeoutS      int `yaml:"key_timeout_s"`      // default 10
	DoorHeldOpenS    int `yaml:"door_held_open_s"`   // default 120
	DoorDebounceMS   int `yaml:"door_debounce_ms"`   // default 50
	InventorySettleS int `yaml:"inventory_settle_s"` // default 3
	LateAfterS       int `yaml:"late_after_s"`       // a transition later than this is "delayed"; default 60
}

// Security holds the brute-force limits.
type Security struct {
	LockoutAfter int `yaml:"lockout_after"` // default 5
	LockoutS     int `yaml:"lockout_s"`     // default 30
	LockoutMaxS  int `yaml:"lockout_max_s"` // default 900
}

// Clock says how far the system clock is trusted.
type Clock struct {
	RequireSync *bool `yaml:"require_sync"` // default true
}

// Outbox bounds the event outbox.
type Outbox struct {
	MaxEvents int `yaml:"max_events"` // default 1,000,000
}

// Limits bounds what the box stores.
type Limits struct {
	MaxAccessCodes int `yaml:"max_access_codes"` // default 200,000
	MaxKeys        int `yaml:"max_keys"`         // default 100,000
	Replies        int `yaml:"replies"`          // command replies kept for idempotency, default 10,000
}

// Log sets the log output.
type Log struct {
	Level string `yaml:"level"` // debug | info (default) | warn | error
}

// Durations derived from Timing.
func (t Timing) LockPulse() time.Duration      { return ms(t.LockPulseMS) }
func (t Timing) LockRest() time.Duration       { return ms(t.LockRestMS) }
func (t Timing) FobAbsent() time.Duration      { return ms(t.FobAbsentMS) }
func (t Timing) DropoffTimeout() time.Duration { return s(t.DropoffTimeoutS) }
func (t Timing) KeyTimeout() time.Duration     { return s(t.KeyTimeoutS) }
func (t Timing) DoorHeldOpen() time.Duration   { return s(t.DoorHeldOpenS) }
func (t Timing) DoorDebounce() time.Duration   { return ms(t.DoorDebounceMS) }
func (t Timing) InventorySettle() time.Duration {
	return s(t.InventorySettleS)
}
func (t Timing) LateAfter() time.Duration { return s(t.LateAfterS) }

// RequiresSync reports whether time-bound codes need a synchronised clock.
func (c Clock) RequiresSync() bool { return c.RequireSync == nil || *c.RequireSync }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
func s(n int) time.Duration  { return time.Duration(n) * time.Second }
