package locks

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/gpio"
)

func TestSim(t *testing.T) {
	sim := NewSimPins([]int{1, 2, 5}, func(id int) bool { return id != 2 })
	bins := sim.Bins()
	if len(bins) != 3 {
		t.Fatalf("%d bins, want 3", len(bins))
	}
	for _, bn := range bins {
		if bn.Lock == nil {
			t.Errorf("bin %d: no lock pin", bn.ID)
		}
		if hasDoor := bn.Door != nil; hasDoor != (bn.ID != 2) {
			t.Errorf("bin %d: door sensor %t", bn.ID, hasDoor)
		}
	}
	for _, tc := range []struct {
		name     string
		polarity Polarity
		open     bool
		want     gpio.Level
	}{
		{"high open", ActiveHigh, true, gpio.High},
		{"high closed", ActiveHigh, false, gpio.Low},
		{"low open", ActiveLow, true, gpio.Low},
		{"low closed", ActiveLow, false, gpio.High},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.SetDoorPolarity(tc.polarity)
			if err := sim.SetDoor(5, tc.open); err != nil {
				t.Fatal(err)
			}
			if got := sim.DoorPin(5).Read(); got != tc.want {
				t.Errorf("sensor reads %s, want %s", got, tc.want)
			}
			// A polarity change keeps the door's state.
			sim.SetDoorPolarity(1 - tc.polarity)
			if got := sim.DoorPin(5).Read(); got != !tc.want {
				t.Errorf("after a polarity change the sensor reads %s, want %s", got, !tc.want)
			}
			if got := sim.DoorPin(1).Read(); got != (1 - tc.polarity).Off() {
				t.Errorf("untouched door reads %s, want closed (%s)", got, (1 - tc.polarity).Off())
			}
		})
	}
	if err := sim.SetDoor(2, true); !errors.Is(err, ErrNoDoor) {
		t.Errorf("bin without a door: %v, want ErrNoDoor", err)
	}
	if err := sim.SetDoor(3, true); !errors.Is(err, ErrUnknownBin) {
		t.Errorf("unknown bin: %v, want ErrUnknownBin", err)
	}
	if sim.DoorPin(2) != nil || sim.LockPin(3) != nil {
		t.Error("pins for what is not simulated")
	}
}

func TestSimDoorsStartClosed(t *testing.T) {
	sim := NewSimPins([]int{1}, func(int) bool { return true })
	if got := sim.DoorPin(1).Read(); got != gpio.Low {
		t.Fatalf("door sensor reads %s at start, want closed (low)", got)
	}
	sim.SetDoorPolarity(ActiveLow)
	if got := sim.DoorPin(1).Read(); got != gpio.High {
		t.Fatalf("door sensor reads %s with active-low doors, want closed (high)", got)
	}
	if got := NewSimPins([]int{1}, nil).Bins()[0].Door; got != nil {
		t.Fatalf("nil withDoor gave a door sensor %v", got)
	}
}
