package trust

import (
	"errors"
	"testing"
)

func TestAllows(t *testing.T) {
	// Every command type of the contract, and what each role may send:
	// a = admin, p = provision, o = open, k = ack, f = firmware.
	types := []struct {
		typ, roles string
	}{
		{"key.upsert", "ap"},
		{"key.unlink", "ap"},
		{"key.retire", "ap"},
		{"access_code.upsert", "ap"},
		{"access_code.delete", "ap"},
		{"bin.open", "ao"},
		{"settings.set", "ap"},
		{"sync.snapshot", "ap"},
		{"state.get", "apof"},
		{"offline.set_key", "ap"},
		{"offline.revoke", "ap"},
		{"security.clear_lockout", "ao"},
		{"firmware.update", "af"},
		{"no.such.type", "a"},
		{"", "a"},
		{"key", "a"},
		{"bin.open.", "a"},
		{"Bin.open", "a"},
		{"state.get ", "a"},
	}
	letter := map[Role]byte{RoleAdmin: 'a', RoleProvision: 'p', RoleOpen: 'o', RoleAck: 'k', RoleFirmware: 'f'}
	for _, tt := range types {
		for _, r := range Roles {
			want := false
			for i := 0; i < len(tt.roles); i++ {
				want = want || tt.roles[i] == letter[r]
			}
			t.Run(string(r)+"/"+tt.typ, func(t *testing.T) {
				if got := Allows([]Role{r}, tt.typ); got != want {
					t.Errorf("Allows([%s], %q) = %v, want %v", r, tt.typ, got, want)
				}
			})
		}
		t.Run("none/"+tt.typ, func(t *testing.T) {
			if Allows(nil, tt.typ) {
				t.Errorf("Allows(nil, %q) = true", tt.typ)
			}
		})
	}
}

func TestAllowsUnion(t *testing.T) {
	roles := []Role{RoleOpen, RoleFirmware}
	for typ, want := range map[string]bool{
		"bin.open": true, "firmware.update": true, "state.get": true,
		"key.upsert": false, "sync.snapshot": false,
	} {
		if got := Allows(roles, typ); got != want {
			t.Errorf("Allows(open+firmware, %q) = %v, want %v", typ, got, want)
		}
	}
	if Allows([]Role{"Admin", "root"}, "bin.open") {
		t.Error("a role that is not one allowed a command")
	}
}

func TestAllowsAck(t *testing.T) {
	for _, tt := range []struct {
		roles []Role
		want  bool
	}{
		{[]Role{RoleAdmin}, true},
		{[]Role{RoleAck}, true},
		{[]Role{RoleProvision}, false},
		{[]Role{RoleOpen}, false},
		{[]Role{RoleFirmware}, false},
		{[]Role{RoleOpen, RoleAck}, true},
		{nil, false},
		{[]Role{"ACK"}, false},
	} {
		if got := AllowsAck(tt.roles); got != tt.want {
			t.Errorf("AllowsAck(%v) = %v, want %v", tt.roles, got, tt.want)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"admin", "provision", "open", "ack", "firmware"} {
		r, err := ParseRole(s)
		if err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", " open", "acks"} {
		if r, err := ParseRole(s); !errors.Is(err, ErrRole) {
			t.Errorf("ParseRole(%q) = %q, %v; want ErrRole", s, r, err)
		}
	}
}
