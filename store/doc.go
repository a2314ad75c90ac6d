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
// # Record formats
//
// Access codes and keys are stored in a compact binary form: a leading
// format byte (1), then the record's fields as length-prefixed bytes and
// varints, the id being the bbolt key (see encodeAccessCode and encodeKey).
// A right code check decodes two of them without encoding/json. Records
// written by earlier firmware are JSON objects, whose first byte is '{':
// they still read, and each is written anew in the binary form when it next
// changes (a snapshot rewrites them all). Events in the outbox and the
// history are kept the same way (encodeStoredEvent): the envelope in binary,
// the data as its JSON once, and Pending writes the event's JSON as it is
// published; an event queued as JSON by earlier firmware is published as
// it was stored. A value in neither form is ErrBadRecord.
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
