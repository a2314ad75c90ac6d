// Package sysclock tells whether the system clock can be trusted: a board
// without a real-time clock boots in 1970 and is right only once NTP (or
// another time source) has synchronised it.
package sysclock

// Synced reports whether the kernel considers the system clock
// synchronised. On Linux that is adjtimex(2) not reporting STA_UNSYNC; where
// the kernel cannot say, the clock is trusted.
func Synced() bool { return synced() }
