package console

import (
	"strings"
	"testing"

	"smartboxd/contract"
)

// TestClearLockout: clear-lockout ends a running keypad lockout, is in the
// help, is audited as a console.command and reported as
// keypad.lockout_cleared.
func TestClearLockout(t *testing.T) {
	r := newRig(t)
	for range 5 {
		r.box.KeypadEntry("0000")
	}
	r.flush()
	if len(r.eventsOf(contract.EventKeypadLockedOut)) != 1 {
		t.Fatalf("no keypad lockout: %v", r.events())
	}
	tm := r.open()
	tm.login()
	if help := strings.Join(tm.mustOK("help"), "\n"); !strings.Contains(help, "clear-lockout") {
		t.Fatalf("help lacks clear-lockout:\n%s", help)
	}
	tm.mustErr("clear-lockout now", contract.CodeConsoleUsage)
	got := tm.mustOK("clear-lockout")
	if len(got) != 1 || !strings.Contains(got[0], "was locked out") || !strings.Contains(got[0], "level 1") {
		t.Fatalf("clear-lockout: %q", got)
	}
	r.flush()
	ev := r.eventsOf(contract.EventKeypadLockoutCleared)
	if len(ev) != 1 || ev[0]["by"] != contract.ClearedByConsole || ev[0]["was_locked_out"] != true {
		t.Fatalf("keypad.lockout_cleared events: %v", ev)
	}
	found := false
	for _, a := range r.audited() {
		found = found || a == "clear-lockout"
	}
	if !found {
		t.Fatalf("clear-lockout not audited: %v", r.audited())
	}
	// The keypad takes entries again: a wrong one is judged, not refused.
	r.box.KeypadEntry("0000")
	r.flush()
	rej := r.eventsOf(contract.EventCodeRejected)
	if last := rej[len(rej)-1]["reason"]; last != contract.CodeCodeUnknown {
		t.Fatalf("after clear-lockout an entry was rejected with %v", last)
	}
}
