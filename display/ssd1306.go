package display

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ssd1306"
)

// SSD1306 is a 128x64 monochrome OLED on an SSD1306, on I2C, through
// periph's ssd1306 driver. It shows the model's few characters (digits, b,
// E, r, -, space) as large block glyphs, four cells across: a 5x7 font
// scaled Scale times, each glyph centred in its 32-pixel cell.
type SSD1306 struct {
	dev *ssd1306.Dev
	buf [ssdW * ssdH / 8]byte
}

var _ Driver = (*SSD1306)(nil)

// The panel's geometry.
const (
	ssdW, ssdH = 128, 64
	ssdCells   = 4
	// Scale is how many pixels square one dot of the 5x7 font takes.
	Scale      = 4
	glyphW     = 5
	glyphH     = 7
	cellW      = ssdW / ssdCells
	glyphLeft  = (cellW - glyphW*Scale) / 2 // within a cell
	glyphTop   = (ssdH - glyphH*Scale) / 2
	ssdDefault = 0x3C
)

// Glyphs is the 5x7 font of the characters the model shows: '#' is a lit
// dot. A character not here is blank.
var Glyphs = map[rune][glyphH]string{
	'0': {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5': {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6': {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8': {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	'b': {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### "},
	'E': {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'r': {"     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    "},
	'-': {"     ", "     ", "     ", "#####", "     ", "     ", "     "},
}

// addrBus puts every transaction at one address: periph's driver talks
// to 0x3C only, and a display can be strapped to 0x3D.
type addrBus struct {
	i2c.Bus
	addr uint16
}

func (b addrBus) Tx(_ uint16, w, r []byte) error { return b.Bus.Tx(b.addr, w, r) }

func (b addrBus) SetSpeed(f physic.Frequency) error { return b.Bus.SetSpeed(f) }

// NewSSD1306 sets up an SSD1306 at addr (0x3C when zero) on bus and blanks
// it.
func NewSSD1306(bus i2c.Bus, addr uint16) (*SSD1306, error) {
	if addr == 0 {
		addr = ssdDefault
	}
	opts := ssd1306.DefaultOpts
	dev, err := ssd1306.NewI2C(addrBus{bus, addr}, &opts)
	if err != nil {
		return nil, fmt.Errorf("%w: ssd1306 at %#x: %w", ErrDisplay, addr, err)
	}
	d := &SSD1306{dev: dev}
	if err := d.Show(""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDisplay, err)
	}
	return d, nil
}

// Show draws text.
func (d *SSD1306) Show(text string) error {
	clear(d.buf[:])
	for cell, c := range Cells(text, ssdCells) {
		g, ok := Glyphs[c]
		if !ok {
			continue
		}
		for gy, line := range g {
			for gx := range glyphW {
				if line[gx] != '#' {
					continue
				}
				x0, y0 := cell*cellW+glyphLeft+gx*Scale, glyphTop+gy*Scale
				for y := y0; y < y0+Scale; y++ {
					for x := x0; x < x0+Scale; x++ {
						d.buf[y/8*ssdW+x] |= 1 << (y % 8)
					}
				}
			}
		}
	}
	if _, err := d.dev.Write(d.buf[:]); err != nil {
		return fmt.Errorf("display: ssd1306: %w", err)
	}
	return nil
}

// Halt blanks the display and turns it off.
func (d *SSD1306) Halt() error { return errors.Join(d.Show(""), d.dev.Halt()) }
