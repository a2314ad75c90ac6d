package power

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"
)

// sink records the monitor's reports as lines.
type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) add(f string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf(f, a...))
}
func (s *sink) PowerChanged(src string, v float64, low bool) { s.add("%s %.2f low=%v", src, v, low) }
func (s *sink) PowerFault(err error)                         { s.add("fault") }
func (s *sink) PowerOK()                                     { s.add("ok") }
func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// busRaw is the INA219 bus voltage register for v volts, conversion ready.
func busRaw(v float64) []byte {
	r := uint16(math.Round(v/0.004))<<3 | 2
	return binary.BigEndian.AppendUint16(nil, r)
}

// The whole I2C conversation of New and one reading.
func TestConversation(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x41, W: []byte{0x05, 0x10, 0x62}}, // calibration for 0.1 ohm, 3.2 A
		{Addr: 0x41, W: []byte{0x00, 0x1f, 0xff}}, // config: 16 V, continuous
		{Addr: 0x41, W: []byte{0x01}, R: []byte{0x00, 0x10}},
		{Addr: 0x41, W: []byte{0x02}, R: busRaw(12.1)},
		{Addr: 0x41, W: []byte{0x04}, R: []byte{0x00, 0x20}},
		{Addr: 0x41, W: []byte{0x03}, R: []byte{0x00, 0x05}},
	}}
	s := &sink{}
	m, err := New(Config{Bus: bus, Address: 0x41, BatteryBelow: 11.8, LowBelow: 11, Sink: s, Clock: clockwork.NewFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll()
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	if got := s.lines(); len(got) != 1 || got[0] != "mains 12.10 low=false" {
		t.Errorf("reports %q", got)
	}
}

// inaFake is an INA219's registers on a bus, with a bus voltage to set.
type inaFake struct {
	mu   sync.Mutex
	reg  [6]uint16
	fail bool
}

func (f *inaFake) String() string                  { return "inafake" }
func (f *inaFake) SetSpeed(physic.Frequency) error { return nil }
func (f *inaFake) Tx(_ uint16, w, r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail || len(w) == 0 || int(w[0]) >= len(f.reg) {
		return errors.New("i2c: no ACK")
	}
	if len(w) == 3 {
		f.reg[w[0]] = binary.BigEndian.Uint16(w[1:])
	}
	if len(r) == 2 {
		binary.BigEndian.PutUint16(r, f.reg[w[0]])
	}
	return nil
}

func (f *inaFake) set(v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reg[2] = binary.BigEndian.Uint16(busRaw(v))
}

func (f *inaFake) setFail(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = b
}

func TestDecisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		volts []float64
		want  []string
	}{
		{"steady mains", []float64{12.5, 12.4, 12.6}, []string{"mains 12.50 low=false"}},
		{"starts on battery", []float64{11.5}, []string{"battery 11.50 low=false"}},
		{"starts low", []float64{10.9}, []string{"battery 10.90 low=true"}},
		{"mains fails", []float64{12.5, 11.6, 11.6, 11.6, 11.6}, []string{"mains 12.50 low=false", "battery 11.60 low=false"}},
		{"a short dip is ignored", []float64{12.5, 11.0, 11.0, 12.5, 11.5, 12.5}, []string{"mains 12.50 low=false"}},
		{"noise at the threshold does not flap", []float64{11.7, 11.9, 11.7, 11.9, 11.95, 11.9, 11.7}, []string{"battery 11.70 low=false"}},
		{"back on mains above the hysteresis", []float64{11.5, 12.0, 12.0, 12.0}, []string{"battery 11.50 low=false", "mains 12.00 low=false"}},
		{"battery runs down", []float64{11.5, 10.9, 10.9, 10.9, 11.1, 11.1, 11.1, 11.2, 11.2, 11.2}, []string{
			"battery 11.50 low=false", "battery 10.90 low=true", "battery 11.20 low=false",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &inaFake{}
			s := &sink{}
			m, err := New(Config{Bus: f, BatteryBelow: 11.8, LowBelow: 11, Sink: s, Clock: clockwork.NewFakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.volts {
				f.set(v)
				m.Poll()
			}
			got := s.lines()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("reports %q, want %q", got, tc.want)
			}
			if st := m.State(); math.Abs(st.Volts-tc.volts[len(tc.volts)-1]) > 0.002 {
				t.Errorf("state volts %.3f", st.Volts)
			}
		})
	}
}

// A monitor that does not answer at start: New says so, the box goes on,
// Run keeps trying and reports once it reads.
func TestNoAnswerAtStart(t *testing.T) {
	f := &inaFake{fail: true}
	s := &sink{}
	clock := clockwork.NewFakeClock()
	m, err := New(Config{Bus: f, BatteryBelow: 11.8, LowBelow: 11, Sink: s, Clock: clock})
	if !errors.Is(err, ErrNoAnswer) || m == nil {
		t.Fatalf("New = %v, %v; want a monitor and ErrNoAnswer", m, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clock.BlockUntilContext(ctx, 1)
		clock.Advance(d)
	}
	// The voltage first: a read that races the clock never sees the
	// answering chip without it.
	f.set(12.2)
	f.setFail(false)
	clock.BlockUntilContext(ctx, 1)
	clock.Advance(8 * time.Second) // the next retry opens; the first reading follows
	clock.BlockUntilContext(ctx, 1)
	// A pulled monitor faults once, and recovers.
	f.setFail(true)
	clock.Advance(time.Second)
	clock.BlockUntilContext(ctx, 1)
	clock.Advance(time.Second)
	clock.BlockUntilContext(ctx, 1)
	f.setFail(false)
	clock.Advance(time.Second)
	clock.BlockUntilContext(ctx, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "[fault ok mains 12.20 low=false fault ok]"
	if got := fmt.Sprint(s.lines()); got != want {
		t.Errorf("reports %s, want %s", got, want)
	}
	if st := m.State(); st.Refused != 2 || st.Faulted {
		t.Errorf("state %+v", st)
	}
}

func TestConfigRefused(t *testing.T) {
	f := &inaFake{}
	for _, cfg := range []Config{
		{Bus: f, BatteryBelow: 11, LowBelow: 11.8, Sink: &sink{}},
		{Bus: f, BatteryBelow: 11.8, LowBelow: 11.8, Sink: &sink{}},
		{Bus: f, BatteryBelow: 30, LowBelow: 11, Sink: &sink{}},
		{Bus: f, BatteryBelow: 11.8, LowBelow: 11, Sink: &sink{}, Address: 0x20},
		{Bus: f, BatteryBelow: 11.8, LowBelow: 11},
		{BatteryBelow: 11.8, LowBelow: 11, Sink: &sink{}},
	} {
		if m, err := New(cfg); !errors.Is(err, ErrConfig) || m != nil {
			t.Errorf("New(%+v) = %v, %v; want ErrConfig", cfg, m, err)
		}
	}
}

// The reading path: register bytes from the chip to volts or a refusal.
func FuzzReading(f *testing.F) {
	f.Add([]byte{0, 0x10, 0x5d, 0xc2, 0, 0x20, 0, 5})
	f.Add([]byte{0, 0, 0xff, 0xf8, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0x5d, 0xc3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x40, W: []byte{0x05, 0x10, 0x62}},
			{Addr: 0x40, W: []byte{0x00, 0x1f, 0xff}},
			{Addr: 0x40, W: []byte{0x01}, R: b[0:2]},
			{Addr: 0x40, W: []byte{0x02}, R: b[2:4]},
			{Addr: 0x40, W: []byte{0x04}, R: b[4:6]},
			{Addr: 0x40, W: []byte{0x03}, R: b[6:8]},
		}}
		dev, err := ina219.New(bus, &ina219.Opts{Address: 0x40})
		if err != nil {
			t.Fatal(err)
		}
		v, err := Volts(dev.Sense())
		raw := binary.BigEndian.Uint16(b[2:4])
		want := float64(raw>>3) * 0.004
		switch {
		case raw&1 != 0 && err == nil:
			t.Fatalf("overflowed reading %#04x accepted as %.3f V", raw, v)
		case err == nil && (v < 0 || v > MaxVolts || math.Abs(v-want) > 1e-6):
			t.Fatalf("reading %#04x = %.3f V, want %.3f within 0..%g", raw, v, want, MaxVolts)
		case err != nil && !errors.Is(err, ErrReading):
			t.Fatalf("error %v is not ErrReading", err)
		case err != nil && raw&1 == 0 && want <= MaxVolts:
			t.Fatalf("good reading %#04x refused: %v", raw, err)
		}
	})
}
