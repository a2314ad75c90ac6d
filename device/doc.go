// Package device is the SmartBox itself: one decision loop that owns the
// box's state machine — bins, their sessions, keys, access codes and their
// lifecycle, the keypad's lockout — and decides, for every input, what
// happens.
//
// Inputs arrive from other goroutines through methods that post to the loop:
// KeypadEntry (keypad.Sink), FobPresent/FobAbsent/ReaderFault/ReaderOK
// (fob.Sink), LockChanged/DoorChanged/OpenFailed/DoorHeldOpen/DoorForced
// (locks.Sink), PowerChanged/PowerFault/PowerOK (power.Sink), Execute and
// Receive (cloud commands), OpenBin, ConsoleLogin, Audit and ClearLockout
// (the console). Run serialises them.
//
// Every decision is one store transaction: the state change and the events
// that report it commit together, and only then does a lock move. A decision
// the store cannot record opens nothing.
//
// The package states what it needs of the rest — a Store, a Locker, an
// optional Feedback and an optional Guest (the guest display and the bins'
// LEDs, told of each decision once it has committed) — and knows nothing of GPIO, serial ports or MQTT, so
// the same box runs on simulated pins and on a board.
package device
