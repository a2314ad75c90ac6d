package fob

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/mfrc522/commands"
)

// rc522Fake is an MFRC522 on an SPI bus, as far as the reader and periph's
// LowLevel use it, with a card to put in its field: registers, the FIFO,
// the CRC coprocessor, soft reset, and the card's answers to WUPA, the
// anticollision cascade, SELECT and HLTA.
type rc522Fake struct {
	mu       sync.Mutex
	reg      [64]byte
	fifo     []byte
	levels   [][]byte // the card's cascade levels; nil: no card
	saks     []byte
	fail     bool // every Tx fails: the reader is unplugged
	floating bool // every read is 0x00, with no error: MISO floats
	garble   int  // the next answers have a parity error
}

func (f *rc522Fake) String() string                                            { return "rc522fake" }
func (f *rc522Fake) Duplex() conn.Duplex                                       { return conn.Full }
func (f *rc522Fake) TxPackets([]spi.Packet) error                              { return errors.New("not used") }
func (f *rc522Fake) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) { return f, nil }

func (f *rc522Fake) card(levels [][]byte, saks []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.levels, f.saks = levels, saks
}

func (f *rc522Fake) set(fn func(f *rc522Fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *rc522Fake) Tx(w, r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("spi: transfer failed")
	}
	if len(w) != 2 {
		return errors.New("rc522fake: want two bytes")
	}
	addr := int(w[0]>>1) & 0x3F
	if w[0]&0x80 != 0 {
		v := f.readReg(addr)
		if f.floating {
			v = 0
		}
		r[1] = v
		return nil
	}
	f.writeReg(addr, w[1])
	return nil
}

func (f *rc522Fake) readReg(addr int) byte {
	switch addr {
	case rcFIFOData:
		if len(f.fifo) == 0 {
			return 0
		}
		v := f.fifo[0]
		f.fifo = f.fifo[1:]
		return v
	case rcFIFOLevel:
		return byte(len(f.fifo))
	case rcVersion:
		return 0x92
	}
	return f.reg[addr]
}

func (f *rc522Fake) writeReg(addr int, v byte) {
	switch addr {
	case rcCommand:
		switch v & 0x0F {
		case 0x0F: // soft reset
			f.reg = [64]byte{}
			f.reg[commands.TxControlReg] = 0x80
			f.fifo = nil
		case 0x03: // CalcCRC
			lo, hi := crcA(f.fifo)
			f.reg[commands.CRCResultRegL], f.reg[commands.CRCResultRegM] = lo, hi
			f.reg[commands.DivIrqReg] |= 0x04
		}
		f.reg[addr] = v
	case rcCommIrq, commands.DivIrqReg: // bit 7 set: set the bits; clear: clear them
		if v&0x80 != 0 {
			f.reg[addr] |= v & 0x7F
		} else {
			f.reg[addr] &^= v & 0x7F
		}
	case rcFIFOLevel:
		if v&0x80 != 0 {
			f.fifo = nil
		}
	case rcFIFOData:
		f.fifo = append(f.fifo, v)
	case rcBitFraming:
		f.reg[addr] = v
		if v&0x80 != 0 && f.reg[rcCommand]&0x0F == cmdTransceive {
			f.transceive()
		}
	default:
		f.reg[addr] = v
	}
}

func (f *rc522Fake) transceive() {
	resp := f.answer(f.fifo)
	f.fifo = nil
	f.reg[rcError] = 0
	if resp == nil {
		f.reg[rcCommIrq] |= 0x01 // the timer ran out
		return
	}
	if f.garble > 0 {
		f.garble--
		f.reg[rcError] = 0x02 // ParityErr
	}
	f.fifo = resp
	f.reg[rcCommIrq] |= 0x30
}

func (f *rc522Fake) answer(frame []byte) []byte {
	if f.levels == nil || len(frame) == 0 {
		return nil
	}
	level := map[byte]int{0x93: 0, 0x95: 1, 0x97: 2}
	switch {
	case len(frame) == 1 && frame[0] == piccWUPA:
		return []byte{0x44, 0x00}
	case len(frame) == 2 && frame[1] == 0x20:
		if i, ok := level[frame[0]]; ok && i < len(f.levels) {
			return append([]byte(nil), f.levels[i]...)
		}
	case len(frame) == 9 && frame[1] == 0x70:
		i, ok := level[frame[0]]
		lo, hi := crcA(frame[:7])
		if ok && i < len(f.levels) && lo == frame[7] && hi == frame[8] {
			lo, hi := crcA(f.saks[i : i+1])
			return []byte{f.saks[i], lo, hi}
		}
	}
	return nil // HLTA and anything else: no answer
}

// crcA is the ISO 14443-3 CRC_A.
func crcA(data []byte) (lo, hi byte) {
	crc := uint16(0x6363)
	for _, b := range data {
		b ^= byte(crc)
		b ^= b << 4
		crc = crc>>8 ^ uint16(b)<<8 ^ uint16(b)<<3 ^ uint16(b)>>4
	}
	return byte(crc), byte(crc >> 8)
}

func newMFRC522(t *testing.T) (*MFRC522Reader, *rc522Fake, *recorder, *clockwork.FakeClock) {
	t.Helper()
	f := &rc522Fake{}
	ll, err := commands.NewLowLevelSPI(f, &gpiotest.Pin{N: "reset"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	clock := clockwork.NewFakeClock()
	r, err := NewMFRC522Reader(MFRC522Config{
		Name: "/dev/spidev0.0", Bin: 3, Chip: ll, Sink: rec, Clock: clock,
		AbsentAfter: 600 * time.Millisecond, PollEvery: 100 * time.Millisecond,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, f, rec, clock
}

// run starts Run and returns a function that steps the clock by d once
// Run waits on as many timers as waiters says: its poll timer (or backoff
// timer), and the absent timer while it tracks presence. step(0, n) waits
// until the poll the last step started is done.
func run(t *testing.T, r *MFRC522Reader, clock *clockwork.FakeClock) func(d time.Duration, waiters int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return func(d time.Duration, waiters int) {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, waiters); err != nil {
			t.Fatal(err)
		}
		clock.Advance(d)
	}
}

func TestMFRC522Presence(t *testing.T) {
	r, f, rec, clock := newMFRC522(t)
	f.card([][]byte{level(0xDE, 0xAD, 0xBE, 0xEF)}, []byte{0x08})
	step := run(t, r, clock)
	rec.wait(t, present(3, "DEADBEEF"))
	for range 10 { // a second of polls, the card still there
		step(100*time.Millisecond, 2)
	}
	step(0, 2)
	f.card(nil, nil)
	for range 6 { // the poll timer and the absent timer, which ends with the 6th
		step(100*time.Millisecond, 2)
	}
	rec.wait(t, present(3, "DEADBEEF"), absent(3))
	// A 7-byte card.
	f.card([][]byte{level(0x88, 0x04, 0x1A, 0x2B), level(0x3C, 0x4D, 0x5E, 0x6F)}, []byte{0x04, 0x00})
	step(100*time.Millisecond, 1)
	rec.wait(t, present(3, "DEADBEEF"), absent(3), present(3, "041A2B3C4D5E6F"))
	if s := r.Stats(); s.Frames < 11 || s.Type != TypeMFRC522 || s.Present != "041A2B3C4D5E6F" {
		t.Errorf("stats %+v", s)
	}
}

func TestMFRC522NoiseChangesNothing(t *testing.T) {
	r, f, rec, clock := newMFRC522(t)
	f.card([][]byte{level(1, 2, 3, 4)}, []byte{0x08})
	step := run(t, r, clock)
	rec.wait(t, present(3, "01020304"))
	f.set(func(f *rc522Fake) { f.garble = 3 })
	for range 3 {
		step(100*time.Millisecond, 2)
	}
	step(0, 2)
	f.card([][]byte{{1, 2, 3, 4, 0}}, []byte{0x08}) // bad BCC
	step(100*time.Millisecond, 2)
	step(0, 2)
	f.card([][]byte{level(1, 2, 3, 4)}, []byte{0x08})
	step(100*time.Millisecond, 2)
	rec.wait(t, present(3, "01020304"))
	if s := r.Stats(); s.Noise == 0 || s.BadChecksum != 1 {
		t.Errorf("stats %+v, want noise and one bad UID counted", s)
	}
}

func TestMFRC522PulledReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		pull func(f *rc522Fake)
	}{
		{"spi errors", func(f *rc522Fake) { f.fail = true }},
		{"floating bus", func(f *rc522Fake) { f.floating = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, f, rec, clock := newMFRC522(t)
			f.card([][]byte{level(1, 2, 3, 4)}, []byte{0x08})
			step := run(t, r, clock)
			rec.wait(t, present(3, "01020304"))
			f.set(tc.pull)
			step(100*time.Millisecond, 2)
			rec.wait(t, present(3, "01020304"), fault(3))
			for _, d := range []time.Duration{100, 200, 400} { // backoff, still pulled
				step(d*time.Millisecond, 1)
			}
			step(0, 1)
			f.set(func(f *rc522Fake) { f.fail, f.floating = false, false })
			step(800*time.Millisecond, 1)
			step(100*time.Millisecond, 2)
			rec.wait(t, present(3, "01020304"), fault(3), ok(3), present(3, "01020304"))
			if s := r.Stats(); s.Reopens != 1 || s.Faulted || s.LastError == "" {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestNewMFRC522Reader(t *testing.T) {
	f := &rc522Fake{fail: true}
	ll, err := commands.NewLowLevelSPI(f, &gpiotest.Pin{N: "reset"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMFRC522Reader(MFRC522Config{Name: "/dev/spidev0.1", Chip: ll, Sink: newRecorder()}); err == nil {
		t.Error("a reader that does not answer was accepted")
	}
	if _, err := NewMFRC522Reader(MFRC522Config{Name: "x", Sink: newRecorder()}); !errors.Is(err, ErrConfig) {
		t.Errorf("no chip: %v, want ErrConfig", err)
	}
}
