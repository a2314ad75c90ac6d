package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DBPath is the bbolt file that holds all durable state.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "smartbox.db") }

// SecretPath is the file of the per-box secret that keys code hashes.
func (c *Config) SecretPath() string { return filepath.Join(c.DataDir, "secret") }

// TopicBase is the prefix of every MQTT topic of the box, "<prefix>/<box_id>".
func (c *Config) TopicBase() string { return c.MQTT.TopicPrefix + "/" + c.BoxID }

// SlogLevel is log.level as a slog level; anything unknown is info.
func (c *Config) SlogLevel() slog.Level {
	switch c.Log.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// BinIDs returns the ids of the bins in ascending order.
func (c *Config) BinIDs() []int {
	ids := make([]int, len(c.Hardware.Bins))
	for i, b := range c.Hardware.Bins {
		ids[i] = b.ID
	}
	slices.Sort(ids)
	return ids
}

// ReaderForBin returns the reader that watches bin id, or nil when the bin
// has none. The pointer is into c.Readers.
func (c *Config) ReaderForBin(id int) *Reader {
	for i := range c.Readers {
		if c.Readers[i].Bin == id {
			return &c.Readers[i]
		}
	}
	return nil
}

// Password reads the broker password from PasswordFile, without surrounding
// white space such as the final newline. With no PasswordFile the password
// is empty.
func (m MQTT) Password() (string, error) {
	if m.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(m.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("config: mqtt.password_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// BrokerURLs are the brokers the box connects to, in order: Brokers, or
// Broker alone; none when the box runs offline.
func (m MQTT) BrokerURLs() []string {
	if len(m.Brokers) > 0 {
		return m.Brokers
	}
	if m.Broker != "" {
		return []string{m.Broker}
	}
	return nil
}
