// Package fob runs the fob readers in the bins and reports which fob is
// present in which bin.
//
// Each reader watches one bin and reports to a Sink, which the device
// implements: FobPresent on the first good frame of a fob (and again when a
// different fob is read), FobAbsent when no good frame came for AbsentAfter
// (timing.fob_absent_ms, 600 ms by default), ReaderFault (by bin) when the reader's
// port fails and ReaderOK when it is back.
//
// # Readers
//
// SerialReader reads an RDM6300-style 125 kHz reader on a serial port (9600
// 8N1): 14-byte frames of STX, ten hex digits (2 version + 8 tag), two hex
// digits of XOR checksum, ETX, repeated while a fob is in the field. The fob
// serial is the ten hex digits in upper case. RDM6300 is the frame decoder
// on its own. MFRC522Reader polls an MFRC522 13.56 MHz reader on SPI
// (periph's mfrc522 low-level commands) for ISO 14443A cards; the fob serial
// is the card's UID, 4, 7 or 10 bytes in upper-case hex. WiegandReader reads
// 26- or 34-bit card frames from a Wiegand framer (see package
// internal/wiegand) and turns each card into a serial in the configured
// format.
//
// # Presence
//
// Presence is worked out from repeated reads: a fob is present while good
// frames keep coming and absent once none came for AbsentAfter. An in-bin
// Wiegand reader must therefore repeat its reads while a card is in the
// field, as the RDM6300 does; a reader that sends one frame per card
// presentation makes every fob look removed after AbsentAfter.
//
// At start, and again after a fault, a reader makes one first report
// before any other: FobPresent on a good frame, or FobAbsent after
// AbsentAfter of silence, so the device can reconcile its inventory. While
// a reader is faulted, presence is unknown and nothing is reported until it
// recovers.
//
// # Caveats
//
// Sink methods are called from the reader's goroutines, one call at a time
// per reader and in order. They must return promptly and must not wait for
// the reader: a blocked Sink blocks the reader. Bad checksums, parity
// errors, partial frames and noise are counted in Stats and never change
// what is reported.
package fob
