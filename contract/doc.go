// Package contract is the SmartBox device contract in code: the shapes the
// cloud, the console and the box share, and nothing else.
//
//   - Commands and replies (Command, Reply), read from the wire by
//     ParseCommand with the contract's limits, and the data decoder every
//     command's fields go through (DecodeData).
//   - The error type (Error) with every code of the contract: the seed error
//     codes (key.code.taken, ...), the command codes (cmd.invalid, ...), the
//     keypad's rejection reasons and the console's codes. A reply, a console
//     line and an event print the same Code.
//   - The published documents: events (Event and the event type names), the
//     state document (State), the status (Status), event acks (ParseAck),
//     and the public forms of keys and access codes (KeyView,
//     AccessCodeView) that replies and events carry.
//   - The MQTT topics of one box (Topics).
//
// It imports no other package of the project, so the box, its cloud link,
// its console and a cloud written in Go all read and write the same names.
//
// # Secrets
//
// A command result may carry a code the box made (a generated key code). A
// result type that does says so by implementing Redactor: the reply kept
// for a repeated command id is encoded from Redacted, so no code is stored.
package contract
