package fob

import "bytes"

// Frame bytes of an RDM6300-style reader.
const (
	stx = 0x02
	etx = 0x03

	rdmDigits   = 12 // ten data digits and two checksum digits
	rdmFrameLen = 1 + rdmDigits + 1
)

// DecoderCounts are the counters of an RDM6300 decoder.
type DecoderCounts struct {
	Frames      uint64 // good frames
	BadChecksum uint64 // complete frames whose checksum is wrong
	Noise       uint64 // bytes dropped: outside frames, in broken frames, all-zero tags
}

// RDM6300 decodes the byte stream of an RDM6300-style (EM4100) reader. A
// frame is STX, ten ASCII hex digits (2 version + 8 tag), two ASCII hex
// digits of the XOR of the five data bytes, ETX. An STX anywhere starts a
// frame afresh, so the decoder resynchronises after any damage; partial
// frames, non-hex digits, bad checksums and all-zero tags are dropped and
// counted, and stray bytes between frames (such as the CR LF some clones
// send) are counted as noise. Hex digits may be lower case; serials are
// upper case.
//
// The zero value is ready to use. An RDM6300 is not safe for concurrent
// use.
type RDM6300 struct {
	buf    [rdmDigits]byte
	n      int  // digits in buf
	in     bool // an STX was seen and its frame is not over
	counts DecoderCounts
}

// Feed decodes p, which continues the bytes fed before, and calls emit with
// the serial of each good frame completed in p: the ten hex digits in upper
// case, such as "0A1B2C3D4E".
func (d *RDM6300) Feed(p []byte, emit func(serial string)) {
	for _, c := range p {
		switch {
		case c == stx:
			if d.in {
				d.counts.Noise += uint64(1 + d.n) // the frame so far
			}
			d.in, d.n = true, 0
		case !d.in:
			d.counts.Noise++
		case d.n < rdmDigits && hexVal(c) >= 0:
			d.buf[d.n] = c
			d.n++
		case d.n == rdmDigits && c == etx:
			d.in = false
			d.finish(emit)
		default: // a frame broken by c
			d.counts.Noise += uint64(1 + d.n + 1)
			d.in, d.n = false, 0
		}
	}
}

// finish checks a complete frame in buf.
func (d *RDM6300) finish(emit func(string)) {
	var b [rdmDigits / 2]byte
	for i := range b {
		b[i] = byte(hexVal(d.buf[2*i])<<4 | hexVal(d.buf[2*i+1]))
	}
	d.n = 0
	if b[0]^b[1]^b[2]^b[3]^b[4] != b[5] {
		d.counts.BadChecksum++
		return
	}
	if b[1]|b[2]|b[3]|b[4] == 0 {
		d.counts.Noise += rdmFrameLen // an all-zero tag: no fob has it
		return
	}
	d.counts.Frames++
	emit(string(bytes.ToUpper(d.buf[:10])))
}

// Reset drops a partial frame, counting its bytes as noise, so that the
// next bytes start afresh (after a reopen of the port).
func (d *RDM6300) Reset() {
	if d.in {
		d.counts.Noise += uint64(1 + d.n)
	}
	d.in, d.n = false, 0
}

// Counts returns the decoder's counters.
func (d *RDM6300) Counts() DecoderCounts { return d.counts }

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
