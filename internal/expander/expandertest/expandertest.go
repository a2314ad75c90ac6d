// Package expandertest fakes I2C GPIO expanders at the register level, for
// tests of what sits on them: the lock bank, door sensors, LEDs, the whole
// box.
package expandertest

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// MCP23017 is an MCP23017's register file on an I2C bus, with IOCON.BANK
// = 0: a write is [reg, v...] and a read starts at the register last
// written, with sequential addressing, as the chip does. GPIO reads the
// inputs (SetInputs) where IODIR says input and the output latch
// elsewhere. It answers at one address; any other, or a failing chip, is
// a missing ACK. It is safe for concurrent use.
type MCP23017 struct {
	addr uint16

	mu     sync.Mutex
	reg    [0x16]byte
	inputs uint16
	fail   bool
	txs    int
}

var _ i2c.Bus = (*MCP23017)(nil)

// The registers the fake gives meaning to.
const (
	RegIODIRA = 0x00
	RegGPIOA  = 0x12
	RegOLATA  = 0x14
)

// NewMCP23017 returns the chip at power-on: every pin an input.
func NewMCP23017(addr uint16) *MCP23017 {
	f := &MCP23017{addr: addr}
	f.reg[RegIODIRA], f.reg[RegIODIRA+1] = 0xFF, 0xFF
	return f
}

func (f *MCP23017) String() string                  { return fmt.Sprintf("mcp23017fake@%#x", f.addr) }
func (f *MCP23017) SetSpeed(physic.Frequency) error { return nil }

// Tx implements i2c.Bus.
func (f *MCP23017) Tx(a uint16, w, r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs++
	if f.fail || a != f.addr {
		return errors.New("i2c: no ACK")
	}
	if len(w) == 0 {
		return errors.New("mcp23017fake: no register")
	}
	at := int(w[0])
	for _, b := range w[1:] {
		f.reg[at%len(f.reg)] = b
		at++
	}
	for i := range r {
		reg := at % len(f.reg)
		switch reg {
		case RegGPIOA, RegGPIOA + 1:
			port := reg - RegGPIOA
			dir := f.reg[RegIODIRA+port]
			in := byte(f.inputs >> (8 * port))
			r[i] = in&dir | f.reg[RegOLATA+port]&^dir
		default:
			r[i] = f.reg[reg]
		}
		at++
	}
	return nil
}

// SetInputs sets the levels the pins read while they are inputs: bit 0 is
// GPA0, bit 8 GPB0.
func (f *MCP23017) SetInputs(v uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = v
}

// SetInput sets the level one input pin reads.
func (f *MCP23017) SetInput(bit int, high bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if high {
		f.inputs |= 1 << bit
	} else {
		f.inputs &^= 1 << bit
	}
}

// SetFailing makes every transaction fail (true) or work again.
func (f *MCP23017) SetFailing(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// SetReg sets a register, as a previous run of the chip would have left
// it.
func (f *MCP23017) SetReg(reg int, v byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reg[reg] = v
}

// Reg returns a register.
func (f *MCP23017) Reg(reg int) byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reg[reg]
}

// Txs returns how many transactions the chip saw.
func (f *MCP23017) Txs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.txs
}

// Level returns the level the chip drives on bit (0 GPA0, 8 GPB0): 1 or 0
// from its latch where the pin is an output, -1 for an input.
func (f *MCP23017) Level(bit int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	port, b := bit/8, byte(1)<<(bit%8)
	if f.reg[RegIODIRA+port]&b != 0 {
		return -1
	}
	if f.reg[RegOLATA+port]&b != 0 {
		return 1
	}
	return 0
}
