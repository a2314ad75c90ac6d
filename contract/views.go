package contract

import "time"

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
	AccessCodeID string       `json:"access_code_id"`
	Name         string       `json:"name"`
	Type         string       `json:"type"`
	Status       string       `json:"status"`
	StartsAt     *time.Time   `json:"starts_at"`
	EndsAt       *time.Time   `json:"ends_at"`
	CreatedAt    time.Time    `json:"created_at"`
	KeyID        string       `json:"key_id"`
	Action       string       `json:"action"`
	Errors       []NoticeView `json:"errors"`
	Warnings     []NoticeView `json:"warnings"`
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
