package contract

import (
	"encoding/json"
	"strings"
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
	EventDeviceStarted   = "device.started"
	EventBinUnlocked     = "bin.unlocked"
	EventBinOpenFailed   = "bin.open_failed"
	EventBinDoorHeldOpen = "bin.door_held_open"
	EventBinForced       = "bin.forced"
	EventKeyDroppedOff   = "key.dropped_off"
	EventKeyPickedUp     = "key.picked_up"
	EventKeyUpdated      = "key.updated"
	EventKeyUnlinked     = "key.unlinked"
	EventKeyRetired      = "key.retired"
	EventFobLinked       = "fob.linked"
	EventFobUnknown      = "fob.unknown"
	EventFobRemoved      = "fob.removed"
	EventCodeRejected    = "code.rejected"
	EventKeypadLockedOut = "keypad.locked_out"
	// EventKeypadLockoutEnded reports a keypad lockout's end (LockoutEnded).
	EventKeypadLockoutEnded = "keypad.lockout_ended"
	// EventKeypadLockoutCleared reports security.clear_lockout or the
	// console's clear-lockout (LockoutCleared).
	EventKeypadLockoutCleared = "keypad.lockout_cleared"
	EventAccessCodeStatus     = "access_code.status"
	EventConsoleLogin         = "console.login"
	EventConsoleCommand       = "console.command"
	EventConsoleLockedOut     = "console.locked_out"
	EventInventoryMismatch    = "inventory.mismatch"
	EventReaderFault          = "reader.fault"
	EventReaderOK             = "reader.ok"
	EventOutboxOverflow       = "outbox.overflow"
	EventSettingsChanged      = "settings.changed"
	EventSnapshotApplied      = "sync.snapshot_applied"
	EventDropoffWrongKey      = "dropoff.wrong_key"
	EventDropoffTimeout       = "dropoff.timeout"
	EventPickupTimeout        = "pickup.timeout"
	EventOfflineKeySet        = "offline.key_set" // data: the key's fingerprint, never the key
	EventOfflineRevoked       = "offline.revoked" // data: the revoked code's window, never the code
	EventStoreRestored        = "store.restored"
	EventSafeMode             = "device.safe_mode"
	// EventOutboxUnreadable stands in, under its seq, for an outbox record
	// the store cannot read (a corrupt card): the drain goes on, and the
	// cloud learns an event was lost there. Its "at" is the Unix epoch
	// (the record's own time is what could not be read).
	EventOutboxUnreadable = "outbox.unreadable"

	// §10: the supply as the power monitor sees it. on_battery and mains
	// carry the volts of the reading that crossed battery_below_v; low the
	// volts of the reading below low_below_v. fault and ok report the
	// monitor itself failing and reading again.
	EventPowerOnBattery = "power.on_battery"
	EventPowerMains     = "power.mains"
	EventPowerLow       = "power.low"
	EventPowerFault     = "power.fault"
	EventPowerOK        = "power.ok"
	EventFirmwareStatus = "firmware.status"
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

// StoreRestored is the data of store.restored: the database was found
// corrupt at start, moved aside, and the box started on its backup or
// empty.
type StoreRestored struct {
	From     string     `json:"from"` // StoreRestoredBackup or StoreRestoredEmpty
	BackupAt *time.Time `json:"backup_at"`
	MovedTo  string     `json:"moved_to"`
	Problem  string     `json:"problem"`
}

// What a box recovered from a corrupt database started on.
const (
	StoreRestoredBackup = "backup"
	StoreRestoredEmpty  = "empty"
)

// SafeMode is the data of device.safe_mode: the box started in safe mode
// after this many unclean starts in a row.
type SafeMode struct {
	UncleanStarts int `json:"unclean_starts"`
}

// Reasons of bin.unlocked, and the via of key.picked_up.
const (
	ReasonPickup  = "pickup"
	ReasonDropoff = "dropoff"
	ReasonRemote  = "remote"
	ReasonConsole = "console"

	ViaAccessCode = "access_code"
	ViaKeyCode    = "key_code"
	ViaOffline    = "offline_code" // an offline code (§8); access_code_id is null
)

// LockoutEnded is the data of keypad.lockout_ended. Of the entries a lockout
// refuses only the first is reported (code.rejected, reason
// keypad.locked_out); Rejected counts the rest.
type LockoutEnded struct {
	Rejected int `json:"rejected"`
}

// LockoutCleared is the data of keypad.lockout_cleared and the result of
// security.clear_lockout: who cleared it, whether a lockout was running, the
// escalation level it ended, and the refused entries not reported one by one.
type LockoutCleared struct {
	By           string `json:"by"` // ClearedByCloud or ClearedByConsole
	WasLockedOut bool   `json:"was_locked_out"`
	Level        int    `json:"level"`
	Rejected     int    `json:"rejected"`
}

// Who cleared a keypad lockout.
const (
	ClearedByCloud   = "cloud"
	ClearedByConsole = "console"
)

// EventClass says which events a full outbox lets go first.
type EventClass int

// Event classes, in the order a full outbox lets them go: noise first
// (oldest first within a class), then ordinary events, and what reports a
// bin, a key, a code or a login only when nothing else is left.
const (
	ClassNoise    EventClass = iota // code.rejected, console.command, reader.*
	ClassOrdinary                   // device.started, outbox.overflow, settings.changed, ...
	ClassKept                       // bin.*, key.*, fob.*, access_code.*, keypad.*, console.login, ...
)

// ClassOf is the class of events of type typ.
func ClassOf(typ string) EventClass {
	switch {
	case typ == EventCodeRejected || typ == EventConsoleCommand || strings.HasPrefix(typ, "reader."):
		return ClassNoise
	case typ == EventConsoleLogin || typ == EventConsoleLockedOut || typ == EventInventoryMismatch:
		return ClassKept
	}
	for _, p := range []string{"bin.", "key.", "fob.", "access_code.", "keypad.", "dropoff.", "pickup.", "offline."} {
		if strings.HasPrefix(typ, p) {
			return ClassKept
		}
	}
	return ClassOrdinary
}
