package sysclock

import "golang.org/x/sys/unix"

// adjtimex reads the kernel's clock state; tests replace it.
var adjtimex = unix.Adjtimex

func synced() bool {
	var tx unix.Timex // Modes 0: read only
	state, err := adjtimex(&tx)
	if err != nil {
		return false // unknown is not synchronised: time-bound codes fail closed
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
