package console

// Bytes the line editor treats specially.
const (
	keyInterrupt = 0x03 // Ctrl-C: abandon the line
	keyBackspace = 0x08
	keyTab       = 0x09
	keyLF        = 0x0a
	keyCR        = 0x0d
	keyKill      = 0x15 // Ctrl-U: erase the line
	keyDEL       = 0x7f
)

// line is one line the editor finished.
type line struct {
	text      string // printable ASCII only, at most MaxLine bytes
	noise     int    // bytes dropped from it
	tooLong   bool   // it passed MaxLine; text is empty
	interrupt bool   // abandoned with Ctrl-C; text is empty
}

// editor builds lines out of a byte stream. Its zero value is ready.
type editor struct {
	buf     []byte
	noise   int
	tooLong bool
	afterCR bool // the last byte ended a line with CR
}

// feed takes one byte and reports a finished line.
func (e *editor) feed(b byte) (line, bool) {
	if e.afterCR {
		e.afterCR = false
		if b == keyLF || b == 0 {
			return line{}, false // the rest of a CR LF or CR NUL
		}
	}
	switch {
	case b == keyCR || b == keyLF:
		e.afterCR = b == keyCR
		l := line{text: string(e.buf), noise: e.noise, tooLong: e.tooLong}
		if l.tooLong {
			l.text = ""
		}
		e.reset()
		return l, true
	case b == keyInterrupt:
		e.reset()
		return line{interrupt: true}, true
	case e.tooLong:
		// The rest of an over-long line is discarded.
	case b == keyBackspace || b == keyDEL:
		if n := len(e.buf); n > 0 {
			e.buf = e.buf[:n-1]
		}
	case b == keyKill:
		e.reset()
	case b == keyTab:
		e.add(' ')
	case b < 0x20 || b > 0x7e:
		e.noise++
	default:
		e.add(b)
	}
	return line{}, false
}

func (e *editor) add(b byte) {
	if len(e.buf) >= MaxLine {
		e.tooLong = true
		e.buf = e.buf[:0]
		return
	}
	e.buf = append(e.buf, b)
}

func (e *editor) reset() {
	e.buf = e.buf[:0]
	e.noise = 0
	e.tooLong = false
}
