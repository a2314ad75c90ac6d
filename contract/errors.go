package contract

import (
	"errors"
	"fmt"
)

// Error is a rule the box refused on, carrying its contract code. A reply,
// a console line and an event all print the same Code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is match on the code (and the message, when the target
// has one).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Errorf makes an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a coded error, or CodeInternal for any other.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError reports whether err is (or wraps) an *Error, and sets target.
func AsError(err error, target **Error) bool { return errors.As(err, target) }

// The seed error codes of keys and access codes (used verbatim).
const (
	CodeKeyNotFound         = "key.notFound"
	CodeKeyAlreadyUnlinked  = "key.already.unlinked"
	CodeKeySerialTaken      = "key.serialNumber.taken"
	CodeKeyRequired         = "key.required"
	CodeKeyRetireDenied     = "key.retire.denied"
	CodeKeyNameRequired     = "key.name.required"
	CodeKeyDescriptionMax   = "key.description.maxSize.exceeded"
	CodeKeySerialInvalid    = "key.serialNumber.invalid"
	CodeKeyNotesMax         = "key.notes.maxSize.exceeded"
	CodeKeyPickupNoteMax    = "key.pickupNote.maxSize.exceeded"
	CodeNoAvailableBins     = "key.homeLocation.noAvailableBins"
	CodeKeyAlreadyLinked    = "key.already.linked"
	CodeCodeNotNumeric      = "key.code.not.numeric"
	CodeCodeInvalidLength   = "key.code.invalid.length"
	CodeCodeTaken           = "key.code.taken"
	CodeCodeDisabled        = "key.code.disabled"
	CodeKeyNotVirtual       = "key.not.virtual"
	CodeKeyVirtualCheckedIn = "key.virtual.checked.in"
	CodeKeyFobVirtual       = "key.fob.virtual"
	CodeAccessCodeNotFound  = "access_code.notFound"
	CodeAccessCodeInvalid   = "access_code.invalid"
	CodeBinNotFound         = "bin.notFound"
)

// The command codes of §5 and the box's own refusals.
const (
	CodeCmdInvalid       = "cmd.invalid"
	CodeCmdUnknown       = "cmd.unknown"
	CodeCmdExpired       = "cmd.expired"
	CodeCmdConflict      = "cmd.conflict" // a command id seen before, with another type or data
	CodeInternal         = "internal"
	CodeStoreUnavailable = "store.unavailable"
	CodeAccessCodeLimit  = "access_code.limit"
	CodeKeyLimit         = "key.limit" // a new key beyond limits.max_keys
	CodeDeviceStopped    = "device.stopped"
	CodeDeviceStarting   = "device.starting"
)

// The trust codes of §7: a command the box will not obey, and codes that
// must not cross the broker in plain text.
const (
	CodeCmdUnauthenticated = "cmd.unauthenticated" // not a JWS, an unknown kid, or a bad signature
	CodeCmdWrongBox        = "cmd.wrong_box"       // signed for another box
	CodeCmdForbidden       = "cmd.forbidden"       // a type the key's roles do not allow
	CodeCmdReplayed        = "cmd.replayed"        // a counter seen before, or too far below the highest
	CodeCodePlaintext      = "code.plaintext"      // a plain code while seal_codes is on
	CodeCodeSealedInvalid  = "code.sealed.invalid" // a sealed code that does not open
	CodeKeyCodeRequired    = "key.code.required"   // a virtual key without a sealed key code while seal_codes is on
)

// The firmware codes of §11: an update refused or failed, and a trial
// rolled back.
const (
	CodeFirmwareSignatureInvalid = "firmware.signature.invalid" // the manifest is no release key's JWS, or not a manifest
	CodeFirmwareDownloadFailed   = "firmware.download_failed"   // the binary could not be fetched (or installed)
	CodeFirmwareHashMismatch     = "firmware.hash_mismatch"     // the binary is not the size or SHA-256 the manifest signs
	CodeFirmwareBusy             = "firmware.busy"              // an update is downloading, installing or on trial
	CodeFirmwareDowngrade        = "firmware.downgrade"         // not newer than the running version, or below the floor
	CodeFirmwareTrialFailed      = "firmware.trial_failed"      // a trial exited, hung or missed its deadline twice
)

// The reasons of code.rejected events (some are seed codes above too).
const (
	CodeKeypadLockedOut     = "keypad.locked_out"
	CodeCodeUnknown         = "code.unknown"
	CodeCodeNotActive       = "code.not_active"
	CodeClockUnsynced       = "clock.unsynced"
	CodeKeyNotCheckedIn     = "key.notCheckedIn"
	CodeKeyAlreadyCheckedIn = "key.checkedIn"
	CodeCodeUsedUp          = "code.used_up" // a once-mode offline code after its first use
	CodeCodeRevoked         = "code.revoked" // an offline code refused by offline.revoke
	CodePowerLow            = "power.low"    // §10: the battery is low; remote and console opens still work
)

// The error and warning codes of an access code object.
const (
	CodeFailedToSetOnDevice = "failed_to_set_on_device"
	CodeDelayInSetting      = "delay_in_setting_on_device"
	CodeDelayInRemoving     = "delay_in_removing_from_device"
	// CodeRestoredAfterClockJump warns that a time-bound code the box
	// removed when its clock ran ahead is back, the clock having returned
	// inside the code's window.
	CodeRestoredAfterClockJump = "restored_after_clock_jump"
)

// The console's codes (§6).
const (
	CodeConsoleLockedOut     = "console.locked_out"
	CodeConsoleLoginRequired = "console.login_required" // a command before a login
	CodeConsolePINInvalid    = "console.pin_invalid"    // a wrong PIN
	CodeConsoleUsage         = "console.usage"          // a command with wrong arguments
	CodeConsoleUnknown       = "console.unknown"        // no such command
	CodeConsoleNoise         = "console.noise"          // a line with control or non-ASCII bytes
	CodeConsoleLineTooLong   = "console.line_too_long"  // a line over the console's limit
	CodeConsoleUnavailable   = "console.unavailable"    // the daemon gave the console no source for this
)

// ErrStopped is returned by calls into a box whose decision loop has stopped.
var ErrStopped = &Error{Code: CodeDeviceStopped, Message: "the box is stopping"}

// ErrStarting is returned for the state document before the box has loaded
// its durable state.
var ErrStarting = &Error{Code: CodeDeviceStarting, Message: "the box is starting"}
