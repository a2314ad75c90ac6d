package config

// Defaults used in more than one place.
const (
	defaultTopicPrefix  = "smartbox"
	defaultConsoleBaud  = 115200
	defaultReaderBaud   = 9600
	defaultKeypadBaud   = 9600
	defaultWiegandBits  = 26
	defaultWiegandStar  = 10
	defaultWiegandHash  = 11
	defaultDebounceMS   = 8
	defaultSerialFormat = "raw"
)

// defaultLayout returns the key layout of a 4x3 matrix keypad.
func defaultLayout() []string { return []string{"123", "456", "789", "*0#"} }

// Default returns a configuration with every optional field at its default.
// BoxID and DataDir, which have none, are empty, and so are the bins and
// readers, which describe the box itself. Parse decodes a file over it, so
// a field the file leaves out keeps its default and a field the file gives,
// even as 0 or "", is validated as given. mqtt.client_id, which defaults to
// the box id, and the fields of list items (bins, readers) are filled in
// after decoding: there an empty or zero value takes the default.
func Default() *Config {
	requireSync := true
	return &Config{
		MQTT: MQTT{
			Broker:        "", // offline
			TopicPrefix:   defaultTopicPrefix,
			Ack:           "cloud",
			KeepAliveS:    30,
			ReconnectMaxS: 60,
			ReconnectMinS: 1,
			InFlight:      512,
			MaxPayloadKB:  256,
			SnapshotMaxMB: 64,
		},
		Console: Console{
			Baud:        defaultConsoleBaud,
			IdleLogoutS: 300,
		},
		Hardware: Hardware{
			Backend:    "sim",
			LockActive: "high",
			DoorOpen:   "high",
			LEDActive:  "high",
			Display:    Display{Type: "none"},
			Power:      Power{Type: "none", IntervalMS: 1000},
		},
		Keypad: Keypad{
			Type:       "none",
			Baud:       defaultKeypadBaud,
			Star:       defaultWiegandStar,
			Hash:       defaultWiegandHash,
			Layout:     defaultLayout(),
			DebounceMS: defaultDebounceMS,
			Active:     "low",
		},
		Timing: Timing{
			LockPulseMS:      500,
			MaxEnergised:     2,
			LockRestMS:       1000,
			FobAbsentMS:      600,
			DropoffTimeoutS:  60,
			KeyTimeoutS:      10,
			DoorHeldOpenS:    120,
			DoorDebounceMS:   50,
			InventorySettleS: 3,
			LateAfterS:       60,
		},
		Security: Security{
			LockoutAfter: 5,
			LockoutS:     30,
			LockoutMaxS:  900,

			LockoutWindowS: 600,
			LockoutDecayS:  3600,
		},
		Clock:  Clock{RequireSync: &requireSync},
		Outbox: Outbox{MaxEvents: 1_000_000},
		Limits: Limits{
			MaxAccessCodes: 200_000,
			MaxKeys:        100_000,
			Replies:        100_000,

			RemovedRetentionS: 7 * 24 * 3600,
		},
		Log:      Log{Level: "info"},
		Firmware: Firmware{TrialS: 120},
	}
}

// fillDerived sets the defaults Default cannot: those that depend on other
// fields or live in list items.
func (c *Config) fillDerived() {
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = c.BoxID
	}
	for i := range c.Readers {
		r := &c.Readers[i]
		switch r.Type {
		case "rdm6300":
			if r.Baud == 0 {
				r.Baud = defaultReaderBaud
			}
		case "wiegand":
			if r.Bits == 0 {
				r.Bits = defaultWiegandBits
			}
			if r.Serial == "" {
				r.Serial = defaultSerialFormat
			}
		}
	}
	if d := &c.Hardware.Display; d.Type == "ssd1306" && d.Address == 0 {
		d.Address = 0x3c
	}
	if p := &c.Hardware.Power; p.Type == "ina219" && p.Address == 0 {
		p.Address = 0x40
	}
	if c.Keypad.Layout == nil {
		c.Keypad.Layout = defaultLayout()
	}
	if c.Clock.RequireSync == nil {
		requireSync := true
		c.Clock.RequireSync = &requireSync
	}
}
