// Package deptest keeps the house's shape: which project packages each
// package may import (data flows fob/keypad -> device -> store, and sync
// over device; lower packages never import higher ones), and that every
// package says what it is in a doc comment.
package deptest
