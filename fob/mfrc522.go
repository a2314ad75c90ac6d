package fob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// TypeMFRC522 is the type of an MFRC522 reader, as in the configuration
// and in Stats.
const TypeMFRC522 = "mfrc522"

// DefaultPollEvery is how often an MFRC522 reader looks for a card: often
// enough that a card in the field is read several times per AbsentAfter.
const DefaultPollEvery = 100 * time.Millisecond

// RC522 is the register access to an MFRC522 that the reader uses.
// periph's *commands.LowLevel (periph.io/x/devices/v3/mfrc522/commands)
// is one: NewLowLevelSPI(port, reset, irq).
type RC522 interface {
	// Init resets the chip, sets its timer and turns the antenna on.
	Init() error
	DevWrite(address int, data byte) error
	DevRead(address int) (byte, error)
	// CRC computes an ISO 14443 CRC_A on the chip.
	CRC(data []byte) ([]byte, error)
}

// MFRC522 registers and commands (datasheet section 9).
const (
	rcCommand    = 0x01
	rcCommIrq    = 0x04
	rcError      = 0x06
	rcFIFOData   = 0x09
	rcFIFOLevel  = 0x0A
	rcControl    = 0x0C
	rcBitFraming = 0x0D
	rcVersion    = 0x37

	cmdIdle       = 0x00
	cmdTransceive = 0x0C

	piccWUPA = 0x52
	piccHLTA = 0x50
)

// versions are the VersionReg values of MFRC522 chips and their clones: a
// reader that answers anything else (0x00 or 0xFF from a floating bus) is
// not there.
var versions = []byte{0x88, 0x90, 0x91, 0x92, 0xB2}

// Errors of one transceive that are not faults of the reader.
var (
	errNoCard = errors.New("fob: no card")
	errRF     = errors.New("fob: card answer garbled")
)

// MFRC522Config configures an MFRC522Reader.
type MFRC522Config struct {
	// Name is the SPI device, /dev/spidev0.0; it names the reader.
	Name string
	Bin  int
	// Chip is the reader's register access.
	Chip RC522
	Sink Sink
	// PollEvery is the time between two looks for a card;
	// DefaultPollEvery when zero.
	PollEvery   time.Duration
	AbsentAfter time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to bring a
	// faulted reader back (a reset and a version check).
	MinBackoff, MaxBackoff time.Duration
	Clock                  clockwork.Clock
	Logger                 *slog.Logger
}

// MFRC522Reader polls an MFRC522 13.56 MHz reader for a card and reports
// the card's UID as the fob serial in its bin, with the same presence
// tracking as the other readers.
//
// Each poll reads the chip's version (a reader pulled off its SPI bus reads
// 0x00 or 0xFF, with no SPI error), wakes the card in the field with WUPA,
// runs the anticollision cascade (4-, 7- and 10-byte UIDs), and puts the
// card to sleep with HLTA so that the next poll wakes it again. A garbled
// answer or a bad UID is counted and dropped; an SPI error or a wrong
// version is a fault, reported once, and the reader is reset with backoff
// until it answers again.
type MFRC522Reader struct {
	name   string
	chip   RC522
	every  time.Duration
	timing timing
	rep    *reporter

	running atomic.Bool
	mu      sync.Mutex
	frames  uint64
	bad     uint64
	noise   uint64
}

// NewMFRC522Reader checks cfg and initialises the chip once, so that a
// reader that does not answer fails start-up with an error naming it.
func NewMFRC522Reader(cfg MFRC522Config) (*MFRC522Reader, error) {
	switch {
	case cfg.Name == "":
		return nil, fmt.Errorf("%w: mfrc522 reader without a name", ErrConfig)
	case cfg.Chip == nil:
		return nil, fmt.Errorf("%w: mfrc522 reader %s without a chip", ErrConfig, cfg.Name)
	case cfg.Sink == nil:
		return nil, fmt.Errorf("%w: mfrc522 reader %s without a sink", ErrConfig, cfg.Name)
	}
	t := newTiming(cfg.AbsentAfter, cfg.MinBackoff, cfg.MaxBackoff, cfg.Clock, cfg.Logger)
	r := &MFRC522Reader{
		name: cfg.Name, chip: cfg.Chip, every: cfg.PollEvery, timing: t,
		rep: newReporter(cfg.Name, TypeMFRC522, cfg.Bin, cfg.Sink, t),
	}
	if r.every <= 0 {
		r.every = DefaultPollEvery
	}
	if err := r.init(); err != nil {
		return nil, err
	}
	return r, nil
}

// Stats returns a snapshot of the reader's counters and state.
func (r *MFRC522Reader) Stats() Stats { return r.rep.snapshot() }

// init resets the chip and checks that it is an MFRC522.
func (r *MFRC522Reader) init() error {
	if err := r.chip.Init(); err != nil {
		return fmt.Errorf("fob: mfrc522 %s: init: %w", r.name, err)
	}
	return r.checkVersion()
}

func (r *MFRC522Reader) checkVersion() error {
	v, err := r.chip.DevRead(rcVersion)
	if err != nil {
		return fmt.Errorf("fob: mfrc522 %s: %w", r.name, err)
	}
	if !slices.Contains(versions, v) {
		return fmt.Errorf("fob: mfrc522 %s: no reader answers (version %#02x)", r.name, v)
	}
	return nil
}

// Run polls until ctx is done and returns nil; ErrRunning if it runs
// already.
func (r *MFRC522Reader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	defer r.rep.halt()
	r.rep.begin()
	for {
		if err := r.poll(); err != nil {
			if !r.recover(ctx, err) {
				return nil
			}
		}
		if !r.sleep(ctx, r.every) {
			return nil
		}
	}
}

// poll looks for a card once. It returns only faults of the reader.
func (r *MFRC522Reader) poll() error {
	if err := r.checkVersion(); err != nil {
		return err
	}
	serial, err := r.readCard()
	var spiErr *chipError
	switch {
	case err == nil:
		r.count(func() { r.frames++ })
		r.rep.seen(serial)
	case errors.As(err, &spiErr):
		return spiErr.err
	case errors.Is(err, ErrBadUID):
		r.count(func() { r.bad++ })
	case errors.Is(err, errRF):
		r.count(func() { r.noise++ })
	}
	return nil // errNoCard: the timer ran out, no card
}

// recover reports fault and resets the chip with backoff until it answers,
// which it reports; false when Run must end first.
func (r *MFRC522Reader) recover(ctx context.Context, fault error) bool {
	r.rep.fault(fault)
	backoff := r.timing.minBackoff
	for {
		if !r.sleep(ctx, backoff) {
			return false
		}
		backoff = r.timing.nextBackoff(backoff)
		if err := r.init(); err != nil {
			r.rep.fault(err)
			continue
		}
		r.rep.recovered()
		return true
	}
}

// chipError marks an SPI failure inside a card exchange.
type chipError struct{ err error }

func (e *chipError) Error() string { return e.err.Error() }

func (r *MFRC522Reader) write(addr int, v byte) error {
	if err := r.chip.DevWrite(addr, v); err != nil {
		return &chipError{fmt.Errorf("fob: mfrc522 %s: write %#02x: %w", r.name, addr, err)}
	}
	return nil
}

func (r *MFRC522Reader) read(addr int) (byte, error) {
	v, err := r.chip.DevRead(addr)
	if err != nil {
		return 0, &chipError{fmt.Errorf("fob: mfrc522 %s: read %#02x: %w", r.name, addr, err)}
	}
	return v, nil
}

// transceiveLoops bounds the wait for the chip's answer; its own timer
// (15 ms, set by Init) ends a wait for a card that does not answer long
// before.
const transceiveLoops = 2000

// transceive sends data (the last byte's bits, 0 for all 8) and returns
// the card's answer: errNoCard when none came before the chip's timer,
// errRF for a garbled one, a *chipError for an SPI failure.
func (r *MFRC522Reader) transceive(data []byte, bits byte) ([]byte, error) {
	steps := [][2]int{{rcCommand, cmdIdle}, {rcCommIrq, 0x7F}, {rcFIFOLevel, 0x80}}
	for _, s := range steps {
		if err := r.write(s[0], byte(s[1])); err != nil {
			return nil, err
		}
	}
	for _, b := range data {
		if err := r.write(rcFIFOData, b); err != nil {
			return nil, err
		}
	}
	for _, s := range [][2]int{{rcBitFraming, int(bits)}, {rcCommand, cmdTransceive}, {rcBitFraming, 0x80 | int(bits)}} {
		if err := r.write(s[0], byte(s[1])); err != nil {
			return nil, err
		}
	}
	var irq byte
	for i := 0; ; i++ {
		if i == transceiveLoops {
			return nil, &chipError{fmt.Errorf("fob: mfrc522 %s: no answer from the chip", r.name)}
		}
		v, err := r.read(rcCommIrq)
		if err != nil {
			return nil, err
		}
		if v&0x31 != 0 { // RxIRq, IdleIRq or TimerIRq
			irq = v
			break
		}
	}
	if err := r.write(rcBitFraming, bits); err != nil {
		return nil, err
	}
	if irq&0x30 == 0 {
		return nil, errNoCard
	}
	e, err := r.read(rcError)
	if err != nil {
		return nil, err
	}
	if e&0x1B != 0 { // BufferOvfl, CollErr, ParityErr, ProtocolErr
		return nil, fmt.Errorf("%w: error register %#02x", errRF, e)
	}
	n, err := r.read(rcFIFOLevel)
	if err != nil {
		return nil, err
	}
	if n > 64 {
		return nil, fmt.Errorf("%w: %d bytes", errRF, n)
	}
	out := make([]byte, n)
	for i := range out {
		if out[i], err = r.read(rcFIFOData); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readCard wakes a card, runs the cascade and halts the card.
func (r *MFRC522Reader) readCard() (string, error) {
	atqa, err := r.transceive([]byte{piccWUPA}, 7)
	if err != nil {
		return "", err
	}
	if len(atqa) != 2 {
		return "", fmt.Errorf("%w: ATQA of %d bytes", errRF, len(atqa))
	}
	var levels [][]byte
	var saks []byte
	for _, sel := range []byte{0x93, 0x95, 0x97} {
		uid, err := r.transceive([]byte{sel, 0x20}, 0)
		if err != nil {
			return "", err
		}
		if len(uid) != 5 {
			return "", fmt.Errorf("%w: anticollision answer of %d bytes", ErrBadUID, len(uid))
		}
		frame := append([]byte{sel, 0x70}, uid...)
		crc, err := r.chip.CRC(frame)
		if err != nil {
			return "", &chipError{fmt.Errorf("fob: mfrc522 %s: crc: %w", r.name, err)}
		}
		sak, err := r.transceive(append(frame, crc...), 0)
		if err != nil {
			return "", err
		}
		if len(sak) != 3 {
			return "", fmt.Errorf("%w: SAK of %d bytes", errRF, len(sak))
		}
		levels, saks = append(levels, uid), append(saks, sak[0])
		if sak[0]&sakMore == 0 {
			break
		}
	}
	serial, err := DecodeUID(levels, saks)
	if err != nil {
		return "", err
	}
	// Halt the card so that the next WUPA wakes it afresh; a halted card
	// does not answer, so errNoCard is the expected outcome.
	hlta := []byte{piccHLTA, 0x00}
	if crc, err := r.chip.CRC(hlta); err == nil {
		if _, err := r.transceive(append(hlta, crc...), 0); err != nil && !errors.Is(err, errNoCard) {
			var ce *chipError
			if errors.As(err, &ce) {
				return "", err
			}
		}
	}
	return serial, nil
}

func (r *MFRC522Reader) count(f func()) {
	r.mu.Lock()
	f()
	frames, bad, noise := r.frames, r.bad, r.noise
	r.mu.Unlock()
	r.rep.count(frames, bad, noise)
}

func (r *MFRC522Reader) sleep(ctx context.Context, d time.Duration) bool {
	t := r.timing.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
