// Package locks drives each bin's lock coil and watches its door sensor;
// safety properties first.
//
// A Bank owns the lock outputs and the door inputs of all bins. Unlock
// queues a pulse for a bin and returns at once; Run is the one goroutine
// that energises and de-energises coils and samples the door sensors. What
// happens is reported to a Sink: lock changes, debounced door changes, and
// the door conditions the box cares about (a door that did not open, was
// held open, or was forced).
//
// # Safety properties
//
//   - New drives every lock output to its inactive level before it does
//     anything else, so a bank that fails to start leaves no coil energised.
//   - A pulse lasts Pulse and no longer. When the loop wakes late, coils
//     whose pulse is over are de-energised before anything else is done.
//   - At most MaxEnergised coils are energised at once (the power budget of
//     the supply), and a coil rests at least Rest between two pulses.
//   - Pulses start in the order they were asked for (first come, first
//     served); a pulse that must wait for the budget or its coil's rest
//     holds back the pulses behind it.
//   - The Sink is called from a goroutine of its own, so a slow Sink delays
//     reports but never the end of a pulse.
//   - When Run returns, and when Halt is called, every lock output is driven
//     inactive; a halted bank never energises a coil again.
//
// # Door logic
//
// Bins with a door sensor are sampled every Poll and debounced: a level
// counts once it has been steady for DoorDebounce. Doors start unknown; the
// first steady reading is reported through Sink.DoorChanged.
//
// After a pulse the door must be seen open within Pulse+OpenGrace of the
// pulse's start (the grace covers the debounce delay too). If it is not,
// the bin is pulsed once more, queued like any other pulse; if the door
// still does not open, Sink.OpenFailed is called. A door that is already
// open when the check is made counts as opened.
//
// A door that opens while no pulse of its bin started in the last
// Pulse+OpenGrace, and no opening attempt is under way, is reported through
// Sink.DoorForced. The first reading after start is never called forced: a
// door found open then may have been open for long. A door open for
// HeldOpen is reported once through Sink.DoorHeldOpen, counted from its
// opening or from the first reading.
//
// # Caveats
//
// Unlock coalesces a request with a pulse of the same bin that is still
// waiting in the queue: both are served by that one pulse. A request made
// while its bin's coil is pulsing or resting is queued as a new pulse and
// waits for the rest to end.
//
// Run hands the Sink its last reports (the coils it turned off) before it
// returns, so a Sink that never returns keeps Run from returning; the
// outputs are inactive by then all the same.
//
// Run can be called once. Unlock before Run queues pulses for when it
// starts; after Run has returned, or after Halt, Unlock returns ErrStopped.
//
// A lock output whose write fails when the pulse ends is written again
// every Poll until the write succeeds; it counts against the power budget
// until then.
//
// Door sensors are set up as inputs without changing their pull resistor;
// a reed switch needs its pull-up or pull-down fitted or set elsewhere.
package locks
