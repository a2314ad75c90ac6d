package main

import (
	"testing"
	"time"

	"smartboxd/console"
	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/firmware"
	"smartboxd/fob"
	"smartboxd/internal/config"
	"smartboxd/keypad"
	"smartboxd/locks"
	"smartboxd/store"
	"smartboxd/sync/mqttlink"
)

// TestConfigDefaultsMatchPackages holds every default the config file
// documents equal to the default of the package that uses it, so that a box
// run from a config leaving a field out behaves as the package says.
func TestConfigDefaultsMatchPackages(t *testing.T) {
	c := config.Default()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"mqtt.topic_prefix", c.MQTT.TopicPrefix, mqttlink.DefaultTopicPrefix},
		{"mqtt.ack", c.MQTT.Ack, mqttlink.AckCloud},
		{"mqtt.keepalive_s", time.Duration(c.MQTT.KeepAliveS) * time.Second, mqttlink.DefaultKeepAlive},
		{"mqtt.in_flight", c.MQTT.InFlight, mqttlink.DefaultInFlight},
		{"mqtt.reconnect_max_s", time.Duration(c.MQTT.ReconnectMaxS) * time.Second, mqttlink.DefaultReconnectMax},
		{"mqtt.reconnect_min_s", time.Duration(c.MQTT.ReconnectMinS) * time.Second, mqttlink.DefaultReconnectMin},
		{"mqtt.max_payload_kb", c.MQTT.MaxPayloadKB << 10, contract.DefaultMaxPayload},
		{"mqtt.snapshot_max_mb", c.MQTT.SnapshotMaxMB << 20, contract.DefaultMaxSnapshotPayload},
		{"console.idle_logout_s", time.Duration(c.Console.IdleLogoutS) * time.Second, console.DefaultIdleLogout},
		{"keypad.star", c.Keypad.Star, keypad.DefaultWiegandStar},
		{"keypad.hash", c.Keypad.Hash, keypad.DefaultWiegandHash},
		{"keypad.debounce_ms", time.Duration(c.Keypad.DebounceMS) * time.Millisecond, keypad.DefaultDebounce},
		{"keypad.layout", len(c.Keypad.Layout), len(keypad.DefaultLayout)},
		{"timing.lock_pulse_ms", c.Timing.LockPulse(), locks.DefaultPulse},
		{"timing.lock_rest_ms", c.Timing.LockRest(), locks.DefaultRest},
		{"timing.max_energised", c.Timing.MaxEnergised, locks.DefaultMaxEnergised},
		{"timing.door_debounce_ms", c.Timing.DoorDebounce(), locks.DefaultDoorDebounce},
		{"timing.door_held_open_s", c.Timing.DoorHeldOpen(), locks.DefaultHeldOpen},
		{"timing.fob_absent_ms (device)", c.Timing.FobAbsent(), device.DefaultFobAbsent},
		{"timing.fob_absent_ms (readers)", c.Timing.FobAbsent(), fob.DefaultAbsentAfter},
		{"timing.dropoff_timeout_s", c.Timing.DropoffTimeout(), device.DefaultDropoffTimeout},
		{"timing.key_timeout_s", c.Timing.KeyTimeout(), keypad.DefaultKeyTimeout},
		{"timing.inventory_settle_s", c.Timing.InventorySettle(), device.DefaultInventorySettle},
		{"timing.late_after_s", c.Timing.LateAfter(), device.DefaultLateAfter},
		{"security.lockout_after", c.Security.LockoutAfter, device.DefaultLockoutAfter},
		{"security.lockout_s", time.Duration(c.Security.LockoutS) * time.Second, device.DefaultLockoutBase},
		{"security.lockout_max_s", time.Duration(c.Security.LockoutMaxS) * time.Second, device.DefaultLockoutMax},
		{"security.lockout_window_s", time.Duration(c.Security.LockoutWindowS) * time.Second, device.DefaultLockoutWindow},
		{"security.lockout_decay_s", time.Duration(c.Security.LockoutDecayS) * time.Second, device.DefaultLockoutDecay},
		{"outbox.max_events", c.Outbox.MaxEvents, store.DefaultMaxEvents},
		{"limits.max_access_codes", c.Limits.MaxAccessCodes, device.DefaultMaxAccessCodes},
		{"limits.max_keys", c.Limits.MaxKeys, device.DefaultMaxKeys},
		{"limits.replies", c.Limits.Replies, store.DefaultReplies},
		{"limits.removed_retention_s", time.Duration(c.Limits.RemovedRetentionS) * time.Second, device.DefaultRemovedRetention},
		{"firmware.trial_s", c.Firmware.Trial(), firmware.DefaultTrial},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: config default %v, package default %v", tc.name, tc.got, tc.want)
		}
	}
	for i, row := range c.Keypad.Layout {
		if row != keypad.DefaultLayout[i] {
			t.Errorf("keypad.layout[%d]: config default %q, package default %q", i, row, keypad.DefaultLayout[i])
		}
	}
}
