// Package wiegand frames and decodes the Wiegand protocol: pulses on two
// lines, D0 for a 0 bit and D1 for a 1 bit, a frame ending after a gap.
package wiegand

// Frame is one burst of bits, first bit received in the most significant
// position of the N low bits of Bits.
type Frame struct {
	Bits uint64
	N    int
}
