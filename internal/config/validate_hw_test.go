package config

import (
	"slices"
	"strings"
	"testing"
)

func TestHardwareRules(t *testing.T) {
	const (
		x1     = "{name: x1, type: mcp23017, bus: /dev/i2c-1, address: 0x20}"
		p1     = "{name: p1, type: pcf8574, bus: /dev/i2c-1, address: 0x38}"
		gpio   = "box_id: b1\ndata_dir: /d\nhardware:\n  backend: gpio\n"
		oneBin = "  bins: [{id: 1, lock: GPIO17}]\n"
	)
	hw := func(lines ...string) string { return gpio + strings.Join(lines, "") }
	tests := []struct {
		name string
		doc  string
		want []string
		msg  string
	}{
		{"expander pins", hw("  expanders: ["+x1+"]\n", "  bins: [{id: 1, lock: 'x1:GPA0', door: 'x1:GPB0', led: 'x1:gpa1'}]\n"), nil, ""},
		{"expander and host pins", hw("  expanders: ["+x1+", "+p1+"]\n", "  lock_active: low\n", "  bins: [{id: 1, lock: GPIO17, led: 'p1:P0'}, {id: 2, lock: 'p1:P1', door: 'x1:GPB7'}]\n"), nil, ""},
		{"pin of an unknown expander", hw("  bins: [{id: 1, lock: 'x9:GPA0'}]\n"), []string{"hardware.bins[0].lock"}, `no expander "x9"`},
		{"pin the expander lacks", hw("  expanders: ["+x1+"]\n", "  bins: [{id: 1, lock: 'x1:GPA8'}]\n"), []string{"hardware.bins[0].lock"}, "GPA0 to GPB7"},
		{"pcf pin name on an mcp", hw("  expanders: ["+x1+"]\n", "  bins: [{id: 1, lock: 'x1:P0'}]\n"), []string{"hardware.bins[0].lock"}, "no such pin"},
		{"expander pin used twice", hw("  expanders: ["+x1+"]\n", "  bins: [{id: 1, lock: 'x1:GPA0', led: 'x1:gpa0'}]\n"), []string{"hardware.bins[0].led"}, "already used"},
		{"active-high lock on a pcf", hw("  expanders: ["+p1+"]\n", "  bins: [{id: 1, lock: 'p1:P0'}]\n"), []string{"hardware.bins[0].lock"}, "lock_active: low"},
		{"expander type unknown", hw("  expanders: [{name: x1, type: mcp23s17, bus: /dev/i2c-1, address: 0x20}]\n", oneBin), []string{"hardware.expanders[0].type"}, "mcp23008, mcp23017, pcf8574 or pcf8575"},
		{"expander name duplicate", hw("  expanders: ["+x1+", {name: x1, type: mcp23017, bus: /dev/i2c-1, address: 0x21}]\n", oneBin), []string{"hardware.expanders[1].name"}, "duplicate"},
		{"expander name missing", hw("  expanders: [{type: mcp23017, bus: /dev/i2c-1, address: 0x20}]\n", oneBin), []string{"hardware.expanders[0].name"}, "required"},
		{"expander name with a colon", hw("  expanders: [{name: 'x:1', type: mcp23017, bus: /dev/i2c-1, address: 0x20}]\n", oneBin), []string{"hardware.expanders[0].name"}, "letter"},
		{"expander bus missing", hw("  expanders: [{name: x1, type: mcp23017, address: 0x20}]\n", oneBin), []string{"hardware.expanders[0].bus"}, "required"},
		{"expander address out of range", hw("  expanders: [{name: x1, type: mcp23017, bus: /dev/i2c-1, address: 0x38}]\n", oneBin), []string{"hardware.expanders[0].address"}, "0x20 to 0x27"},
		{"pcf8574a address", hw("  expanders: [{name: x1, type: pcf8574, bus: /dev/i2c-1, address: 0x3f}]\n", oneBin), nil, ""},
		{"two expanders one address", hw("  expanders: ["+x1+", {name: x2, type: pcf8574, bus: /dev/i2c-1, address: 0x20}]\n", oneBin), []string{"hardware.expanders[1].address"}, "hardware.expanders[0].address"},
		{"one address on two buses", hw("  expanders: ["+x1+", {name: x2, type: mcp23017, bus: /dev/i2c-0, address: 0x20}]\n", oneBin), nil, ""},
		{"expanders on sim", "box_id: b1\ndata_dir: /d\nhardware: {expanders: [" + x1 + "], bins: [{id: 1}]}\n", []string{"hardware.expanders"}, "gpio backend"},
		{"led_active bad", hw("  led_active: dim\n", oneBin), []string{"hardware.led_active"}, "high or low"},
		{"wiegand on an expander", hw("  expanders: ["+x1+"]\n", oneBin) + "readers: [{type: wiegand, d0: 'x1:GPA0', d1: GPIO6, bin: 1}]\n", []string{"readers[0].d0"}, "edge detection"},

		{"tm1637", hw(oneBin, "  display: {type: tm1637, clk: GPIO20, dio: GPIO21}\n"), nil, ""},
		{"tm1637 dio missing", hw(oneBin, "  display: {type: tm1637, clk: GPIO20}\n"), []string{"hardware.display.dio"}, "required"},
		{"tm1637 on an expander", hw("  expanders: ["+x1+"]\n", oneBin, "  display: {type: tm1637, clk: 'x1:GPA0', dio: GPIO21}\n"), []string{"hardware.display.clk"}, "expander pin"},
		{"tm1637 pin shared", hw(oneBin, "  display: {type: tm1637, clk: GPIO17, dio: GPIO21}\n"), []string{"hardware.display.clk"}, "hardware.bins[0].lock"},
		{"ssd1306", hw(oneBin, "  display: {type: ssd1306, bus: /dev/i2c-1}\n"), nil, ""},
		{"ssd1306 address", hw(oneBin, "  display: {type: ssd1306, bus: /dev/i2c-1, address: 0x3e}\n"), []string{"hardware.display.address"}, "0x3c or 0x3d"},
		{"hd44780 on an expander", hw("  expanders: ["+p1+"]\n", oneBin, "  display: {type: hd44780, rs: 'p1:P0', e: 'p1:P2', data: ['p1:P4', 'p1:P5', 'p1:P6', 'p1:P7']}\n"), nil, ""},
		{"hd44780 three data pins", hw(oneBin, "  display: {type: hd44780, rs: GPIO5, e: GPIO6, data: [GPIO12, GPIO13, GPIO16]}\n"), []string{"hardware.display.data"}, "4 pins"},
		{"display type bad", hw(oneBin, "  display: {type: oled}\n"), []string{"hardware.display.type"}, "none, sim, tm1637, ssd1306 or hd44780"},
		{"sim display on gpio", hw(oneBin, "  display: {type: sim}\n"), []string{"hardware.display.type"}, "sim backend"},
		{"tm1637 on sim", "box_id: b1\ndata_dir: /d\nhardware: {display: {type: tm1637, clk: a, dio: b}, bins: [{id: 1}]}\n", []string{"hardware.display.type"}, "gpio backend"},

		{"ina219", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: 11.8, low_below_v: 11}\n"), nil, ""},
		{"ina219 whole volts", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: 12, low_below_v: 11}\n"), nil, ""},
		{"ina219 low above battery", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: 11.8, low_below_v: 11.8}\n"), []string{"hardware.power.low_below_v"}, "below hardware.power.battery_below_v"},
		{"ina219 battery missing", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, low_below_v: 11}\n"), []string{"hardware.power.battery_below_v"}, "above 0"},
		{"ina219 battery absurd", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: 48, low_below_v: 11}\n"), []string{"hardware.power.battery_below_v"}, "below 26"},
		{"ina219 address", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, address: 0x50, battery_below_v: 11.8, low_below_v: 11}\n"), []string{"hardware.power.address"}, "0x40 to 0x4f"},
		{"ina219 volts not a number", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: low, low_below_v: 11}\n"), []string{"hardware.power.battery_below_v"}, "number"},
		{"ina219 interval", hw(oneBin, "  power: {type: ina219, bus: /dev/i2c-1, battery_below_v: 11.8, low_below_v: 11, interval_ms: 0}\n"), []string{"hardware.power.interval_ms"}, "positive"},
		{"power type bad", hw(oneBin, "  power: {type: ups}\n"), []string{"hardware.power.type"}, "none or ina219"},

		{"mfrc522", hw(oneBin) + "readers: [{type: mfrc522, spi: /dev/spidev0.0, reset: GPIO25, irq: GPIO24, bin: 1}]\n", nil, ""},
		{"mfrc522 without irq, reset on an expander", hw("  expanders: ["+x1+"]\n", oneBin) + "readers: [{type: mfrc522, spi: /dev/spidev0.0, reset: 'x1:GPA7', bin: 1}]\n", nil, ""},
		{"mfrc522 spi missing", hw(oneBin) + "readers: [{type: mfrc522, reset: GPIO25, bin: 1}]\n", []string{"readers[0].spi"}, "required"},
		{"mfrc522 spi not spi", hw(oneBin) + "readers: [{type: mfrc522, spi: /dev/ttyUSB0, reset: GPIO25, bin: 1}]\n", []string{"readers[0].spi"}, "SPI device"},
		{"mfrc522 reset missing", hw(oneBin) + "readers: [{type: mfrc522, spi: /dev/spidev0.0, bin: 1}]\n", []string{"readers[0].reset"}, "required"},
		{"mfrc522 irq on an expander", hw("  expanders: ["+x1+"]\n", oneBin) + "readers: [{type: mfrc522, spi: /dev/spidev0.0, reset: GPIO25, irq: 'x1:GPA0', bin: 1}]\n", []string{"readers[0].irq"}, "edge detection"},
		{"mfrc522 on sim", "box_id: b1\ndata_dir: /d\nhardware: {bins: [{id: 1}]}\nreaders: [{type: mfrc522, spi: /dev/spidev0.0, reset: a, bin: 1}]\n", []string{"readers[0].type"}, "gpio backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.doc)
			if got := ps.Fields(); !slices.Equal(got, tt.want) {
				t.Fatalf("problems on %q, want %q:\n%v", got, tt.want, ps.Error())
			}
			if len(ps) > 0 && !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("message %q does not say %q", ps[0].Message, tt.msg)
			}
		})
	}
}

func TestPi24Config(t *testing.T) {
	t.Parallel()
	c, err := Parse(configFile(t, "pi-24bin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hardware
	if h.Backend != "gpio" || len(h.Bins) != 24 || len(c.Readers) != 24 || len(h.Expanders) != 3 ||
		h.Display.Type != "ssd1306" || h.Power.Type != "ina219" || h.LockActive != "high" {
		t.Fatalf("config = %+v", h)
	}
	for _, e := range h.Expanders {
		if e.Type != "mcp23017" || e.Bus != "/dev/i2c-1" {
			t.Errorf("expander %+v", e)
		}
	}
	for _, b := range h.Bins {
		// Locks on the latched expanders, doors on the Pi, an LED each.
		if !strings.HasPrefix(b.Lock, "x1:") && !strings.HasPrefix(b.Lock, "x2:GPA") {
			t.Errorf("bin %d lock %s is not on x1 or x2 port A", b.ID, b.Lock)
		}
		if !strings.HasPrefix(b.Door, "GPIO") || b.LED == "" {
			t.Errorf("bin %d door %q led %q", b.ID, b.Door, b.LED)
		}
		if r := c.ReaderForBin(b.ID); r == nil || r.Type != "rdm6300" {
			t.Errorf("bin %d reader %+v", b.ID, r)
		}
	}
}
