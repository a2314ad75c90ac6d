package store

import (
	"reflect"
	"testing"
)

// TestFirmwareRecord holds the firmware record across a reopen, and the
// zero record before it is first written.
func TestFirmwareRecord(t *testing.T) {
	db, dir := openTest(t, Options{})
	view(t, db, func(tx *Tx) error {
		f, err := tx.Firmware()
		if err != nil || !reflect.DeepEqual(f, Firmware{}) {
			t.Errorf("Firmware() before a write = %+v, %v; want the zero record", f, err)
		}
		return nil
	})
	want := Firmware{Floor: "1.4.0", Pending: &FirmwarePending{Manifest: "a.b.c", URL: "https://example.com/f"}, Reported: 3}
	update(t, db, func(tx *Tx) error { return tx.PutFirmware(want) })
	db.Close()
	db = openAt(t, dir, Options{})
	view(t, db, func(tx *Tx) error {
		f, err := tx.Firmware()
		if err != nil || !reflect.DeepEqual(f, want) {
			t.Errorf("Firmware() after a reopen = %+v, %v; want %+v", f, err, want)
		}
		return nil
	})
}
