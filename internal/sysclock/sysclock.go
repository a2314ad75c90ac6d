// Package sysclock tells whether the system clock can be trusted: a board
// without a real-time clock boots in 1970 and is right only once NTP (or
// another time source) has synchronised it.
package sysclock

// Synced reports whether the kernel considers the system clock
// synchronised. On Linux that is adjtimex(2) answering and not reporting
// STA_UNSYNC or TIME_ERROR; any error reading the clock's state (EPERM under
// a sandbox that forbids even a read-only adjtimex, say) means the clock is
// not trusted. Elsewhere, where the kernel cannot say, the clock is trusted.
func Synced() bool { return synced() }
