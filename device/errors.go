package device

import (
	"errors"
	"fmt"
)

// Error is a rule the box refused on, carrying its code: the seed error
// codes (key.code.taken, ...) and the command codes (cmd.invalid, ...). A
// reply, a console line and an event all print the same Code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is match on the code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

func errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a coded error, or "internal" for any other.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Codes of the seed documents and of the command protocol.
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
	CodeCmdInvalid          = "cmd.invalid"
	CodeCmdUnknown          = "cmd.unknown"
	CodeCmdExpired          = "cmd.expired"
	CodeInternal            = "internal"
	CodeStoreUnavailable    = "store.unavailable"
	CodeAccessCodeLimit     = "access_code.limit"
	CodeDeviceStopped       = "device.stopped"
	CodeDeviceStarting      = "device.starting"
	CodeConsoleLockedOut    = "console.locked_out"
	CodeKeypadLockedOut     = "keypad.locked_out"
	CodeCodeUnknown         = "code.unknown"
	CodeCodeNotActive       = "code.not_active"
	CodeClockUnsynced       = "clock.unsynced"
	CodeKeyNotCheckedIn     = "key.notCheckedIn"
	CodeKeyAlreadyCheckedIn = "key.checkedIn"
	CodeDoorSensorMissing   = "bin.noDoorSensor"
	CodeFailedToSetOnDevice = "failed_to_set_on_device"
	CodeDelayInSetting      = "delay_in_setting_on_device"
	CodeDelayInRemoving     = "delay_in_removing_from_device"
)

// ErrStopped is returned by calls into a Box whose loop has stopped.
var ErrStopped = &Error{Code: CodeDeviceStopped, Message: "the box is stopping"}

// ErrStarting is returned by State before the loop has loaded the box's
// durable state.
var ErrStarting = &Error{Code: CodeDeviceStarting, Message: "the box is starting"}
