package contract

import (
	"encoding/json"
	"time"
)

// Access code types, actions and statuses (the access-code model).
const (
	TypeOngoing   = "ongoing"
	TypeTimeBound = "time_bound"

	ActionPickup  = "pickup"
	ActionDropoff = "dropoff"

	StatusUnset    = "unset"
	StatusSetting  = "setting"
	StatusSet      = "set"
	StatusRemoving = "removing"
	StatusRemoved  = "removed"
)

// KeyView is a key as replies and the console show it.
type KeyView struct {
	KeyID        string  `json:"key_id"`
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	SerialNumber *string `json:"serial_number"`
	Notes        string  `json:"notes"`
	PickupNote   string  `json:"pickup_note"`
	Virtual      bool    `json:"virtual"`
	AnyLocation  bool    `json:"any_location"`
	HasKeyCode   bool    `json:"has_key_code"`
	Bin          *int    `json:"bin"`
	// KeyCode is a key code the box made, sent once in the reply that made
	// it and never kept.
	KeyCode string `json:"key_code,omitempty"`
}

// Redacted is the view without a generated key code.
func (v KeyView) Redacted() any { v.KeyCode = ""; return v }

var _ Redactor = KeyView{}

// NoticeView is an access code's error or warning as published.
type NoticeView struct {
	ErrorCode   string    `json:"error_code,omitempty"`
	WarningCode string    `json:"warning_code,omitempty"`
	Message     string    `json:"message"`
	CreatedAt   time.Time `json:"created_at"`
}

// AccessCodeView is the access code object of the access-code model, as
// replies and access_code.status events carry it: never the code.
type AccessCodeView struct {
	AccessCodeID string     `json:"access_code_id"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	Status       string     `json:"status"`
	StartsAt     *time.Time `json:"starts_at"`
	EndsAt       *time.Time `json:"ends_at"`
	CreatedAt    time.Time  `json:"created_at"`
	KeyID        string     `json:"key_id"`
	Action       string     `json:"action"`
	// MaxUses is how many entries may open a bin for the code (nil: no
	// limit); Uses is how many have.
	MaxUses *int `json:"max_uses"`
	Uses    int  `json:"uses"`
	// Schedule is the code's weekly schedule in its canonical form, absent
	// when it has none.
	Schedule json.RawMessage `json:"schedule,omitempty"`
	Errors   []NoticeView    `json:"errors"`
	Warnings []NoticeView    `json:"warnings"`
}

// OfflineKeyResult is the result of offline.set_key: that a key is set and
// its fingerprint (the first 8 hex digits of its SHA-256), never the key.
type OfflineKeyResult struct {
	KeySet      bool   `json:"key_set"`
	Fingerprint string `json:"fingerprint"`
}

// OfflineRevokeResult is the result of offline.revoke: the window of the
// revoked code (never the code). Until is when the box forgets it.
type OfflineRevokeResult struct {
	Revoked bool      `json:"revoked"`
	From    time.Time `json:"from"`
	Until   time.Time `json:"until"`
}

// SnapshotResult is the result of sync.snapshot (and the data of its
// sync.snapshot_applied event, without GeneratedKeyCodes).
type SnapshotResult struct {
	Version       string   `json:"version"`
	Keys          int      `json:"keys"`
	AccessCodes   int      `json:"access_codes"`
	Expired       int      `json:"expired"`
	KeptCheckedIn []string `json:"kept_checked_in"`
	// GeneratedKeyCodes maps key ids to the key codes the box made for
	// them, sent once in the reply and never kept.
	GeneratedKeyCodes map[string]string `json:"generated_key_codes,omitempty"`
}

// Redacted is the result without the generated key codes.
func (r SnapshotResult) Redacted() any { r.GeneratedKeyCodes = nil; return r }

var _ Redactor = SnapshotResult{}
