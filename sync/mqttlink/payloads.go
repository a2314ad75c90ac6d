package mqttlink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrBadAck is returned by ParseAck for a payload that is not an ack.
var ErrBadAck = errors.New("mqttlink: malformed event ack")

// maxAckPayload is the largest ack payload read; an ack is a few bytes.
const maxAckPayload = 1024

// maxIDLen is the longest command id a reply echoes, as the box's.
const maxIDLen = 256

// ParseAck reads an event ack, {"seq":N}: a JSON object whose "seq" is an
// integer from 0 up. Other members are allowed and ignored.
func ParseAck(payload []byte) (uint64, error) {
	if len(payload) > maxAckPayload {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadAck, len(payload))
	}
	var a struct {
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(payload, &a); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadAck, err)
	}
	if a.Seq == nil {
		return 0, fmt.Errorf("%w: no seq", ErrBadAck)
	}
	return *a.Seq, nil
}

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

// status is the payload of P/status.
type status struct {
	Online  bool       `json:"online"`
	Version string     `json:"version"`
	BootID  string     `json:"boot_id"`
	At      *time.Time `json:"at,omitempty"`
}

// statusPayload encodes a status; at is nil for the last will, which is
// written when the connection is made, not when it is lost.
func (l *Link) statusPayload(online bool, at *time.Time) []byte {
	s := status{Online: online, Version: l.cfg.Version, BootID: l.cfg.BootID}
	if at != nil {
		t := at.UTC().Truncate(time.Millisecond)
		s.At = &t
	}
	b, _ := json.Marshal(s) // strings and a time: cannot fail
	return b
}

// skipValue is a JSON value read and thrown away.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// peekEnvelope reads the top-level "id" and "type" strings of a command
// without keeping the rest, for a payload too large to parse. It returns
// what it could read before anything went wrong; an id longer than a
// reply may echo is dropped.
func peekEnvelope(payload []byte) (id, typ string) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := t.(string)
		var raw json.RawMessage
		switch key {
		case "id", "type":
			if err := dec.Decode(&raw); err != nil {
				return clampID(id), typ
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				if key == "id" {
					id = s
				} else {
					typ = s
				}
			}
		default:
			if err := dec.Decode(&skipValue{}); err != nil {
				return clampID(id), typ
			}
		}
	}
	return clampID(id), typ
}

func clampID(id string) string {
	if len(id) > maxIDLen {
		return ""
	}
	return id
}
