package store

import (
	"encoding/json"
	"time"

	"smartboxd/contract"
)

// Bin is the durable part of a bin: what is in it. Sessions (a bin opened
// and waiting) are not durable; after a restart the readers tell the truth.
type Bin struct {
	ID    int    `json:"id"`
	KeyID string `json:"key_id,omitempty"` // the key checked in here, "" if none
	Fob   string `json:"fob,omitempty"`    // the fob seen here, "" if none
}

// Empty reports whether nothing is known to be in the bin.
func (b Bin) Empty() bool { return b.KeyID == "" && b.Fob == "" }

// Key is a key the box knows. Bin is where it is checked in (0: not here).
type Key struct {
	ID          string    `json:"key_id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Fob         string    `json:"serial_number,omitempty"`
	Notes       string    `json:"notes,omitempty"`
	PickupNote  string    `json:"pickup_note,omitempty"`
	Virtual     bool      `json:"virtual,omitempty"`
	CodeHash    []byte    `json:"code_hash,omitempty"` // keyed hash of the key code
	AnyLocation bool      `json:"any_location,omitempty"`
	Bin         int       `json:"bin,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Notice is one entry of an access code's errors or warnings.
type Notice struct {
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// AccessCode is an access code without its code: only the keyed hash is kept.
type AccessCode struct {
	ID        string     `json:"access_code_id"`
	CodeHash  []byte     `json:"code_hash"`
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	Status    string     `json:"status"`
	StartsAt  *time.Time `json:"starts_at,omitempty"`
	EndsAt    *time.Time `json:"ends_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	KeyID     string     `json:"key_id,omitempty"`
	Action    string     `json:"action"`
	// MaxUses is how many entries may open a bin for the code, 0 for no
	// limit; Uses counts those that did.
	MaxUses int `json:"max_uses,omitempty"`
	Uses    int `json:"uses,omitempty"`
	// Schedule is the code's weekly schedule in its canonical JSON form
	// (internal/weekly), nil for none.
	Schedule json.RawMessage `json:"schedule,omitempty"`
	Errors   []Notice        `json:"errors,omitempty"`
	Warnings []Notice        `json:"warnings,omitempty"`
}

// NextTransition is when the code's status next changes by itself: starts_at
// while unset, ends_at while set; the zero time when it never does.
func (a *AccessCode) NextTransition() time.Time {
	if a.Type != contract.TypeTimeBound {
		return time.Time{}
	}
	switch a.Status {
	case contract.StatusUnset, contract.StatusSetting:
		if a.StartsAt != nil {
			return *a.StartsAt
		}
	case contract.StatusSet, contract.StatusRemoving:
		if a.EndsAt != nil {
			return *a.EndsAt
		}
	}
	return time.Time{}
}

// Lockout is the keypad's (or console's) brute-force state. Records written
// before Fails and Since existed still load: their Failures count as made at
// the load, and their escalation decays from then.
type Lockout struct {
	Failures int `json:"failures"` // wrong entries counted (len(Fails) when Fails is set)
	Level    int `json:"level"`    // lockouts so far in this escalation
	// Until is the wall time the current lockout ends; Remaining is how long
	// it had left when written, so a restart (whose clock may be wrong) can
	// still hold it.
	Until     time.Time     `json:"until,omitzero"`
	Remaining time.Duration `json:"remaining,omitempty"`
	// Fails are the wall times of the wrong entries counted in the sliding
	// window, oldest first; Since is when the escalation last rose or
	// decayed a step (it decays from there).
	Fails []time.Time `json:"fails,omitempty"`
	Since time.Time   `json:"since,omitzero"`
}

// CodeOwner says what a code hash belongs to.
type CodeOwner struct {
	Kind byte   // OwnerAccessCode or OwnerKey
	ID   string // the access code id or the key id
}

// Code owner kinds.
const (
	OwnerAccessCode byte = 'a'
	OwnerKey        byte = 'k'
)
