//go:build faults

package main

import (
	"fmt"
	"os"
	"strings"

	"smartboxd/device"
	"smartboxd/store"
)

// A daemon built with -tags faults, for tests only:
//
//	SMARTBOXD_FAULT_PANIC_FILE=F  the decision loop's store panics on every
//	                              write while F exists
//	SMARTBOXD_FAULT_PINS=F        after a panic halted the locks, F lists the
//	                              bins energised before and each lock pin's
//	                              level after
func init() {
	if trigger := os.Getenv("SMARTBOXD_FAULT_PANIC_FILE"); trigger != "" {
		faults.store = func(db *store.DB) device.Store { return &panicStore{DB: db, trigger: trigger} }
	}
	if out := os.Getenv("SMARTBOXD_FAULT_PINS"); out != "" {
		faults.halted = func(hw *hardware, energised []int) {
			var b strings.Builder
			fmt.Fprintf(&b, "energised %v\n", energised)
			if hw.sim != nil {
				for _, bin := range hw.bins {
					fmt.Fprintf(&b, "lock %d %s\n", bin.ID, hw.sim.LockPin(bin.ID).Read())
				}
			}
			os.WriteFile(out, []byte(b.String()), 0o600)
		}
	}
}

type panicStore struct {
	*store.DB
	trigger string
}

func (s *panicStore) Update(fn func(tx *store.Tx) error) error {
	if _, err := os.Stat(s.trigger); err == nil {
		panic("injected fault: the store's write panics")
	}
	return s.DB.Update(fn)
}
