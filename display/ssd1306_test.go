package display

import (
	"bytes"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// ssdInit is the SSD1306's init sequence as periph's driver sends it for a
// 128x64 panel (datasheet p. 64): display off, offset 0, start line 0,
// segment remap, COM scan reversed, COM pins alternative, contrast 0xFF,
// RAM content, normal, oscillator 0xF0, charge pump on, pre-charge 0xF1,
// VCOMH 0x40, no scroll, multiplex 63, horizontal addressing, columns
// 0-127, pages 0-7, display on.
var ssdInit = []byte{0x00,
	0xAE, 0xD3, 0x00, 0x40, 0xA1, 0xC8, 0xDA, 0x12, 0x81, 0xFF, 0xA4, 0xA6,
	0xD5, 0xF0, 0x8D, 0x14, 0xD9, 0xF1, 0xDB, 0x40, 0x2E, 0xA8, 0x3F,
	0x20, 0x00, 0x21, 0x00, 0x7F, 0x22, 0x00, 0x07, 0xAF}

// The conversation of NewSSD1306 at 0x3D: the init sequence, then the
// blank first frame, page by page.
func TestSSD1306InitConversation(t *testing.T) {
	ops := []i2ctest.IO{{Addr: 0x3D, W: ssdInit}}
	for page := range 8 {
		ops = append(ops,
			i2ctest.IO{Addr: 0x3D, W: []byte{0x00, 0xB0 | byte(page), 0x00, 0x10}},
			i2ctest.IO{Addr: 0x3D, W: append([]byte{0x40}, make([]byte, 128)...)})
	}
	bus := &i2ctest.Playback{Ops: ops}
	if _, err := NewSSD1306(bus, 0x3D); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSSD1306NoAnswer(t *testing.T) {
	if _, err := NewSSD1306(&i2ctest.Playback{DontPanic: true}, 0); err == nil {
		t.Fatal("NewSSD1306 on a bus where nothing answers: no error")
	}
}

// gddram replays recorded writes into the controller's display RAM, in
// page addressing as the driver uses it.
func gddram(t *testing.T, ops []i2ctest.IO) [8][128]byte {
	t.Helper()
	var ram [8][128]byte
	page, col := 0, 0
	for _, op := range ops {
		if op.Addr != 0x3C || len(op.W) == 0 {
			t.Fatalf("op %+v", op)
		}
		switch op.W[0] {
		case 0x00:
			for _, c := range op.W[1:] {
				switch {
				case c&0xF8 == 0xB0:
					page = int(c & 7)
				case c&0xF0 == 0x00:
					col = col&0xF0 | int(c&0x0F)
				case c&0xF0 == 0x10:
					col = col&0x0F | int(c&0x0F)<<4
				}
			}
		case 0x40:
			for _, b := range op.W[1:] {
				ram[page][col] = b
				col = (col + 1) % 128
			}
		}
	}
	return ram
}

// One frame: "b 7" as large glyphs, drawn where the geometry says and
// nowhere else.
func TestSSD1306Frame(t *testing.T) {
	rec := &i2ctest.Record{}
	d, err := NewSSD1306(rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Ops[0].W, ssdInit) {
		t.Fatalf("init % x", rec.Ops[0].W)
	}
	if err := d.Show("b 7"); err != nil {
		t.Fatal(err)
	}
	ram := gddram(t, rec.Ops[1:])
	lit := func(x, y int) bool { return ram[y/8][x]&(1<<(y%8)) != 0 }

	art := map[int][]string{ // cell -> its glyph; cells 1 and 3 blank
		0: {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### "},
		2: {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	}
	var want [64][128]bool
	for cell, rows := range art {
		for gy, row := range rows {
			for gx, c := range row {
				for dy := range 4 {
					for dx := range 4 {
						want[18+gy*4+dy][cell*32+6+gx*4+dx] = c == '#'
					}
				}
			}
		}
	}
	bad := 0
	for y := range 64 {
		for x := range 128 {
			if lit(x, y) != want[y][x] {
				bad++
			}
		}
	}
	if bad > 0 {
		var b strings.Builder
		for y := range 64 {
			for x := range 128 {
				if lit(x, y) {
					b.WriteByte('#')
				} else {
					b.WriteByte('.')
				}
			}
			b.WriteByte('\n')
		}
		t.Fatalf("%d pixels wrong; the display shows:\n%s", bad, b.String())
	}

	n := len(rec.Ops)
	if err := d.Show("b 7"); err != nil {
		t.Fatal(err)
	}
	if len(rec.Ops) != n {
		t.Errorf("the same frame again wrote %d transactions", len(rec.Ops)-n)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	last := rec.Ops[len(rec.Ops)-1].W
	if !bytes.Equal(last, []byte{0x00, 0xAE}) {
		t.Errorf("Halt's last write % x, want 00 ae (display off)", last)
	}
	if ram := gddram(t, rec.Ops[1:]); ram != ([8][128]byte{}) {
		t.Error("Halt left pixels lit")
	}
}
