package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"smartboxd/trust"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"smartboxd/internal/expander"
)

// Validate checks every rule of the configuration and returns a *Problems
// listing each broken one, or nil. Parse and Load call it; it is exported
// for configurations built in code, which should start from Default.
// Files the config names (TLS files, the MQTT password file) must exist and
// be readable; whether a pin exists on the board or a serial port opens is
// left to start-up.
func (c *Config) Validate() error {
	probs := c.check()
	if len(probs) == 0 {
		return nil
	}
	ps := Problems(probs)
	return &ps
}

var boxIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// checker collects problems and remembers which pins and ports are taken.
type checker struct {
	problems  []Problem
	pins      map[string]string // upper-case pin name -> field that uses it
	ports     map[string]string // cleaned port path -> field that uses it
	expanders map[string]string // expander name -> its type
	i2c       map[string]string // "bus@address" -> field of the device there
}

func (v *checker) add(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Message: oneLine(fmt.Sprintf(format, args...))})
}

func (v *checker) between(field string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(field, "must be %d to %d, not %d", lo, hi, n)
	}
}

func (v *checker) atLeast(field string, n, lo int) {
	if n < lo {
		v.add(field, "must be at least %d, not %d", lo, n)
	}
}

func (v *checker) positive(field string, n int) {
	if n <= 0 {
		v.add(field, "must be positive, not %d", n)
	}
}

// oneOf checks that s is one of the allowed words.
func (v *checker) oneOf(field, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	list := strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
	v.add(field, "must be %s, not %q", list, s)
}

// required reports an empty value and says whether the value is there.
func (v *checker) required(field, s, why string) bool {
	if s == "" {
		v.add(field, "required%s", why)
		return false
	}
	return true
}

// pin checks a GPIO pin name and that no other field uses the same pin.
// NAME:PIN names a pin of the expander NAME.
func (v *checker) pin(field, name string) {
	if strings.ContainsFunc(name, unicode.IsSpace) || !utf8.ValidString(name) {
		v.add(field, "pin name %q must not contain spaces", name)
		return
	}
	if exp, p, ok := expander.Split(name); ok {
		typ, known := v.expanders[exp]
		if !known {
			v.add(field, "pin %s: no expander %q in hardware.expanders", name, exp)
			return
		}
		if err := expander.CheckPin(typ, p); err != nil {
			v.add(field, "pin %s: %s", name, strings.TrimPrefix(err.Error(), "expander: "))
			return
		}
	}
	key := strings.ToUpper(name)
	if other, ok := v.pins[key]; ok {
		v.add(field, "pin %s already used by %s", name, other)
		return
	}
	v.pins[key] = field
}

// port checks that no other device uses the same serial port.
func (v *checker) port(field, path string) {
	key := filepath.Clean(path)
	if other, ok := v.ports[key]; ok {
		v.add(field, "port %s already used by %s", path, other)
		return
	}
	v.ports[key] = field
}

// file checks that a named file is a readable regular file; a secret one
// must not be readable by group or others.
func (v *checker) file(field, path string, secret bool) {
	fi, err := os.Stat(path)
	if err != nil {
		v.add(field, "cannot read: %v", err)
		return
	}
	if !fi.Mode().IsRegular() {
		v.add(field, "%s is not a regular file", path)
		return
	}
	if secret && fi.Mode().Perm()&0o077 != 0 {
		v.add(field, "%s holds a secret but has mode %04o; make it 0600 or stricter", path, fi.Mode().Perm())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		v.add(field, "cannot read: %v", err)
		return
	}
	f.Close()
}

// check runs every rule, in the order of the fields in the file.
func (c *Config) check() []Problem {
	v := &checker{pins: map[string]string{}, ports: map[string]string{}, expanders: map[string]string{}, i2c: map[string]string{}}
	if c.BoxID == "" {
		v.add("box_id", "required")
	} else if !boxIDPattern.MatchString(c.BoxID) {
		v.add("box_id", "must be 1 to 64 of A-Z, a-z, 0-9, _ and -")
	}
	v.required("data_dir", c.DataDir, "")
	c.checkMQTT(v)
	c.checkConsole(v)
	c.checkHardware(v)
	c.checkReaders(v)
	c.checkKeypad(v)
	c.checkNumbers(v)
	c.checkTrust(v)
	return v.problems
}

// checkTrust checks the signing keys: each named once, a valid Ed25519
// public key, known roles.
func (c *Config) checkTrust(v *checker) {
	names := map[string]int{}
	for i, k := range c.Trust.Keys {
		f := fmt.Sprintf("trust.keys[%d]", i)
		switch {
		case k.Name == "":
			v.add(f+".name", "required")
		case !boxIDPattern.MatchString(k.Name):
			v.add(f+".name", "must be 1 to 64 of A-Z, a-z, 0-9, _ and -")
		default:
			if j, dup := names[k.Name]; dup {
				v.add(f+".name", "%q is also the name of trust.keys[%d]", k.Name, j)
			} else {
				names[k.Name] = i
			}
		}
		if k.Ed25519 == "" {
			v.add(f+".ed25519", "required: the base64 of the key's 32-byte public key")
		} else if _, err := trust.ParsePublicKey(k.Ed25519); err != nil {
			v.add(f+".ed25519", "%s", keyReason(err))
		}
		if len(k.Roles) == 0 {
			v.add(f+".roles", "required: one or more of %s", roleList())
		}
		for j, r := range k.Roles {
			if _, err := trust.ParseRole(r); err != nil {
				v.add(fmt.Sprintf("%s.roles[%d]", f, j), "unknown role %q, want one of %s", r, roleList())
			}
		}
	}
	for i, k := range c.Trust.ReleaseKeys {
		if _, err := trust.ParsePublicKey(k); err != nil {
			v.add(fmt.Sprintf("trust.release_keys[%d]", i), "%s", keyReason(err))
		}
	}
}

// keyReason is a key error's reason without the package prefix.
func keyReason(err error) string {
	var ke *trust.KeyError
	if errors.As(err, &ke) {
		return ke.Reason
	}
	return err.Error()
}

func roleList() string {
	names := make([]string, len(trust.Roles))
	for i, r := range trust.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func (c *Config) checkMQTT(v *checker) {
	m := c.MQTT
	if m.Broker != "" && len(m.Brokers) > 0 {
		v.add("mqtt.brokers", "set beside mqtt.broker; give one of them")
	}
	var schemes []string
	if m.Broker != "" { // "" runs the box offline
		schemes = append(schemes, checkBroker(v, "mqtt.broker", m.Broker))
	}
	for i, b := range m.Brokers {
		schemes = append(schemes, checkBroker(v, fmt.Sprintf("mqtt.brokers[%d]", i), b))
	}
	needCA, plain := false, ""
	for _, scheme := range schemes {
		switch scheme {
		case "ssl":
			needCA = true
		case "tcp", "ws":
			plain = scheme
		}
	}
	switch {
	case needCA && m.TLS.CAFile == "":
		v.add("mqtt.tls.ca_file", "required with an ssl:// broker")
	case plain != "" && m.TLS != (TLS{}):
		v.add("mqtt.tls", "set, but a broker is %s://, not ssl://; the link would not be encrypted", plain)
	}
	if m.TLS.CertFile != "" && m.TLS.KeyFile == "" {
		v.add("mqtt.tls.key_file", "required with mqtt.tls.cert_file")
	}
	if m.TLS.KeyFile != "" && m.TLS.CertFile == "" {
		v.add("mqtt.tls.cert_file", "required with mqtt.tls.key_file")
	}
	if (m.Username != "" || m.PasswordFile != "") && !m.Insecure {
		for i, u := range m.BrokerURLs() {
			if scheme := schemeOf(u); (scheme == "tcp" || scheme == "ws") && !loopback(u) {
				field := "mqtt.broker"
				if len(m.Brokers) > 0 {
					field = fmt.Sprintf("mqtt.brokers[%d]", i)
				}
				v.add(field, "%s:// to a host that is not loopback would send the username and password in the clear; use ssl:// or set mqtt.insecure: true", scheme)
			}
		}
	}
	for _, f := range []struct {
		field, path string
		secret      bool
	}{
		{"mqtt.password_file", m.PasswordFile, true},
		{"mqtt.tls.ca_file", m.TLS.CAFile, false},
		{"mqtt.tls.cert_file", m.TLS.CertFile, false},
		{"mqtt.tls.key_file", m.TLS.KeyFile, true},
	} {
		if f.path != "" {
			v.file(f.field, f.path, f.secret)
		}
	}
	v.oneOf("mqtt.ack", m.Ack, "cloud", "broker")
	switch p := m.TopicPrefix; {
	case p == "":
		v.add("mqtt.topic_prefix", "must not be empty")
	case strings.ContainsAny(p, "+#\x00"):
		v.add("mqtt.topic_prefix", "must not contain the wildcards + and #")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		v.add("mqtt.topic_prefix", "must not begin or end with /")
	case !utf8.ValidString(p):
		v.add("mqtt.topic_prefix", "must be UTF-8")
	}
	switch id := m.ClientID; {
	case len(id) > 65535:
		v.add("mqtt.client_id", "longer than 65535 bytes")
	case strings.ContainsAny(id, "+#\x00"):
		v.add("mqtt.client_id", "must not contain the wildcards + and #")
	}
	v.positive("mqtt.keepalive_s", m.KeepAliveS)
	v.positive("mqtt.reconnect_max_s", m.ReconnectMaxS)
	v.positive("mqtt.reconnect_min_s", m.ReconnectMinS)
	if m.ReconnectMinS > m.ReconnectMaxS && m.ReconnectMaxS > 0 {
		v.add("mqtt.reconnect_min_s", "%d is above mqtt.reconnect_max_s (%d)", m.ReconnectMinS, m.ReconnectMaxS)
	}
	v.positive("mqtt.in_flight", m.InFlight)
	v.positive("mqtt.max_payload_kb", m.MaxPayloadKB)
	v.positive("mqtt.snapshot_max_mb", m.SnapshotMaxMB)
}

// schemeOf is a broker URL's scheme ("" when the URL does not parse).
func schemeOf(broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		return ""
	}
	return u.Scheme
}

// loopback reports whether a broker URL names a loopback host: localhost
// or a loopback address.
func loopback(broker string) bool {
	u, err := url.Parse(broker)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkBroker checks the broker URL of field and returns its scheme when it is
// usable.
func checkBroker(v *checker, field, broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		v.add(field, "not a URL like tcp://host:1883")
		return ""
	}
	switch u.Scheme {
	case "tcp", "ssl", "ws":
	default:
		v.add(field, "scheme must be tcp, ssl or ws")
		return ""
	}
	if u.Hostname() == "" {
		v.add(field, "host required, as in %s://host:port", u.Scheme)
		return ""
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			v.add(field, "port must be 1 to 65535")
			return ""
		}
	} else if u.Scheme != "ws" {
		v.add(field, "port required, as in %s://%s:%d", u.Scheme, u.Hostname(), map[string]int{"tcp": 1883, "ssl": 8883}[u.Scheme])
		return ""
	}
	return u.Scheme
}

func (c *Config) checkConsole(v *checker) {
	con := c.Console
	if con.Port != "" && con.Port != "stdio" {
		v.port("console.port", con.Port)
	}
	v.positive("console.baud", con.Baud)
	v.positive("console.idle_logout_s", con.IdleLogoutS)
	// Never put the PIN itself in a message.
	switch pin, hash := con.TechnicianPIN, con.TechnicianPINHash; {
	case pin != "" && hash != "":
		v.add("console.technician_pin", "give technician_pin or technician_pin_hash, not both")
	case pin != "":
		if !isDigits(pin) || len(pin) < 6 || len(pin) > 12 {
			v.add("console.technician_pin", "must be 6 to 12 digits")
		}
	case hash != "":
		if !isBcrypt(hash) {
			v.add("console.technician_pin_hash", "must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
		}
	case con.Port != "":
		v.add("console.technician_pin", "required (or technician_pin_hash) when console.port is set")
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

var bcryptPattern = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

func isBcrypt(h string) bool {
	if !bcryptPattern.MatchString(h) {
		return false
	}
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

func (c *Config) checkHardware(v *checker) {
	h := c.Hardware
	v.oneOf("hardware.backend", h.Backend, "sim", "gpio")
	gpio := h.Backend == "gpio"
	v.oneOf("hardware.lock_active", h.LockActive, "high", "low")
	v.oneOf("hardware.door_open", h.DoorOpen, "high", "low")
	v.oneOf("hardware.led_active", h.LEDActive, "high", "low")
	c.checkExpanders(v)
	if len(h.Bins) == 0 {
		v.add("hardware.bins", "at least one bin required")
	}
	n := len(h.Bins)
	first := map[int]int{} // id -> index of its first bin
	for i, b := range h.Bins {
		f := fmt.Sprintf("hardware.bins[%d]", i)
		if _, dup := first[b.ID]; dup && b.ID >= 1 && b.ID <= n {
			v.add(f+".id", "duplicate id %d", b.ID)
		} else if b.ID == 0 {
			v.add(f+".id", "required")
		} else if b.ID < 1 || b.ID > n {
			v.add(f+".id", "id %d out of range: the ids of %d bins are 1 to %d", b.ID, n, n)
		} else {
			first[b.ID] = i
		}
		if !gpio {
			continue // on the sim backend the names only mark what exists
		}
		if v.required(f+".lock", b.Lock, " on the gpio backend") {
			v.pin(f+".lock", b.Lock)
		}
		if b.Door != "" {
			v.pin(f+".door", b.Door)
		}
		if b.LED != "" {
			v.pin(f+".led", b.LED)
		}
		c.checkLockOnExpander(v, f+".lock", b.Lock)
	}
	if gpio && h.Buzzer != "" {
		v.pin("hardware.buzzer", h.Buzzer)
	}
	c.checkDisplay(v)
	c.checkPower(v)
}

// needsBackend reports a device type that the configured backend cannot
// drive. It stays quiet when the backend itself is unknown.
func (c *Config) needsBackend(v *checker, field, typ, backend string) {
	b := c.Hardware.Backend
	if b != backend && (b == "sim" || b == "gpio") {
		v.add(field, "%s needs the %s backend", typ, backend)
	}
}

func (c *Config) checkReaders(v *checker) {
	gpio := c.Hardware.Backend == "gpio"
	bins := map[int]bool{}
	for _, b := range c.Hardware.Bins {
		bins[b.ID] = true
	}
	readerOf := map[int]int{} // bin -> index of its reader
	for i, r := range c.Readers {
		f := fmt.Sprintf("readers[%d]", i)
		switch r.Type {
		case "rdm6300":
			if v.required(f+".port", r.Port, " for an rdm6300 reader") {
				v.port(f+".port", r.Port)
			}
			v.positive(f+".baud", r.Baud)
		case "wiegand":
			c.needsBackend(v, f+".type", "wiegand", "gpio")
			for _, p := range []struct{ field, pin string }{{f + ".d0", r.D0}, {f + ".d1", r.D1}} {
				if v.required(p.field, p.pin, " for a wiegand reader") && gpio {
					v.hostPin(p.field, p.pin)
				}
			}
			if r.Bits != 26 && r.Bits != 34 {
				v.add(f+".bits", "must be 26 or 34, not %d", r.Bits)
			}
			v.oneOf(f+".serial", r.Serial, "raw", "facility_card")
		case "mfrc522":
			c.checkMFRC522(v, f, r)
		case "sim":
			c.needsBackend(v, f+".type", "sim", "sim")
		case "":
			v.add(f+".type", "required: rdm6300, wiegand, mfrc522 or sim")
		default:
			v.oneOf(f+".type", r.Type, "rdm6300", "wiegand", "mfrc522", "sim")
		}
		switch other, taken := readerOf[r.Bin]; {
		case r.Bin == 0:
			v.add(f+".bin", "required")
		case !bins[r.Bin]:
			v.add(f+".bin", "no bin %d", r.Bin)
		case taken:
			v.add(f+".bin", "bin %d already has readers[%d]", r.Bin, other)
		default:
			readerOf[r.Bin] = i
		}
	}
}

func (c *Config) checkKeypad(v *checker) {
	k := c.Keypad
	gpio := c.Hardware.Backend == "gpio"
	switch k.Type {
	case "none":
	case "serial":
		if v.required("keypad.port", k.Port, " for a serial keypad") {
			v.port("keypad.port", k.Port)
		}
		v.positive("keypad.baud", k.Baud)
	case "wiegand":
		c.needsBackend(v, "keypad.type", "wiegand", "gpio")
		for _, p := range []struct{ field, pin string }{{"keypad.d0", k.D0}, {"keypad.d1", k.D1}} {
			if v.required(p.field, p.pin, " for a wiegand keypad") && gpio {
				v.hostPin(p.field, p.pin)
			}
		}
		for _, key := range []struct {
			field string
			value int
		}{{"keypad.star", k.Star}, {"keypad.hash", k.Hash}} {
			if key.value < 10 || key.value > 15 {
				v.add(key.field, "must be 10 to 15 (0 to 9 are the digits), not %d", key.value)
			}
		}
		if k.Star == k.Hash {
			v.add("keypad.hash", "must differ from keypad.star")
		}
	case "matrix":
		c.needsBackend(v, "keypad.type", "matrix", "gpio")
		for _, group := range []struct {
			field string
			pins  []string
		}{{"keypad.rows", k.Rows}, {"keypad.cols", k.Cols}} {
			if len(group.pins) == 0 {
				v.add(group.field, "at least one pin required")
			}
			for i, p := range group.pins {
				f := fmt.Sprintf("%s[%d]", group.field, i)
				if v.required(f, p, "") && gpio {
					v.hostPin(f, p)
				}
			}
		}
		if len(k.Layout) != len(k.Rows) {
			v.add("keypad.layout", "has %d rows but keypad.rows has %d pins (the default layout is 4x3)", len(k.Layout), len(k.Rows))
		} else {
			for i, row := range k.Layout {
				if n := utf8.RuneCountInString(row); n != len(k.Cols) {
					v.add(fmt.Sprintf("keypad.layout[%d]", i), "has %d keys but keypad.cols has %d pins", n, len(k.Cols))
				}
			}
		}
		v.between("keypad.debounce_ms", k.DebounceMS, 5, 10)
		v.oneOf("keypad.active", k.Active, "low", "high")
	case "sim":
		c.needsBackend(v, "keypad.type", "sim", "sim")
	default:
		v.oneOf("keypad.type", k.Type, "serial", "wiegand", "matrix", "sim", "none")
	}
}

func (c *Config) checkNumbers(v *checker) {
	t := c.Timing
	v.between("timing.lock_pulse_ms", t.LockPulseMS, 50, 5000)
	v.atLeast("timing.max_energised", t.MaxEnergised, 1)
	v.positive("timing.lock_rest_ms", t.LockRestMS)
	v.between("timing.fob_absent_ms", t.FobAbsentMS, 100, 10000)
	v.between("timing.dropoff_timeout_s", t.DropoffTimeoutS, 5, 3600)
	v.between("timing.key_timeout_s", t.KeyTimeoutS, 2, 120)
	v.positive("timing.door_held_open_s", t.DoorHeldOpenS)
	v.positive("timing.door_debounce_ms", t.DoorDebounceMS)
	v.positive("timing.inventory_settle_s", t.InventorySettleS)
	v.positive("timing.late_after_s", t.LateAfterS)

	s := c.Security
	v.between("security.lockout_after", s.LockoutAfter, 1, 100)
	v.between("security.lockout_s", s.LockoutS, 1, 3600)
	if s.LockoutMaxS < s.LockoutS {
		v.add("security.lockout_max_s", "must be at least security.lockout_s (%d), not %d", s.LockoutS, s.LockoutMaxS)
	}
	v.between("security.lockout_window_s", s.LockoutWindowS, 1, 86400)
	v.between("security.lockout_decay_s", s.LockoutDecayS, 1, 7*86400)

	v.atLeast("outbox.max_events", c.Outbox.MaxEvents, 100)
	v.positive("limits.max_access_codes", c.Limits.MaxAccessCodes)
	v.positive("limits.max_keys", c.Limits.MaxKeys)
	v.positive("limits.replies", c.Limits.Replies)
	v.between("limits.removed_retention_s", c.Limits.RemovedRetentionS, 1, 366*86400)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.between("firmware.trial_s", c.Firmware.TrialS, 1, 3600)
}
