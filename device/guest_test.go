package device

import (
	"errors"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"smartboxd/contract"
	"smartboxd/display"
)

// guestRig is a box whose Guest is a real display.Panel on a simulated
// display and gpiotest LEDs, on the box's fake clock.
type guestRig struct {
	*harness
	panel *display.Panel
	sim   *display.Sim
	leds  map[int]*gpiotest.Pin
}

func newGuestRig(t *testing.T) *guestRig {
	t.Helper()
	r := &guestRig{sim: &display.Sim{}, leds: map[int]*gpiotest.Pin{}}
	outs := map[int]gpio.PinOut{}
	for _, id := range []int{1, 2, 3} {
		p := &gpiotest.Pin{N: "led"}
		r.leds[id], outs[id] = p, p
	}
	clock := newHarnessClock()
	panel, err := display.NewPanel(display.PanelConfig{Driver: r.sim, LEDs: outs, LEDOn: gpio.High, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	r.panel = panel
	r.harness = newHarnessOn(t, clock, func(c *Config) { c.Guest = panel })
	return r
}

// shows brings the panel in step and returns what the display shows.
func (r *guestRig) shows() string {
	r.t.Helper()
	if _, err := r.panel.Refresh(); err != nil {
		r.t.Fatal(err)
	}
	return r.sim.Text()
}

func (r *guestRig) led(bin int) (display.LED, gpio.Level) {
	r.t.Helper()
	if _, err := r.panel.Refresh(); err != nil {
		r.t.Fatal(err)
	}
	return r.panel.LEDs()[bin], r.leds[bin].Read()
}

// The display across a drop-off and a pickup: the bin while it waits, Err
// after a wrong code, and blank between; the bin's LED lit while it waits.
func TestGuestAcrossDropoffAndPickup(t *testing.T) {
	r := newGuestRig(t)
	r.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0A1B2C3D4E"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": "55555", "name": "drop", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "p1", "code": "1234", "name": "guest", "type": "ongoing", "key_id": "k1", "action": "pickup"})
	eq(t, "idle", r.shows(), "")

	r.enter("55555")
	eq(t, "drop-off open", r.shows(), "b 1")
	if led, lvl := r.led(1); led != display.LEDOn || lvl != gpio.High {
		t.Fatalf("bin 1 led while it waits for the drop-off = %s (%s)", led, lvl)
	}
	if led, _ := r.led(2); led != display.LEDOff {
		t.Fatalf("bin 2 led = %s, want off", led)
	}
	r.fob(1, "0A1B2C3D4E")
	eq(t, "dropped off", r.last("key.dropped_off")["key_id"].(string), "k1")
	eq(t, "after the drop-off", r.shows(), "")
	if led, lvl := r.led(1); led != display.LEDOff || lvl != gpio.Low {
		t.Fatalf("bin 1 led after the drop-off = %s (%s)", led, lvl)
	}

	r.enter("9999")
	eq(t, "wrong code", r.shows(), "Err")
	r.advance(display.DefaultErrFor)
	eq(t, "after Err", r.shows(), "")

	r.enter("1234")
	eq(t, "pickup open", r.shows(), "b 1")
	if led, _ := r.led(1); led != display.LEDOn {
		t.Fatalf("bin 1 led while it waits for the pickup = %s", led)
	}
	r.nofob(1)
	eq(t, "picked up", r.last("key.picked_up")["key_id"].(string), "k1")
	eq(t, "after the pickup", r.shows(), "")
	if led, _ := r.led(1); led != display.LEDOff {
		t.Fatalf("bin 1 led after the pickup = %s", led)
	}
}

// A door that never opened: the session ends and the LED blinks.
func TestGuestOpenFailedBlinks(t *testing.T) {
	r := newGuestRig(t)
	r.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0A1B2C3D4E"})
	r.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": "55555", "name": "drop", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	r.enter("55555")
	eq(t, "open", r.shows(), "b 1")
	r.box.OpenFailed(1)
	r.flush()
	r.last(contract.EventBinOpenFailed)
	eq(t, "after open_failed", r.shows(), "")
	led, on := r.led(1)
	if led != display.LEDBlink || on != gpio.High {
		t.Fatalf("bin 1 led after open_failed = %s (%s), want blink, lit first", led, on)
	}
	r.advance(display.DefaultBlinkPeriod)
	if _, lvl := r.led(1); lvl != gpio.Low {
		t.Fatalf("bin 1 led one blink period later = %s, want off", lvl)
	}
	r.advance(display.DefaultBlinkFor)
	if led, lvl := r.led(1); led != display.LEDOff || lvl != gpio.Low {
		t.Fatalf("bin 1 led after the blinking = %s (%s)", led, lvl)
	}
}

// Five wrong codes lock the keypad out: the display counts the seconds,
// and shows them again after a restart.
func TestGuestLockout(t *testing.T) {
	r := newGuestRig(t)
	for range 5 {
		r.enter("0000")
	}
	r.last(contract.EventKeypadLockedOut)
	eq(t, "locked out", r.shows(), "30")
	r.advance(10 * time.Second)
	eq(t, "10 s later", r.shows(), "20")
	r.restart()
	eq(t, "after a restart", r.shows(), "20")
	r.advance(20 * time.Second)
	eq(t, "lockout over", r.shows(), "")
}

// Below low_below_v the keypad refuses every entry with power.low; the
// cloud and the console still open bins, and the state says the source.
func TestPowerLowRefusesKeypad(t *testing.T) {
	h := newHarness(t)
	h.mustOK("key.upsert", map[string]any{"key_id": "k1", "name": "Front door", "serial_number": "0A1B2C3D4E"})
	h.mustOK("access_code.upsert", map[string]any{"access_code_id": "d1", "code": "55555", "name": "drop", "type": "ongoing", "key_id": "k1", "action": "dropoff"})
	if h.state().Power != nil {
		t.Fatal("power in the state before any reading")
	}

	h.box.PowerChanged(contract.PowerMains, 13.6, false)
	h.flush()
	if p := h.state().Power; p == nil || *p != (contract.PowerState{Source: "mains", Volts: 13.6}) {
		t.Fatalf("power = %+v", p)
	}
	if got := h.eventsOf(contract.EventPowerMains); len(got) != 0 {
		t.Fatalf("a first reading on mains made events %v", got)
	}

	n := h.count()
	h.box.PowerChanged(contract.PowerBattery, 12.4, false)
	h.flush()
	h.box.PowerChanged(contract.PowerBattery, 10.9, true)
	h.flush()
	if got := h.typesSince(n); !slices.Equal(got, []string{contract.EventPowerOnBattery, contract.EventPowerLow}) {
		t.Fatalf("events = %v", got)
	}
	eq(t, "low volts", h.last(contract.EventPowerLow)["volts"].(float64), 10.9)
	if p := h.state().Power; p == nil || p.Source != "battery" || p.Volts != 10.9 {
		t.Fatalf("power = %+v", p)
	}

	pulses := len(h.locks.pulses())
	h.enter("55555")
	eq(t, "reason", h.last(contract.EventCodeRejected)["reason"].(string), contract.CodePowerLow)
	eq(t, "pulses after a refused entry", len(h.locks.pulses()), pulses)
	for range 10 {
		h.enter("0000") // not guesses: they count towards no lockout
	}
	if got := h.eventsOf(contract.EventKeypadLockedOut); len(got) != 0 {
		t.Fatalf("refusals for power.low locked the keypad out: %v", got)
	}
	h.mustOK("bin.open", map[string]any{"bin": 2})
	if err := h.box.OpenBin(t.Context(), 3, contract.ReasonConsole); err != nil {
		t.Fatal(err)
	}
	eq(t, "pulses of the remote and console opens", len(h.locks.pulses()), pulses+2)

	n = h.count()
	h.box.PowerChanged(contract.PowerBattery, 11.3, false)
	h.flush()
	h.box.PowerChanged(contract.PowerMains, 13.5, false)
	h.flush()
	if got := h.typesSince(n); !slices.Equal(got, []string{contract.EventPowerOnBattery, contract.EventPowerMains}) {
		t.Fatalf("events = %v", got)
	}
	h.enter("55555")
	eq(t, "unlocked after the battery recovered", h.last(contract.EventBinUnlocked)["reason"].(string), contract.ReasonDropoff)

	h.box.PowerFault(errors.New("power: monitor does not answer"))
	h.box.PowerOK()
	h.flush()
	eq(t, "fault", h.last(contract.EventPowerFault)["error"].(string), "power: monitor does not answer")
	h.last(contract.EventPowerOK)
}
