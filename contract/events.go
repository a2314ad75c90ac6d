package contract

import (
	"encoding/json"
	"time"
)

// Event is one event of the outbox, as published on P/events.
type Event struct {
	ID    string          `json:"id"`
	BoxID string          `json:"box_id"`
	Seq   uint64          `json:"seq"`
	Type  string          `json:"type"`
	At    time.Time       `json:"at"`
	Data  json.RawMessage `json:"data"`
}

// Event types of §5, and those the box adds.
const (
	EventDeviceStarted     = "device.started"
	EventBinUnlocked       = "bin.unlocked"
	EventBinOpenFailed     = "bin.open_failed"
	EventBinDoorHeldOpen   = "bin.door_held_open"
	EventBinForced         = "bin.forced"
	EventKeyDroppedOff     = "key.dropped_off"
	EventKeyPickedUp       = "key.picked_up"
	EventKeyUpdated        = "key.updated"
	EventKeyUnlinked       = "key.unlinked"
	EventKeyRetired        = "key.retired"
	EventFobLinked         = "fob.linked"
	EventFobUnknown        = "fob.unknown"
	EventFobRemoved        = "fob.removed"
	EventCodeRejected      = "code.rejected"
	EventKeypadLockedOut   = "keypad.locked_out"
	EventAccessCodeStatus  = "access_code.status"
	EventConsoleLogin      = "console.login"
	EventConsoleCommand    = "console.command"
	EventConsoleLockedOut  = "console.locked_out"
	EventInventoryMismatch = "inventory.mismatch"
	EventReaderFault       = "reader.fault"
	EventReaderOK          = "reader.ok"
	EventOutboxOverflow    = "outbox.overflow"
	EventSettingsChanged   = "settings.changed"
	EventSnapshotApplied   = "sync.snapshot_applied"
	EventDropoffWrongKey   = "dropoff.wrong_key"
	EventDropoffTimeout    = "dropoff.timeout"
	EventPickupTimeout     = "pickup.timeout"
	EventFirmwareStatus    = "firmware.status"
)

// FirmwareStatus is the data of a firmware.status event (§11). Error is
// the failure, as "code: message", or null.
type FirmwareStatus struct {
	Version string  `json:"version"`
	State   string  `json:"state"`
	Error   *string `json:"error"`
}

// The states of a firmware.status event, in the order an update goes
// through them.
const (
	FirmwareDownloading = "downloading"
	FirmwareVerified    = "verified"
	FirmwareInstalled   = "installed"
	FirmwareTrial       = "trial"
	FirmwareCommitted   = "committed"
	FirmwareRolledBack  = "rolled_back"
	FirmwareFailed      = "failed"
)

// Reasons of bin.unlocked, and the via of key.picked_up.
const (
	ReasonPickup  = "pickup"
	ReasonDropoff = "dropoff"
	ReasonRemote  = "remote"
	ReasonConsole = "console"

	ViaAccessCode = "access_code"
	ViaKeyCode    = "key_code"
)
