package sysclock

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSynced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		state  int
		status int32
		err    error
		want   bool
	}{
		{"synchronised", unix.TIME_OK, 0, nil, true},
		{"leap second pending", unix.TIME_INS, 0, nil, true},
		{"STA_UNSYNC", unix.TIME_OK, unix.STA_UNSYNC, nil, false},
		{"TIME_ERROR", unix.TIME_ERROR, 0, nil, false},
		{"EPERM (ProtectClock)", -1, 0, unix.EPERM, false},
		{"ENOSYS", -1, 0, unix.ENOSYS, false},
		{"error with a clean status", unix.TIME_OK, 0, unix.EINVAL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := adjtimex
			t.Cleanup(func() { adjtimex = old })
			adjtimex = func(tx *unix.Timex) (int, error) {
				if tx.Modes != 0 {
					t.Fatalf("adjtimex called with modes %#x: it must only read", tx.Modes)
				}
				tx.Status = tc.status
				return tc.state, tc.err
			}
			if got := Synced(); got != tc.want {
				t.Fatalf("Synced() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSyncedRealKernel asks the real kernel: it must answer without
// panicking; what it says depends on the machine.
func TestSyncedRealKernel(t *testing.T) {
	t.Logf("this machine's clock synchronised: %v", Synced())
}
