package firmware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultTrial is how long a trial has to prove itself (firmware.trial_s).
const DefaultTrial = 120 * time.Second

// ErrTrialDeadline is returned by WaitHealthy when the deadline passed
// first.
var ErrTrialDeadline = errors.New("firmware: trial deadline missed")

// Health is what a trial must show: online, and one events/ack taken from
// the cloud since it started.
type Health struct {
	Online bool
	Acked  bool
}

// WaitHealthy polls health every poll until it is online and acked, and
// returns nil; or returns ErrTrialDeadline, saying what was missing, once
// deadline has passed; or ctx's error.
func WaitHealthy(ctx context.Context, clock clockwork.Clock, deadline, poll time.Duration, health func() Health) error {
	end := clock.After(deadline)
	tick := clock.NewTicker(poll)
	defer tick.Stop()
	var h Health
	for {
		if h = health(); h.Online && h.Acked {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			if h = health(); h.Online && h.Acked {
				return nil
			}
			return fmt.Errorf("%w: not online and acked within %s (online %t, acked %t)", ErrTrialDeadline, deadline, h.Online, h.Acked)
		case <-tick.Chan():
		}
	}
}
