package sysclock

import "golang.org/x/sys/unix"

func synced() bool {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return true
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
