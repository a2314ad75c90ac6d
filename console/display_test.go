package console

import (
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"smartboxd/display"
)

// The display command prints what a real Panel shows and its LEDs.
func TestDisplay(t *testing.T) {
	var panel *display.Panel
	r := newRig(t, func(c *Config) {
		sim := &display.Sim{}
		var err error
		panel, err = display.NewPanel(display.PanelConfig{
			Driver: sim, LEDOn: gpio.High, Clock: c.Clock,
			LEDs: map[int]gpio.PinOut{1: &gpiotest.Pin{N: "l1"}, 2: &gpiotest.Pin{N: "l2"}, 3: &gpiotest.Pin{N: "l3"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Display = func() DisplayStatus {
			st := DisplayStatus{Type: "sim", Text: panel.Text()}
			for bin, l := range panel.LEDs() {
				st.LEDs = append(st.LEDs, LEDStatus{Bin: bin, State: l.String()})
			}
			slices.SortFunc(st.LEDs, func(a, b LEDStatus) int { return a.Bin - b.Bin })
			return st
		}
	})
	tm := r.open()
	tm.login()
	if got := tm.mustOK("display"); !slices.Equal(got[:1], []string{"display: sim: blank"}) {
		t.Errorf("idle: %q", got)
	}
	panel.Opened(2)
	panel.OpenFailed(3)
	lines := tm.mustOK("display")
	if lines[0] != `display: sim: "b 2"` {
		t.Errorf("first line %q", lines[0])
	}
	if h := strings.Fields(lines[1]); !slices.Equal(h, []string{"BIN", "LED"}) {
		t.Errorf("header %q", lines[1])
	}
	for bin, want := range map[string]string{"1": "off", "2": "on", "3": "blink"} {
		if row := table(t, lines, bin); row[1] != want {
			t.Errorf("bin %s led %q, want %s", bin, row[1], want)
		}
	}
	r.clock.Advance(display.DefaultBlinkFor + time.Second)
	panel.SessionEnded(2)
	if row := table(t, tm.mustOK("display"), "3"); row[1] != "off" {
		t.Errorf("bin 3 led after the blinking: %q", row[1])
	}
	if a := r.audited(); !slices.Contains(a, "display") {
		t.Errorf("display not audited: %q", a)
	}

	r2 := newRig(t)
	tm2 := r2.open()
	tm2.login()
	if got := tm2.mustOK("display"); !slices.Equal(got, []string{"no display and no bin LEDs"}) {
		t.Errorf("without a display: %q", got)
	}
}
