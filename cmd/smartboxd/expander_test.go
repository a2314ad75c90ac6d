package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"smartboxd/contract"
	"smartboxd/device"
	"smartboxd/internal/config"
	"smartboxd/internal/expander"
	"smartboxd/internal/expander/expandertest"
	"smartboxd/locks"
	"smartboxd/store"
)

// fakeBoard is a board for openHardware: I2C buses of register-level
// expander fakes, routed by address, and gpiotest pins by name.
type fakeBoard struct {
	mu     sync.Mutex
	chips  map[uint16]*expandertest.MCP23017
	opened map[string]int // bus -> times opened
	pins   map[string]*gpiotest.Pin
}

func newFakeBoard(addrs ...uint16) *fakeBoard {
	b := &fakeBoard{chips: map[uint16]*expandertest.MCP23017{}, opened: map[string]int{}, pins: map[string]*gpiotest.Pin{}}
	for _, a := range addrs {
		b.chips[a] = expandertest.NewMCP23017(a)
	}
	return b
}

type fakeBus struct {
	b    *fakeBoard
	name string
}

func (f *fakeBus) String() string                  { return f.name }
func (f *fakeBus) SetSpeed(physic.Frequency) error { return nil }
func (f *fakeBus) Close() error                    { return nil }
func (f *fakeBus) Tx(a uint16, w, r []byte) error {
	c := f.b.chips[a]
	if c == nil {
		return errors.New("i2c: no ACK")
	}
	return c.Tx(a, w, r)
}

func (b *fakeBoard) env() hostEnv {
	return hostEnv{
		init: func() error { return nil },
		openI2C: func(name string) (i2c.BusCloser, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.opened[name]++
			return &fakeBus{b: b, name: name}, nil
		},
		openSPI: func(name string) (spi.PortCloser, error) { return nil, fmt.Errorf("no SPI device %s", name) },
		pin: func(name string) gpio.PinIO {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !strings.HasPrefix(name, "GPIO") {
				return nil
			}
			p := b.pins[name]
			if p == nil {
				p = &gpiotest.Pin{N: name}
				b.pins[name] = p
			}
			return p
		},
	}
}

// referenceConfig loads one of configs/, its TLS files made up.
func referenceConfig(t *testing.T, name string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "box.crt", "box.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return loadConfig(t, strings.ReplaceAll(string(data), "/etc/smartbox/", dir+"/"))
}

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "box.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The 24-bin reference wiring opens on three MCP23017s: one handle for the
// shared bus, every lock latched off and left an input until the lock bank
// takes it, every pin resolved. A missing expander stops start-up, named.
func TestPi24BinOnExpanders(t *testing.T) {
	cfg := referenceConfig(t, "pi-24bin.yaml")
	board := newFakeBoard(0x20, 0x21, 0x22)
	for _, c := range board.chips {
		c.SetReg(expandertest.RegOLATA, 0xFF) // left driving by a crashed run
		c.SetReg(expandertest.RegIODIRA, 0x00)
	}
	hw, err := openHardware(cfg, board.env())
	if err != nil {
		t.Fatal(err)
	}
	defer hw.close()
	if n := board.opened["/dev/i2c-1"]; n != 1 || len(board.opened) != 1 {
		t.Errorf("buses opened %v, want /dev/i2c-1 once", board.opened)
	}
	if len(hw.bins) != 24 || len(hw.leds) != 24 {
		t.Fatalf("%d bins, %d leds", len(hw.bins), len(hw.leds))
	}
	for addr, c := range board.chips {
		for bit := range 16 {
			if got := c.Level(bit); got != -1 {
				t.Errorf("chip %#x bit %d drives %d before the lock bank runs", addr, bit, got)
			}
		}
		if c.Reg(expandertest.RegOLATA) != 0 || c.Reg(expandertest.RegOLATA+1) != 0 {
			t.Errorf("chip %#x latches % x, want 00 (active-high locks off)", addr, []byte{c.Reg(expandertest.RegOLATA), c.Reg(expandertest.RegOLATA + 1)})
		}
	}
	if got := hw.bins[16].Lock.String(); got != "x2:GPA0" {
		t.Errorf("bin 17 lock %s", got)
	}

	missing := newFakeBoard(0x20, 0x22)
	_, err = openHardware(cfg, missing.env())
	if !errors.Is(err, expander.ErrNoAnswer) || !strings.Contains(err.Error(), "expander x2") {
		t.Fatalf("x2 missing: %v", err)
	}
	if got := missing.chips[0x20].Level(0); got != -1 {
		t.Errorf("x1 GPA0 drives %d after the failed start", got)
	}
}

// A -check of the 24-bin wiring validates every expander pin by name and
// every Pi pin and bus, without opening any chip.
func TestCheckHardwareOnExpanders(t *testing.T) {
	cfg := referenceConfig(t, "pi-24bin.yaml")
	board := newFakeBoard()
	stat := func(string) (os.FileInfo, error) { return nil, nil }
	if err := checkHardwareOn(cfg, board.env(), stat); err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(board.opened) != 0 {
		t.Errorf("-check opened buses %v", board.opened)
	}
	cfg.Hardware.Bins[0].Lock = "x9:GPA0"
	cfg.Hardware.Bins[1].Door = "NOSUCHPIN"
	noBus := func(string) (os.FileInfo, error) { return nil, os.ErrNotExist }
	err := checkHardwareOn(cfg, board.env(), noBus)
	var probs *config.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("check: %v", err)
	}
	text := err.Error()
	for _, want := range []string{"hardware.bins[0].lock", `no expander "x9"`, "hardware.bins[1].door", "hardware.expanders[0].bus", "hardware.power.bus"} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}

// The whole drop-off and pickup on a box whose locks, doors and LEDs sit
// on an MCP23017: a code pulses the lock on the expander, the door opens
// and closes on it, the LED is lit while the bin waits, and the pickup
// pulses the same lock again.
func TestDropoffAndPickupOnExpander(t *testing.T) {
	cfg := loadConfig(t, `
box_id: box-x
data_dir: `+t.TempDir()+`
hardware:
  backend: gpio
  expanders:
    - {name: x1, type: mcp23017, bus: /dev/i2c-1, address: 0x20}
  bins:
    - {id: 1, lock: "x1:GPA0", door: "x1:GPB0", led: "x1:GPA4"}
    - {id: 2, lock: "x1:GPA1", door: "x1:GPB1", led: "x1:GPA5"}
keypad: {type: none}
timing: {lock_pulse_ms: 100}
`)
	board := newFakeBoard(0x20)
	chip := board.chips[0x20]
	hw, err := openHardware(cfg, board.env())
	if err != nil {
		t.Fatal(err)
	}
	defer hw.close()
	clock := clockwork.NewRealClock()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink := &lockSink{}
	bank, err := locks.New(locks.Config{
		Bins: hw.bins, LockActive: locks.ActiveHigh, DoorOpen: locks.ActiveHigh,
		Pulse: cfg.Timing.LockPulse(), Rest: cfg.Timing.LockRest(), MaxEnergised: cfg.Timing.MaxEnergised,
		DoorDebounce: cfg.Timing.DoorDebounce(), HeldOpen: cfg.Timing.DoorHeldOpen(),
		Clock: clock, Logger: log, Sink: sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Halt()
	gst, err := openGuest(cfg, hw, clock, log)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.DataDir, store.Options{BoxID: cfg.BoxID, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var specs []device.BinSpec
	for _, b := range cfg.Hardware.Bins {
		specs = append(specs, device.BinSpec{ID: b.ID, HasDoor: bank.HasDoor(b.ID)})
	}
	box, err := device.New(device.Config{BoxID: cfg.BoxID, Version: "test", BootID: "b", Bins: specs,
		Store: db, Locks: bank, Guest: gst.panel, Clock: clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sink.box = box
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{bank.Run, box.Run, gst.panel.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	seq := uint64(0)
	var seen []string
	events := func() []string {
		recs, err := db.Pending(seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var e event
			if err := json.Unmarshal(r.Payload, &e); err != nil {
				t.Fatal(err)
			}
			seen, seq = append(seen, e.Type), r.Seq
		}
		return seen
	}
	has := func(typ string) func() bool {
		return func() bool { return strings.Contains(" "+strings.Join(events(), " ")+" ", " "+typ+" ") }
	}
	cmds := 0
	cmd := func(typ string, data any) {
		t.Helper()
		cmds++
		raw, _ := json.Marshal(data)
		rep, err := box.Execute(ctx, contract.Command{ID: fmt.Sprintf("c%d", cmds), Type: typ, Data: raw})
		if err != nil || !rep.OK {
			t.Fatalf("%s: %v %+v", typ, err, rep.Error)
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; events %v", what, events())
			}
		}
	}
	const lock, led, door = 0, 4, 8 // bits of bin 1
	waitFor("the lock bank to make the lock an output, off", func() bool { return chip.Level(lock) == 0 })

	cmd("key.upsert", map[string]any{"key_id": "k1", "name": "Van"})
	cmd("access_code.upsert", map[string]any{"access_code_id": "d1", "code": "55555", "name": "drop", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	cmd("access_code.upsert", map[string]any{"access_code_id": "p1", "code": "4321", "name": "pick", "type": "ongoing", "key_id": "k1", "action": "pickup"})

	box.KeypadEntry("55555")
	waitFor("the drop-off to energise the lock on the expander", func() bool { return chip.Level(lock) == 1 })
	waitFor("bin 1's LED while it waits", func() bool { return chip.Level(led) == 1 })
	chip.SetInput(door, true)
	waitFor("the pulse to end", func() bool { return chip.Level(lock) == 0 })
	waitFor("the door open", func() bool {
		s, err := box.State()
		return err == nil && s.Bins[0].Door == contract.DoorOpen
	})
	chip.SetInput(door, false)
	waitFor("key.dropped_off", has(contract.EventKeyDroppedOff))
	waitFor("bin 1's LED off", func() bool { return chip.Level(led) == 0 })
	if s, _ := box.State(); s.Bins[0].State != contract.BinOccupied {
		t.Fatalf("bin 1 after the drop-off: %+v", s.Bins[0])
	}

	box.KeypadEntry("4321")
	waitFor("the pickup to energise the lock", func() bool { return chip.Level(lock) == 1 })
	waitFor("key.picked_up", has(contract.EventKeyPickedUp))
	chip.SetInput(door, true)
	waitFor("the pulse to end", func() bool { return chip.Level(lock) == 0 })
	chip.SetInput(door, false)
	if s, _ := box.State(); s.Bins[0].State == contract.BinOccupied {
		t.Fatalf("bin 1 after the pickup: %+v", s.Bins[0])
	}
	if strings.Contains(strings.Join(events(), " "), contract.EventBinOpenFailed) {
		t.Errorf("events %v", seen)
	}
	if got := chip.Level(1); got != 0 {
		t.Errorf("bin 2's lock drives %d", got)
	}

	cancel()
	wg.Wait()
	bank.Halt()
	if err := hw.close(); err != nil {
		t.Fatal(err)
	}
	for bit := range 16 {
		if got := chip.Level(bit); got != -1 {
			t.Errorf("bit %d drives %d after the expanders halted", bit, got)
		}
	}
}

// An MFRC522 whose SPI device cannot be opened stops start-up, named.
func TestMFRC522WithoutSPIStopsStartup(t *testing.T) {
	cfg := loadConfig(t, `
box_id: box-x
data_dir: `+t.TempDir()+`
hardware:
  backend: gpio
  bins:
    - {id: 1, lock: GPIO17}
readers:
  - {type: mfrc522, spi: /dev/spidev0.0, reset: GPIO25, bin: 1}
keypad: {type: none}
`)
	hw, err := openHardware(cfg, newFakeBoard().env())
	if err != nil {
		t.Fatal(err)
	}
	defer hw.close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = openReaders(cfg, hw, &fobSinkDiscard{}, clockwork.NewRealClock(), log)
	if err == nil || !strings.Contains(err.Error(), "reader on /dev/spidev0.0") {
		t.Fatalf("openReaders: %v", err)
	}
}

type fobSinkDiscard struct{}

func (fobSinkDiscard) FobPresent(int, string) {}
func (fobSinkDiscard) FobAbsent(int)          {}
func (fobSinkDiscard) ReaderFault(int, error) {}
func (fobSinkDiscard) ReaderOK(int)           {}
