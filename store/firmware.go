package store

// metaFirmware is the meta key of the Firmware record.
var metaFirmware = []byte("firmware")

// Firmware is what the box keeps of firmware updates (contract §11), beside
// its state so that a restored database keeps its floor.
type Firmware struct {
	// Floor is the highest version the box ever committed; no update
	// below it is taken.
	Floor string `json:"floor,omitempty"`
	// Pending is the update being downloaded, resumed after a restart.
	Pending *FirmwarePending `json:"pending,omitempty"`
	// Reported is the seq of the last rollback reported as an event.
	Reported uint64 `json:"reported,omitempty"`
}

// FirmwarePending is an accepted update: its manifest JWS and its URL.
type FirmwarePending struct {
	Manifest string `json:"manifest"`
	URL      string `json:"url"`
}

// Firmware returns the firmware record; the zero record when none was
// written.
func (t *Tx) Firmware() (Firmware, error) {
	var f Firmware
	_, err := getJSON(t.meta(), metaFirmware, &f)
	return f, err
}

// PutFirmware writes the firmware record.
func (t *Tx) PutFirmware(f Firmware) error { return putJSON(t.meta(), metaFirmware, f) }
