package locks

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Sim is the simulated wiring of the sim backend: a gpiotest pin for each
// bin's lock, and one for its door sensor where the bin has one. The
// console's "sim door" command moves the doors through SetDoor. Doors start
// closed. It is safe for concurrent use.
type Sim struct {
	bins  []Bin
	locks map[int]*gpiotest.Pin
	doors map[int]*gpiotest.Pin

	mu       sync.Mutex
	open     map[int]bool
	polarity Polarity
}

// NewSimPins returns simulated pins for the bins ids; a bin gets a door
// sensor when withDoor (which may be nil: no doors) says so.
func NewSimPins(ids []int, withDoor func(id int) bool) *Sim {
	s := &Sim{
		locks: make(map[int]*gpiotest.Pin, len(ids)),
		doors: make(map[int]*gpiotest.Pin),
		open:  make(map[int]bool),
	}
	for _, id := range ids {
		lock := &gpiotest.Pin{N: fmt.Sprintf("SIM_LOCK%d", id), Num: id}
		s.locks[id] = lock
		bn := Bin{ID: id, Lock: lock}
		if withDoor != nil && withDoor(id) {
			door := &gpiotest.Pin{N: fmt.Sprintf("SIM_DOOR%d", id), Num: id, L: s.polarity.Off()}
			s.doors[id] = door
			bn.Door = door
		}
		s.bins = append(s.bins, bn)
	}
	return s
}

// Bins returns the wiring for Config.Bins.
func (s *Sim) Bins() []Bin {
	return append([]Bin(nil), s.bins...)
}

// SetDoorPolarity says which level the door sensors read while open; it
// must match the bank's Config.DoorOpen. The doors keep their state.
func (s *Sim) SetDoorPolarity(p Polarity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polarity = p
	for id, pin := range s.doors {
		_ = pin.Out(s.level(s.open[id]))
	}
}

// SetDoor opens or closes bin's simulated door. It returns ErrUnknownBin
// for a bin that is not simulated and ErrNoDoor for one without a door
// sensor.
func (s *Sim) SetDoor(bin int, open bool) error {
	if _, ok := s.locks[bin]; !ok {
		return fmt.Errorf("locks: sim door %d: %w", bin, ErrUnknownBin)
	}
	pin, ok := s.doors[bin]
	if !ok {
		return fmt.Errorf("locks: sim door %d: %w", bin, ErrNoDoor)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open[bin] = open
	return pin.Out(s.level(open))
}

// LockPin returns bin's simulated lock output, or nil.
func (s *Sim) LockPin(bin int) *gpiotest.Pin { return s.locks[bin] }

// DoorPin returns bin's simulated door sensor, or nil.
func (s *Sim) DoorPin(bin int) *gpiotest.Pin { return s.doors[bin] }

// level is the sensor level for a door state. s.mu is held.
func (s *Sim) level(open bool) gpio.Level {
	if open {
		return s.polarity.On()
	}
	return s.polarity.Off()
}
