package locks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// Run schedules the pulses and watches the doors until ctx is canceled or
// the bank is halted. It returns nil on ctx cancel and ErrStopped after
// Halt; either way every lock output is inactive when it returns, also
// when it panics. Run can be called once.
func (b *Bank) Run(ctx context.Context) (err error) {
	b.mu.Lock()
	switch {
	case b.stopped:
		b.mu.Unlock()
		return fmt.Errorf("locks: run: %w", ErrStopped)
	case b.running:
		b.mu.Unlock()
		return errors.New("locks: run: already running")
	}
	b.running = true
	b.mu.Unlock()

	dispatched := make(chan struct{})
	quit := make(chan struct{})
	go b.dispatch(quit, dispatched)
	defer func() {
		// Runs on panic too: the outputs go inactive before anything else.
		b.mu.Lock()
		b.stopped = true
		offErr := b.allOffLocked()
		b.mu.Unlock()
		close(quit)
		<-dispatched
		if err == nil {
			err = offErr
		}
	}()

	var tickC <-chan time.Time
	if b.haveDoors {
		tick := b.clock.NewTicker(b.poll)
		defer tick.Stop()
		tickC = tick.Chan()
	}
	timer := b.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	b.step(b.haveDoors)
	b.arm(timer)
	for {
		var poll bool
		var reply chan struct{}
		select {
		case <-ctx.Done():
			return nil
		case <-b.haltC:
			return fmt.Errorf("locks: run: %w", ErrStopped)
		case <-b.wake:
		case <-timer.Chan():
		case <-tickC:
			poll = true
		case reply = <-b.syncC:
			// Whatever was sent before the sync request already waits in
			// its channel: take it now, so the reply means "all handled".
			woke := false
		drain:
			for {
				select {
				case <-b.wake:
				case <-timer.Chan():
				case <-tickC:
					poll = true
				default:
					break drain
				}
				woke = true
			}
			if !woke {
				close(reply)
				continue
			}
		}
		b.step(poll)
		b.arm(timer)
		if reply != nil {
			close(reply)
		}
	}
}

// arm sets timer to the loop's next deadline.
func (b *Bank) arm(timer clockwork.Timer) {
	b.mu.Lock()
	next := b.nextLocked()
	b.wakeAt = next
	b.mu.Unlock()
	timer.Stop()
	if !next.IsZero() {
		timer.Reset(max(b.clock.Until(next), 0))
	}
}

// nextLocked returns when the scheduler has work next: the earliest end
// of a pulse, or the end of the rest the queue's head waits for; zero when
// there is none. Door deadlines are checked on the poll ticks.
func (b *Bank) nextLocked() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, s := range b.bins {
		if s.energised {
			earlier(s.pulseEnd)
		}
	}
	if len(b.queue) > 0 {
		if h := b.queue[0]; !h.energised && b.countOnLocked() < b.maxOn {
			earlier(h.restUntil)
		}
	}
	return next
}

// step does all the work that is due now. Coils whose pulse is over are
// de-energised first, then the doors are sampled (when poll is set) and
// their deadlines checked, then queued pulses are started.
func (b *Bank) step(poll bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.halted {
		return
	}
	now := b.clock.Now()
	for _, s := range b.bins {
		if s.energised && !now.Before(s.pulseEnd) {
			b.endPulseLocked(s, now)
		}
	}
	for _, s := range b.bins {
		if s.door == nil {
			continue
		}
		if poll {
			b.sampleLocked(s, now)
		}
		b.checkDoorLocked(s, now)
	}
	b.startQueuedLocked(now)
}

func (b *Bank) countOnLocked() int {
	n := 0
	for _, s := range b.bins {
		if s.energised {
			n++
		}
	}
	return n
}

// endPulseLocked de-energises s. A failed write is tried again a Poll
// later; the coil keeps its place in the power budget until then.
func (b *Bank) endPulseLocked(s *slot, now time.Time) {
	if err := s.lock.Out(!b.lockOn); err != nil {
		b.log.Error("locks: lock inactive failed; trying again", "bin", s.id, "err", err)
		s.pulseEnd = now.Add(b.poll)
		return
	}
	s.energised = false
	s.restUntil = now.Add(b.rest)
	b.log.Debug("locks: pulse end", "bin", s.id)
	b.emitLocked(event{kind: evLock, bin: s.id, on: false})
}

// startQueuedLocked starts pulses from the head of the queue while the
// power budget allows; the head waiting for its coil's rest holds back
// the rest of the queue.
func (b *Bank) startQueuedLocked(now time.Time) {
	on := b.countOnLocked()
	for len(b.queue) > 0 && on < b.maxOn {
		s := b.queue[0]
		if s.energised || now.Before(s.restUntil) {
			return
		}
		b.queue[0] = nil
		b.queue = b.queue[1:]
		s.inQueue = false
		retry := s.retry
		s.retry = false
		// The pulse is timed from before the write, so it is never longer
		// than Pulse on account of the write.
		if err := s.lock.Out(b.lockOn); err != nil {
			b.log.Error("locks: lock active failed", "bin", s.id, "err", err)
			if err := s.lock.Out(!b.lockOn); err != nil {
				b.log.Error("locks: lock inactive failed", "bin", s.id, "err", err)
			}
			s.restUntil = now.Add(b.rest)
			if s.door != nil {
				// The door check runs at once: it retries or gives up.
				s.isRetry = retry
				s.attempt = attemptWaiting
				s.awaitUntil = now
			}
			continue
		}
		on++
		s.energised = true
		s.pulseEnd = now.Add(b.pulse)
		s.pulsed = true
		s.lastPulse = now
		b.log.Debug("locks: pulse start", "bin", s.id, "retry", retry)
		b.emitLocked(event{kind: evLock, bin: s.id, on: true})
		if s.door != nil {
			s.isRetry = retry
			if s.state == DoorOpen {
				s.attempt = attemptNone
			} else {
				s.attempt = attemptWaiting
				s.awaitUntil = now.Add(b.pulse + b.grace)
			}
		}
	}
}

// sampleLocked reads s's door sensor and moves its debounced state.
func (b *Bank) sampleLocked(s *slot, now time.Time) {
	lvl := s.door.Read()
	if !s.sampled || lvl != s.raw {
		s.sampled = true
		s.raw = lvl
		s.rawSince = now
	}
	state := DoorClosed
	if lvl == b.doorOpen {
		state = DoorOpen
	}
	if state == s.state || now.Sub(s.rawSince) < b.debounce {
		return
	}
	first := s.state == DoorUnknown
	s.state = state
	b.emitLocked(event{kind: evDoor, bin: s.id, on: state == DoorOpen})
	if state != DoorOpen {
		return
	}
	s.openedAt = now
	s.heldSent = false
	expected := s.attempt != attemptNone ||
		s.energised ||
		(s.pulsed && now.Sub(s.lastPulse) <= b.pulse+b.grace)
	if s.attempt == attemptRetry && s.inQueue {
		b.dequeueLocked(s)
	}
	s.attempt = attemptNone
	if !expected && !first {
		b.log.Warn("locks: door forced", "bin", s.id)
		b.emitLocked(event{kind: evForced, bin: s.id})
	}
}

// checkDoorLocked handles s's door deadlines: the open check after a pulse
// and the held-open report.
func (b *Bank) checkDoorLocked(s *slot, now time.Time) {
	if s.state == DoorOpen && !s.heldSent && now.Sub(s.openedAt) >= b.heldOpen {
		s.heldSent = true
		b.log.Warn("locks: door held open", "bin", s.id)
		b.emitLocked(event{kind: evHeld, bin: s.id})
	}
	if s.attempt != attemptWaiting || now.Before(s.awaitUntil) {
		return
	}
	switch {
	case s.state == DoorOpen:
		s.attempt = attemptNone
	case s.isRetry:
		s.attempt = attemptNone
		b.log.Warn("locks: door did not open", "bin", s.id)
		b.emitLocked(event{kind: evOpenFailed, bin: s.id})
	default:
		b.log.Info("locks: door did not open; pulsing again", "bin", s.id)
		s.attempt = attemptRetry
		if !s.inQueue {
			b.enqueueLocked(s, true)
		}
	}
}

func (b *Bank) dequeueLocked(s *slot) {
	for i, q := range b.queue {
		if q == s {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			break
		}
	}
	s.inQueue = false
	s.retry = false
}

// sync waits until the loop has handled everything sent to it before, and
// the Sink has been handed every report made so far. Tests use it to step
// a fake clock in lock step with the loop.
func (b *Bank) sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case b.syncC <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for target := b.queued; b.done < target; {
		b.eventsCV.Wait()
	}
	return nil
}
