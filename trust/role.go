package trust

import (
	"errors"
	"fmt"
	"strings"
)

// Role is what a trusted key may do (contract §7).
type Role string

// The roles of trust.keys[].roles.
const (
	// RoleAdmin may send every command and acks.
	RoleAdmin Role = "admin"
	// RoleProvision may send key.*, access_code.*, settings.set,
	// sync.snapshot, offline.* and state.get.
	RoleProvision Role = "provision"
	// RoleOpen may send bin.open, security.clear_lockout and state.get.
	RoleOpen Role = "open"
	// RoleAck may send acks only.
	RoleAck Role = "ack"
	// RoleFirmware may send firmware.update and state.get.
	RoleFirmware Role = "firmware"
)

// Roles lists every role, in the contract's order.
var Roles = []Role{RoleAdmin, RoleProvision, RoleOpen, RoleAck, RoleFirmware}

// ErrRole is returned by ParseRole for a name that is not a role.
var ErrRole = errors.New("trust: unknown role")

// ParseRole returns the role named s, exactly as the contract spells it.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrRole, s, strings.Join(names, ", "))
}

// Allows reports whether a key with roles may send a command of cmdType.
// An unknown type is allowed to admin only (the box then answers
// cmd.unknown); no role other than admin reaches a type it does not name.
func Allows(roles []Role, cmdType string) bool {
	for _, r := range roles {
		if r.allows(cmdType) {
			return true
		}
	}
	return false
}

func (r Role) allows(t string) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleProvision:
		return strings.HasPrefix(t, "key.") || strings.HasPrefix(t, "access_code.") ||
			strings.HasPrefix(t, "offline.") ||
			t == "settings.set" || t == "sync.snapshot" || t == "state.get"
	case RoleOpen:
		return t == "bin.open" || t == "security.clear_lockout" || t == "state.get"
	case RoleFirmware:
		return t == "firmware.update" || t == "state.get"
	}
	return false
}

// AllowsAck reports whether a key with roles may send an events/ack: admin
// or ack.
func AllowsAck(roles []Role) bool {
	for _, r := range roles {
		if r == RoleAdmin || r == RoleAck {
			return true
		}
	}
	return false
}
