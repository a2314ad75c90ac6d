package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is the payload of P/status. The last will carries no At: it is
// written when the connection is made, not when it is lost.
type Status struct {
	Online  bool   `json:"online"`
	Version string `json:"version"`
	BootID  string `json:"boot_id"`
	// Session is the number of the MQTT connection the status was sent on
	// or, in the last will, registered with (§9): it rises by one on every
	// connection the box makes, across restarts, so a will older than the
	// latest "online":true can be told and ignored.
	Session uint64 `json:"session"`
	// SealKey is the box's X25519 public key, base64, that codes are
	// sealed to (§7).
	SealKey string `json:"seal_key,omitempty"`
	// Firmware is what the box runs (§11); absent when the daemon has no
	// firmware directory.
	Firmware *Firmware  `json:"firmware,omitempty"`
	At       *time.Time `json:"at,omitempty"`
}

// Firmware is the firmware part of the status: the committed version (the
// one the box runs when no trial is on) and the version on trial, or null.
type Firmware struct {
	Committed string  `json:"committed"`
	Trial     *string `json:"trial"`
}

// ErrBadAck is returned by ParseAck for a payload that is not an ack.
var ErrBadAck = errors.New("contract: malformed event ack")

// MaxAckPayload is the largest ack payload read; an ack is a few bytes.
const MaxAckPayload = 1024

// ParseAck reads an event ack, {"seq":N}: a JSON object whose "seq" is an
// integer from 0 up. Other members are allowed and ignored.
func ParseAck(payload []byte) (uint64, error) {
	if len(payload) > MaxAckPayload {
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

// Topics are the MQTT topics of one box, under P = <prefix>/<box id>.
type Topics struct {
	Status, State, Events, Ack, Cmd, Reply string
}

// DefaultTopicPrefix is the topic prefix when none is configured.
const DefaultTopicPrefix = "smartbox"

// TopicsFor returns the topics of box under prefix ("" is the default).
func TopicsFor(prefix, box string) Topics {
	if prefix == "" {
		prefix = DefaultTopicPrefix
	}
	p := prefix + "/" + box
	return Topics{
		Status: p + "/status",
		State:  p + "/state",
		Events: p + "/events",
		Ack:    p + "/events/ack",
		Cmd:    p + "/cmd",
		Reply:  p + "/cmd/reply",
	}
}

// ParseSignedAck reads the payload of a signed event ack (§7),
// {"box_id":..,"seq":N}, strictly: both members, nothing else.
func ParseSignedAck(payload []byte) (boxID string, seq uint64, err error) {
	if len(payload) > MaxAckPayload {
		return "", 0, fmt.Errorf("%w: %d bytes", ErrBadAck, len(payload))
	}
	var a struct {
		BoxID *string `json:"box_id"`
		Seq   *uint64 `json:"seq"`
	}
	if err := DecodeStrict(payload, &a); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrBadAck, err)
	}
	if a.BoxID == nil || a.Seq == nil {
		return "", 0, fmt.Errorf("%w: box_id and seq are required", ErrBadAck)
	}
	return *a.BoxID, *a.Seq, nil
}
