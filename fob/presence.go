package fob

import (
	"log/slog"
	"sync"

	"github.com/jonboulle/clockwork"
)

// reporter tracks the presence of fobs in one bin from a reader's good
// frames and reports to the Sink. It keeps the reader's Stats too.
//
// emitMu is held across every Sink call so that the calls of one reader are
// made one at a time and in order; mu guards only stats and is never held
// across a Sink call, so Stats never waits for a Sink.
type reporter struct {
	sink   Sink
	timing timing
	name   string
	bin    int

	emitMu   sync.Mutex
	active   bool            // the reader works and presence is tracked
	faulted  bool            // a fault was reported and no recovery yet
	reported bool            // the first report since begin was made
	present  string          // the fob reported present, or ""
	gen      uint64          // bumped on every arm and disarm
	timer    clockwork.Timer // the absent timer, or nil

	mu    sync.Mutex
	stats Stats
}

func newReporter(name, typ string, bin int, sink Sink, t timing) *reporter {
	return &reporter{
		sink:   sink,
		timing: t,
		name:   name,
		bin:    bin,
		stats:  Stats{Name: name, Type: typ, Bin: bin},
	}
}

// begin starts tracking afresh: the next report is the first one.
func (r *reporter) begin() {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.beginLocked()
}

func (r *reporter) beginLocked() {
	r.active = true
	r.reported = false
	r.setPresent("")
	r.arm()
}

// seen records a good frame of serial.
func (r *reporter) seen(serial string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if !r.active {
		return
	}
	r.arm()
	if r.reported && r.present == serial {
		return
	}
	r.reported = true
	r.setPresent(serial)
	r.timing.log.Debug("fob present", slog.String("reader", r.name), slog.Int("bin", r.bin), slog.String("fob", serial))
	r.sink.FobPresent(r.bin, serial)
}

// expire runs when the absent timer of generation gen fires.
func (r *reporter) expire(gen uint64) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if !r.active || gen != r.gen {
		return // a timer that was reset or stopped since
	}
	r.timer = nil
	if r.reported && r.present == "" {
		return
	}
	r.reported = true
	r.setPresent("")
	r.timing.log.Debug("fob absent", slog.String("reader", r.name), slog.Int("bin", r.bin))
	r.sink.FobAbsent(r.bin)
}

// fault reports a failure once per outage and stops tracking presence.
func (r *reporter) fault(err error) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.active = false
	r.disarm()
	r.setPresent("")
	r.mu.Lock()
	r.stats.Faulted = true
	r.stats.LastError = err.Error()
	r.mu.Unlock()
	if r.faulted {
		return
	}
	r.faulted = true
	r.timing.log.Warn("fob reader fault", slog.String("reader", r.name), slog.Any("err", err))
	r.sink.ReaderFault(r.bin, err)
}

// isFaulted reports whether a fault awaits its recovery.
func (r *reporter) isFaulted() bool {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	return r.faulted
}

// recovered reports the end of a fault and starts tracking afresh.
func (r *reporter) recovered() {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.faulted {
		r.faulted = false
		r.mu.Lock()
		r.stats.Faulted = false
		r.stats.Reopens++
		r.mu.Unlock()
		r.timing.log.Info("fob reader ok", slog.String("reader", r.name))
		r.sink.ReaderOK(r.bin)
	}
	r.beginLocked()
}

// halt stops tracking without a report, when the reader stops.
func (r *reporter) halt() {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.active = false
	r.disarm()
	r.setPresent("")
}

// arm (re)starts the absent timer. emitMu must be held.
func (r *reporter) arm() {
	r.disarm()
	gen := r.gen
	r.timer = r.timing.clock.AfterFunc(r.timing.absentAfter, func() { r.expire(gen) })
}

// disarm stops the absent timer. emitMu must be held.
func (r *reporter) disarm() {
	r.gen++
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *reporter) setPresent(serial string) {
	r.present = serial
	r.mu.Lock()
	r.stats.Present = serial
	r.mu.Unlock()
}

// count updates the frame counters.
func (r *reporter) count(frames, bad, noise uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Frames, r.stats.BadChecksum, r.stats.Noise = frames, bad, noise
}

func (r *reporter) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}
