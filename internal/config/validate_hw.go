package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"smartboxd/internal/expander"
)

var expanderNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,15}$`)

// hostPin checks a pin that must be one of the host's own GPIOs: a pin
// that needs edge detection or exact timing, which an expander cannot give.
func (v *checker) hostPin(field, name string) {
	if _, _, ok := expander.Split(name); ok {
		v.add(field, "pin %s is an expander pin; this needs a GPIO of the host (expander pins have no edge detection and no fast timing)", name)
		return
	}
	v.pin(field, name)
}

// i2cDevice checks that no other device has the same address on the same
// bus.
func (v *checker) i2cDevice(field, bus string, addr int) {
	key := fmt.Sprintf("%s@%#x", filepath.Clean(bus), addr)
	if other, ok := v.i2c[key]; ok {
		v.add(field, "address %#x on %s already used by %s", addr, bus, other)
		return
	}
	v.i2c[key] = field
}

// checkExpanders checks hardware.expanders and records their names for the
// pin checks that follow.
func (c *Config) checkExpanders(v *checker) {
	for i, e := range c.Hardware.Expanders {
		f := fmt.Sprintf("hardware.expanders[%d]", i)
		if i == 0 {
			c.needsBackend(v, "hardware.expanders", "an expander", "gpio")
		}
		switch _, dup := v.expanders[e.Name]; {
		case e.Name == "":
			v.add(f+".name", "required")
		case !expanderNamePattern.MatchString(e.Name):
			v.add(f+".name", "must be a letter, then up to 15 letters, digits or _, not %q", e.Name)
		case dup:
			v.add(f+".name", "duplicate expander name %s", e.Name)
		}
		typeOK := slices.Contains(expander.Types(), e.Type)
		if !typeOK {
			v.oneOf(f+".type", e.Type, expander.Types()...)
		}
		if e.Name != "" && expanderNamePattern.MatchString(e.Name) {
			if _, dup := v.expanders[e.Name]; !dup {
				v.expanders[e.Name] = e.Type
			}
		}
		busOK := v.required(f+".bus", e.Bus, "")
		if typeOK {
			if err := expander.CheckAddress(e.Type, e.Address); err != nil {
				v.add(f+".address", "%s", strings.TrimPrefix(err.Error(), "expander: "))
				continue
			}
		}
		if busOK {
			v.i2cDevice(f+".address", e.Bus, e.Address)
		}
	}
}

// checkLockOnExpander refuses an active-high lock on a PCF857x: its pins
// are high from power-on until the daemon runs, which would energise the
// lock.
func (c *Config) checkLockOnExpander(v *checker, field, lock string) {
	exp, _, ok := expander.Split(lock)
	if !ok {
		return
	}
	typ, known := v.expanders[exp]
	if known && !expander.Latched(typ) && c.Hardware.LockActive != "low" {
		v.add(field, "a %s pin is high from power-on and would energise an active-high lock: use hardware.lock_active: low, or an mcp23017", typ)
	}
}

func (c *Config) checkDisplay(v *checker) {
	d := c.Hardware.Display
	gpio := c.Hardware.Backend == "gpio"
	switch d.Type {
	case "none":
	case "sim":
		c.needsBackend(v, "hardware.display.type", "a sim display", "sim")
	case "tm1637":
		c.needsBackend(v, "hardware.display.type", "tm1637", "gpio")
		for _, p := range []struct{ field, pin string }{{"hardware.display.clk", d.CLK}, {"hardware.display.dio", d.DIO}} {
			if v.required(p.field, p.pin, " for a tm1637") && gpio {
				v.hostPin(p.field, p.pin)
			}
		}
	case "ssd1306":
		c.needsBackend(v, "hardware.display.type", "ssd1306", "gpio")
		busOK := v.required("hardware.display.bus", d.Bus, " for an ssd1306")
		if d.Address != 0x3c && d.Address != 0x3d {
			v.add("hardware.display.address", "must be 0x3c or 0x3d, not %#x", d.Address)
		} else if busOK {
			v.i2cDevice("hardware.display.address", d.Bus, d.Address)
		}
	case "hd44780":
		c.needsBackend(v, "hardware.display.type", "hd44780", "gpio")
		for _, p := range []struct{ field, pin string }{{"hardware.display.rs", d.RS}, {"hardware.display.e", d.E}} {
			if v.required(p.field, p.pin, " for an hd44780") && gpio {
				v.pin(p.field, p.pin)
			}
		}
		if len(d.Data) != 4 {
			v.add("hardware.display.data", "4 pins required (D4 to D7, 4-bit mode), not %d", len(d.Data))
		}
		for i, p := range d.Data {
			f := fmt.Sprintf("hardware.display.data[%d]", i)
			if v.required(f, p, "") && gpio {
				v.pin(f, p)
			}
		}
	default:
		v.oneOf("hardware.display.type", d.Type, "none", "sim", "tm1637", "ssd1306", "hd44780")
	}
}

func (c *Config) checkPower(v *checker) {
	p := c.Hardware.Power
	switch p.Type {
	case "none":
		return
	case "ina219":
	default:
		v.oneOf("hardware.power.type", p.Type, "none", "ina219")
		return
	}
	c.needsBackend(v, "hardware.power.type", "ina219", "gpio")
	busOK := v.required("hardware.power.bus", p.Bus, " for an ina219")
	if p.Address < 0x40 || p.Address > 0x4f {
		v.add("hardware.power.address", "must be 0x40 to 0x4f, not %#x", p.Address)
	} else if busOK {
		v.i2cDevice("hardware.power.address", p.Bus, p.Address)
	}
	const maxV = 26 // the INA219's bus voltage limit
	batteryOK := p.BatteryBelowV > 0 && p.BatteryBelowV < maxV
	if !batteryOK {
		v.add("hardware.power.battery_below_v", "must be above 0 and below %d V, not %g", maxV, p.BatteryBelowV)
	}
	switch {
	case p.LowBelowV <= 0:
		v.add("hardware.power.low_below_v", "must be above 0 V, not %g", p.LowBelowV)
	case batteryOK && p.LowBelowV >= p.BatteryBelowV:
		v.add("hardware.power.low_below_v", "must be below hardware.power.battery_below_v (%g), not %g", p.BatteryBelowV, p.LowBelowV)
	}
	v.positive("hardware.power.interval_ms", p.IntervalMS)
}

func (c *Config) checkMFRC522(v *checker, f string, r Reader) {
	c.needsBackend(v, f+".type", "mfrc522", "gpio")
	gpio := c.Hardware.Backend == "gpio"
	if v.required(f+".spi", r.SPI, " for an mfrc522 reader") {
		if !strings.HasPrefix(r.SPI, "/dev/spidev") && !strings.HasPrefix(r.SPI, "SPI") {
			v.add(f+".spi", "must be an SPI device such as /dev/spidev0.0, not %q", r.SPI)
		} else {
			v.port(f+".spi", r.SPI)
		}
	}
	if v.required(f+".reset", r.Reset, " for an mfrc522 reader") && gpio {
		v.pin(f+".reset", r.Reset)
	}
	if r.IRQ != "" && gpio {
		v.hostPin(f+".irq", r.IRQ)
	}
}
