package contract

import "time"

// State is the reported state document of §5, published retained on
// P/state and answered to state.get.
type State struct {
	Version     uint64      `json:"version"`
	At          time.Time   `json:"at"`
	Bins        []BinState  `json:"bins"`
	Keys        int         `json:"keys"`
	AccessCodes int         `json:"access_codes"`
	Outbox      OutboxState `json:"outbox"`
	Clock       ClockState  `json:"clock"`
	Settings    Settings    `json:"settings"`
	Store       StoreState  `json:"store"`
	// AcksRefused counts the event acks the box ignored since it started:
	// with trust on, every ack that is not a JWS of an admin or ack key
	// for this box (§7).
	AcksRefused uint64      `json:"acks_refused"`
	Limits      StateLimits `json:"limits"`
	Mode        string      `json:"mode"` // ModeNormal or ModeSafe
	// Power is the supply (§10), present once a power monitor has read it.
	Power *PowerState `json:"power,omitempty"`
}

// Power sources of PowerState.
const (
	PowerMains   = "mains"
	PowerBattery = "battery"
)

// PowerState is the supply as the power monitor last read it.
type PowerState struct {
	Source string  `json:"source"` // PowerMains or PowerBattery
	Volts  float64 `json:"volts"`
}

// StateLimits are what the box accepts, so a cloud can keep within them.
type StateLimits struct {
	CodeMin        int `json:"code_min"` // digits of the shortest code
	CodeMax        int `json:"code_max"` // digits of the longest code
	MaxAccessCodes int `json:"max_access_codes"`
	MaxKeys        int `json:"max_keys"`
}

// The lengths of a code at the keypad (§4).
const (
	CodeMinLen = 4
	CodeMaxLen = 16
)

// Modes of the state document. In safe mode (after repeated unclean
// starts) the keypad is off; the console and the cloud link work.
const (
	ModeNormal = "normal"
	ModeSafe   = "safe"
)

// Bin states, lock states and door states of BinState.
const (
	BinEmpty    = "empty"
	BinOccupied = "occupied"
	BinOpen     = "open"

	LockLocked    = "locked"
	LockEnergised = "energised"

	DoorOpen    = "open"
	DoorClosed  = "closed"
	DoorUnknown = "unknown"
)

// BinState is one bin in the state document.
type BinState struct {
	ID    int     `json:"id"`
	State string  `json:"state"`
	KeyID *string `json:"key_id"`
	Fob   *string `json:"fob"`
	Lock  string  `json:"lock"`
	Door  string  `json:"door"`
}

// Settings are the box settings the cloud sets with settings.set.
type Settings struct {
	KeyCodesEnabled bool `json:"key_codes_enabled"`
}

// StoreState says whether the database takes writes. While it does not
// (disk full, read-only), the box opens nothing it cannot record.
type StoreState struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Restored is set when the database was found corrupt at this start:
	// StoreRestoredBackup or StoreRestoredEmpty.
	Restored string `json:"restored,omitempty"`
}

// OutboxState is the outbox part of the state document.
type OutboxState struct {
	Depth    int        `json:"depth"`
	OldestAt *time.Time `json:"oldest_at"`
}

// ClockState says whether the box trusts its clock.
type ClockState struct {
	Synced bool `json:"synced"`
}
