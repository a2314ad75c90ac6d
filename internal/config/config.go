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
	Trust    Trust    `yaml:"trust"`
	Firmware Firmware `yaml:"firmware"`
}

// Firmware tunes firmware updates (contract §11).
type Firmware struct {
	// TrialS is how long a new version has, from its start, to be online
	// and acked by the cloud before the start counts as failed; default 120.
	TrialS int `yaml:"trial_s"`
}

// Trial is TrialS as a duration.
func (f Firmware) Trial() time.Duration { return s(f.TrialS) }

// Trust says whom the box obeys (contract §7).
type Trust struct {
	// Keys are the keys whose signed commands the box obeys; none: the
	// broker is trusted.
	Keys []TrustKey `yaml:"keys"`
	// SealCodes refuses codes in plain text.
	SealCodes bool `yaml:"seal_codes"`
	// ReleaseKeys may sign firmware (contract §11): base64 Ed25519 keys.
	ReleaseKeys []string `yaml:"release_keys"`
}

// TrustKey is one command signing key.
type TrustKey struct {
	Name    string   `yaml:"name"`
	Ed25519 string   `yaml:"ed25519"` // base64 of the 32-byte public key
	Roles   []string `yaml:"roles"`   // admin | provision | open | ack | firmware
}

// MQTT is the cloud link.
type MQTT struct {
	Broker string `yaml:"broker"` // tcp://, ssl://, ws://; "" runs the box offline
	// Brokers lists several broker URLs instead of Broker (§9): the box
	// connects to the first that answers and moves to the next when its
	// broker is lost.
	Brokers       []string `yaml:"brokers"`
	ReconnectMaxS int      `yaml:"reconnect_max_s"` // the reconnect backoff's ceiling; default 60
	ReconnectMinS int      `yaml:"reconnect_min_s"` // the backoff's first window, at start and after a loss; default 1
	TopicPrefix   string   `yaml:"topic_prefix"`    // default "smartbox"
	ClientID      string   `yaml:"client_id"`       // default box_id
	Username      string   `yaml:"username"`        //
	PasswordFile  string   `yaml:"password_file"`   // the password is read from this file
	TLS           TLS      `yaml:"tls"`
	Ack           string   `yaml:"ack"`             // "cloud" (default) or "broker"
	KeepAliveS    int      `yaml:"keepalive_s"`     // default 30
	InFlight      int      `yaml:"in_flight"`       // events published and not yet acked; default 512
	MaxPayloadKB  int      `yaml:"max_payload_kb"`  // command payload limit; default 256
	SnapshotMaxMB int      `yaml:"snapshot_max_mb"` // sync.snapshot payload limit; default 64
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
	// Expanders are I2C GPIO expanders; their pins are named NAME:PIN
	// ("x1:GPA0") wherever a lock, door, led or buzzer pin is named.
	Expanders []Expander `yaml:"expanders"`
	// LEDActive is the level that lights a bin's LED: "high" (default) or
	// "low".
	LEDActive string  `yaml:"led_active"`
	Display   Display `yaml:"display"`
	Power     Power   `yaml:"power"`
}

// Expander is one I2C GPIO expander.
type Expander struct {
	Name    string `yaml:"name"`    // [A-Za-z][A-Za-z0-9_]{0,15}, unique
	Type    string `yaml:"type"`    // mcp23017 | mcp23008 | pcf8574 | pcf8575
	Bus     string `yaml:"bus"`     // the I2C bus, /dev/i2c-1
	Address int    `yaml:"address"` // 0x20-0x27 (pcf8574 also 0x38-0x3f)
}

// Display is the guest display by the keypad.
type Display struct {
	Type string `yaml:"type"` // none (default) | sim | tm1637 | ssd1306 | hd44780
	CLK  string `yaml:"clk"`  // tm1637
	DIO  string `yaml:"dio"`  // tm1637
	// Bus and Address: ssd1306 on I2C (address 0x3c or 0x3d, default 0x3c).
	Bus     string `yaml:"bus"`
	Address int    `yaml:"address"`
	// RS, E and Data (D4-D7): hd44780 in 4-bit mode, the driver's pins.
	RS   string   `yaml:"rs"`
	E    string   `yaml:"e"`
	Data []string `yaml:"data"`
}

// Power is the supply monitor.
type Power struct {
	Type          string  `yaml:"type"`            // none (default) | ina219
	Bus           string  `yaml:"bus"`             // the I2C bus
	Address       int     `yaml:"address"`         // 0x40-0x4f, default 0x40
	BatteryBelowV float64 `yaml:"battery_below_v"` // below this the box is on battery
	LowBelowV     float64 `yaml:"low_below_v"`     // below this the battery is low
	IntervalMS    int     `yaml:"interval_ms"`     // between readings, default 1000
}

// Bin is one locked bin. Lock and Door name GPIO pins on the gpio backend;
// on the sim backend a non-empty Door gives the bin a simulated door sensor.
type Bin struct {
	ID   int    `yaml:"id"`
	Lock string `yaml:"lock"`
	Door string `yaml:"door"`
	LED  string `yaml:"led"` // lit while the bin waits for a key; gpio backend
}

// Reader is one fob reader, watching one bin.
type Reader struct {
	Type string `yaml:"type"` // rdm6300 | wiegand | mfrc522 | sim
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
	SPI    string `yaml:"spi"`   // mfrc522: the SPI device, /dev/spidev0.0
	Reset  string `yaml:"reset"` // mfrc522: its reset pin
	IRQ    string `yaml:"irq"`   // mfrc522: its IRQ pin, optional (polled without)
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
	// LockoutWindowS is how long a wrong keypad entry counts towards a
	// lockout, whatever right codes come after it; default 600.
	LockoutWindowS int `yaml:"lockout_window_s"`
	// LockoutDecayS is how long without a wrong entry lowers the lockout
	// escalation one step; default 3600.
	LockoutDecayS int `yaml:"lockout_decay_s"`
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
	Replies        int `yaml:"replies"`          // command replies kept for idempotency, default 100,000
	// RemovedRetentionS is how long a time-bound code the schedule removed
	// is kept as a keyed-hash tombstone, to be restored if the clock jumped
	// ahead and comes back inside its window; default 604800 (7 days).
	RemovedRetentionS int `yaml:"removed_retention_s"`
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
