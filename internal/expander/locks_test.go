package expander

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"smartboxd/internal/expander/expandertest"
	"smartboxd/locks"
)

// The lock bank takes expander pins as they are: New drives the lock
// inactive first and makes the door an input.
func TestLockBankOnExpanderPins(t *testing.T) {
	f := expandertest.NewMCP23017(addr)
	f.SetReg(0x14, 0x01) // a latch left energised by a crashed run
	f.SetReg(0x00, 0xFE) // ... on an output
	c, err := Open(Config{Name: "x1", Type: TypeMCP23017, Bus: f, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Level(0); got != -1 {
		t.Fatalf("GPA0 = %d after Open, want an input", got)
	}
	s, _ := NewSet(c)
	lock, err := s.Resolve("x1:GPA0")
	if err != nil {
		t.Fatal(err)
	}
	door, err := s.Resolve("x1:GPB0")
	if err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClock()
	bank, err := locks.New(locks.Config{
		Bins:  []locks.Bin{{ID: 1, Lock: lock, Door: door}},
		Clock: clock, Pulse: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Halt()
	if got := f.Level(0); got != 0 {
		t.Errorf("lock GPA0 = %d after locks.New, want driven low", got)
	}
	if got := f.Level(8); got != -1 {
		t.Errorf("door GPB0 = %d, want an input", got)
	}
	if err := bank.Halt(); err != nil {
		t.Fatal(err)
	}
	if got := f.Level(0); got != 0 {
		t.Errorf("lock GPA0 = %d after Halt, want low", got)
	}
}
