// Package expander drives I2C GPIO expanders and names their pins, so that
// a bin's lock, door sensor and LED can sit on an expander as well as on a
// Pi GPIO.
//
// An expander's pins are named NAME:PIN, NAME being the expander's name in
// the configuration and PIN the pin's name in the chip's datasheet:
//
//	mcp23017  GPA0 ... GPA7, GPB0 ... GPB7
//	mcp23008  GP0 ... GP7
//	pcf8574   P0 ... P7
//	pcf8575   P00 ... P07, P10 ... P17
//
// CheckPin and CheckAddress validate names and addresses without hardware,
// for the config's -check. Open opens one chip on an i2c.Bus; a Set of open
// chips resolves a pin name to a gpio.PinIO, and falls back to gpioreg for
// the Pi's own pins.
//
// The chips are driven through periph's mcp23xxx and pcf857x drivers, with
// three things added that the box needs from them.
//
// # Safety at start
//
// Open writes the chip before anything else uses it, and writes its output
// latches first: every output latch of an MCP23xxx is set to Config.Idle
// (the level that leaves a lock de-energised), and only then is every pin
// made an input. A chip that kept driving a lock after a crash is released
// by the first write. When the lock bank later makes a pin an output with
// Out(inactive), the latch already holds the inactive level, so the pin
// never drives anything else, not even for one I2C transaction. A PCF857x
// has no direction register: Open writes all its pins high (its power-on
// state, a weak pull-up), so a lock on a PCF857x must be active low.
//
// # One transaction at a time
//
// The drivers keep register caches without a lock, and every Out is a
// read-modify-write of a whole port. Two goroutines writing pins of one
// port (a lock pulse and an LED blink) could undo each other's write, even
// re-energise a lock. Every pin of a Chip therefore takes the chip's mutex
// for each operation.
//
// # Reads that can fail
//
// The drivers' Read drops I2C errors and returns Low, which a door sensor
// would take for a real level. Read here reads the chip's input register
// itself; on an error it returns the pin's last good level and counts the
// error in Stats, so a flaky bus neither opens nor closes a door.
//
// # Caveats
//
// Expander pins have no edge detection: WaitForEdge returns false at once.
// The lock bank polls its door sensors, so doors work; a Wiegand reader or
// an MFRC522's IRQ needs a Pi GPIO. The MCP23xxx registers are addressed
// with IOCON.BANK = 0, the power-on default. Open does not reset IOCON.
package expander
