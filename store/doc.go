// Package store keeps all of a SmartBox's durable state in one bbolt file,
// <data_dir>/smartbox.db: bins, keys, the fob index, access codes, the code
// index, the schedule of access-code transitions, settings, the keypad
// lockout, the event outbox, a short event history and command replies.
//
// Every change goes through DB.Update with a *Tx whose typed methods keep the
// indexes in step with the records, and an event is appended with Tx.Append
// in the same transaction as the change it reports, so a crash loses either
// both or neither.
//
// # Codes
//
// Codes (access codes, key codes) are never stored. They are indexed by
// HMAC-SHA256 under a per-box secret kept in <data_dir>/secret (mode 0600,
// made on first open): a keypad lookup is one Get on the 32-byte keyed hash.
//
// # Outbox
//
// Events are ordered by the outbox bucket's NextSequence, never by wall time
// (a board without a real-time clock boots in 1970). The sequence is the
// event's seq: it starts at 1, rises by one per event, and is never reused,
// since bbolt keeps a bucket's sequence when its keys are deleted.
//
// # Caveats
//
// bbolt splits nodes only at commit, so a transaction that inserts many keys
// in random order (keyed hashes are random) grows quadratically; bulk writes
// (ReplaceAll) sort their keys first. Byte slices read inside a transaction
// are valid only until it ends: every accessor here returns copies.
package store
