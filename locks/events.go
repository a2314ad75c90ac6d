package locks

// eventKind says which Sink method an event is for.
type eventKind uint8

const (
	evLock eventKind = iota
	evDoor
	evOpenFailed
	evHeld
	evForced
)

// event is one report for the Sink.
type event struct {
	kind eventKind
	bin  int
	on   bool // evLock: energised; evDoor: open
}

// emitLocked queues e for the Sink. b.mu is held.
func (b *Bank) emitLocked(e event) {
	b.events = append(b.events, e)
	b.queued++
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// dispatch hands the queued events to the Sink, in order, until quit is
// closed; then it hands over what is left and closes done. A panic in the
// Sink halts the bank before it goes on.
func (b *Bank) dispatch(quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer func() {
		if r := recover(); r != nil {
			_ = b.Halt()
			panic(r)
		}
	}()
	for {
		b.deliver()
		select {
		case <-b.notify:
		case <-quit:
			b.deliver()
			return
		}
	}
}

// deliver hands every queued event to the Sink.
func (b *Bank) deliver() {
	for {
		b.mu.Lock()
		evs := b.events
		b.events = nil
		b.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, e := range evs {
			switch e.kind {
			case evLock:
				b.sink.LockChanged(e.bin, e.on)
			case evDoor:
				b.sink.DoorChanged(e.bin, e.on)
			case evOpenFailed:
				b.sink.OpenFailed(e.bin)
			case evHeld:
				b.sink.DoorHeldOpen(e.bin)
			case evForced:
				b.sink.DoorForced(e.bin)
			}
		}
		b.mu.Lock()
		b.done += uint64(len(evs))
		b.eventsCV.Broadcast()
		b.mu.Unlock()
	}
}
