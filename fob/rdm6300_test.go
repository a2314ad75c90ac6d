package fob

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// rdmFrame builds a frame around ten hex digits with the right checksum.
func rdmFrame(digits string) string {
	var x byte
	for i := 0; i < 10; i += 2 {
		var b byte
		fmt.Sscanf(digits[i:i+2], "%02x", &b)
		x ^= b
	}
	return fmt.Sprintf("\x02%s%02X\x03", digits, x)
}

func TestRDMFrameHelper(t *testing.T) {
	// Worked out by hand: 0A^1B^2C^3D^4E = 4E, 62^E3^08^6C^ED = 08.
	for digits, want := range map[string]string{
		"0A1B2C3D4E": "\x020A1B2C3D4E4E\x03",
		"62E3086CED": "\x0262E3086CED08\x03",
	} {
		if got := rdmFrame(digits); got != want {
			t.Errorf("rdmFrame(%s) = %q, want %q", digits, got, want)
		}
	}
}

func TestRDM6300(t *testing.T) {
	good := "\x020A1B2C3D4E4E\x03"
	other := "\x0262E3086CED08\x03"
	tests := []struct {
		name    string
		in      string
		serials []string
		counts  DecoderCounts
	}{
		{name: "good frame", in: good, serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1}},
		{name: "two fobs", in: good + other, serials: []string{"0A1B2C3D4E", "62E3086CED"}, counts: DecoderCounts{Frames: 2}},
		{name: "lower-case hex", in: "\x020a1b2c3d4e4e\x03", serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1}},
		{name: "mixed-case hex", in: "\x0262e3086Ced08\x03", serials: []string{"62E3086CED"}, counts: DecoderCounts{Frames: 1}},
		{name: "bad checksum", in: "\x020A1B2C3D4E4F\x03", counts: DecoderCounts{BadChecksum: 1}},
		{name: "bad checksum then good", in: "\x0262E3086CED09\x03" + good, serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1, BadChecksum: 1}},
		{name: "partial frame then good", in: "\x020A1B2\x03" + good, serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1, Noise: 7}},
		{name: "STX inside a frame restarts it", in: "\x020A1B2C" + good, serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1, Noise: 7}},
		{name: "STX where ETX belongs", in: "\x020A1B2C3D4E4E" + good, serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1, Noise: 13}},
		{name: "noise bytes", in: "xyz\xff" + good + "\x00\x03", serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1, Noise: 6}},
		{name: "only noise", in: "\x03\x03hello 0A1B2C3D4E4E", counts: DecoderCounts{Noise: 20}},
		{name: "non-hex digit", in: "\x020A1B2G3D4E4E\x03", counts: DecoderCounts{Noise: 14}},
		{name: "digit where ETX belongs", in: "\x020A1B2C3D4E4E0\x03", counts: DecoderCounts{Noise: 15}},
		{name: "all-zero frame", in: "\x02000000000000\x03", counts: DecoderCounts{Noise: 14}},
		{name: "all-zero tag", in: "\x020A000000000A\x03", counts: DecoderCounts{Noise: 14}},
		{name: "CR LF between frames", in: good + "\r\n" + good + "\r\n", serials: []string{"0A1B2C3D4E", "0A1B2C3D4E"}, counts: DecoderCounts{Frames: 2, Noise: 4}},
		{name: "trailing partial frame", in: good + "\x020A1B", serials: []string{"0A1B2C3D4E"}, counts: DecoderCounts{Frames: 1}},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feeds := map[string][][]byte{
				"whole":        {[]byte(tt.in)},
				"byte by byte": chunks([]byte(tt.in), 1),
				"in threes":    chunks([]byte(tt.in), 3),
			}
			for how, parts := range feeds {
				var d RDM6300
				var got []string
				for _, p := range parts {
					d.Feed(p, func(s string) { got = append(got, s) })
				}
				if !slices.Equal(got, tt.serials) {
					t.Errorf("%s: serials = %q, want %q", how, got, tt.serials)
				}
				if d.Counts() != tt.counts {
					t.Errorf("%s: counts = %+v, want %+v", how, d.Counts(), tt.counts)
				}
			}
		})
	}
}

func chunks(p []byte, n int) [][]byte {
	var out [][]byte
	for len(p) > n {
		out = append(out, p[:n])
		p = p[n:]
	}
	return append(out, p)
}

func TestRDM6300Reset(t *testing.T) {
	var d RDM6300
	var got []string
	emit := func(s string) { got = append(got, s) }
	d.Feed([]byte("\x020A1B2C3D"), emit)
	d.Reset() // the port was reopened: the rest of that frame is gone
	d.Feed([]byte("4E4E\x03"), emit)
	if len(got) != 0 {
		t.Fatalf("a frame spanning a reset was decoded: %q", got)
	}
	if want := (DecoderCounts{Noise: 9 + 5}); d.Counts() != want {
		t.Errorf("counts = %+v, want %+v", d.Counts(), want)
	}
	d.Feed([]byte(rdmFrame("62E3086CED")), emit)
	if !slices.Equal(got, []string{"62E3086CED"}) {
		t.Errorf("serials = %q", got)
	}
}

func FuzzRDM6300(f *testing.F) {
	f.Add([]byte("\x020A1B2C3D4E4E\x03"), 3)
	f.Add([]byte("\x020a1b2c3d4e4e\x03\r\n\x0262E3086CED08\x03"), 1)
	f.Add([]byte("\x02\x02\x03\x020A1B2C3D4E4F\x03zz"), 7)
	f.Add([]byte("\x02000000000000\x03"), 0)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var whole RDM6300
		var serials []string
		whole.Feed(in, func(s string) { serials = append(serials, s) })

		folded := bytes.ToUpper(in)
		for _, s := range serials {
			if len(s) != 10 || strings.ToUpper(s) != s {
				t.Fatalf("serial %q is not 10 upper-case hex digits", s)
			}
			frame := rdmFrame(s) // its checksum, worked out again
			if !bytes.Contains(folded, []byte(frame)) {
				t.Fatalf("serial %q: input has no frame %q", s, frame)
			}
			if s[2:] == "00000000" {
				t.Fatalf("serial %q has an all-zero tag", s)
			}
		}
		c := whole.Counts()
		if c.Frames != uint64(len(serials)) {
			t.Fatalf("Frames = %d, emitted %d", c.Frames, len(serials))
		}
		// Every byte is in a good frame, a bad-checksum frame, the noise, or
		// the frame still open.
		pending := uint64(0)
		if whole.in {
			pending = uint64(1 + whole.n)
		}
		if sum := rdmFrameLen*(c.Frames+c.BadChecksum) + c.Noise + pending; sum != uint64(len(in)) {
			t.Fatalf("accounted for %d bytes of %d (%+v, pending %d)", sum, len(in), c, pending)
		}

		// Feeding in two parts changes nothing.
		if split < 0 {
			split = -split
		}
		if len(in) > 0 {
			split %= len(in) + 1
		} else {
			split = 0
		}
		var parts RDM6300
		var again []string
		parts.Feed(in[:split], func(s string) { again = append(again, s) })
		parts.Feed(in[split:], func(s string) { again = append(again, s) })
		if !slices.Equal(again, serials) || parts.Counts() != c {
			t.Fatalf("split at %d: %q %+v, whole: %q %+v", split, again, parts.Counts(), serials, c)
		}
	})
}
