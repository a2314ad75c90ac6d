package mqttlink

import (
	"encoding/json"
	"time"

	"smartboxd/contract"
)

// eventSeq reads the seq of an event payload, 0 when it has none.
func eventSeq(payload []byte) uint64 {
	var e struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(payload, &e) != nil {
		return 0
	}
	return e.Seq
}

// statusPayload encodes a status of the session numbered session; at is nil for the last will, which is
// written when the connection is made, not when it is lost.
func (l *Link) statusPayload(online bool, session uint64, at *time.Time) []byte {
	s := contract.Status{Online: online, Version: l.cfg.Version, BootID: l.cfg.BootID, Session: session, SealKey: l.cfg.SealKey}
	if l.cfg.Firmware != nil {
		f := l.cfg.Firmware()
		s.Firmware = &f
	}
	if at != nil {
		t := at.UTC().Truncate(time.Millisecond)
		s.At = &t
	}
	b, _ := json.Marshal(s) // strings and a time: cannot fail
	return b
}
