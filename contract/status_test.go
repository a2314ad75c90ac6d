package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`{"seq":5}`, 5, true},
		{` {"seq": 18446744073709551615} `, 18446744073709551615, true},
		{`{"seq":0}`, 0, true},
		{`{"seq":7,"box_id":"box-1"}`, 7, true},
		{`{"seq":"5"}`, 0, false},
		{`{"seq":-1}`, 0, false},
		{`{"seq":1.5}`, 0, false},
		{`{"seq":1e3}`, 0, false},
		{`{"seq":18446744073709551616}`, 0, false},
		{`{"seq":null}`, 0, false},
		{`{}`, 0, false},
		{`[5]`, 0, false},
		{`5`, 0, false},
		{`{"seq":5} {"seq":6}`, 0, false},
		{``, 0, false},
		{`{"seq":5,"pad":"` + strings.Repeat("x", MaxAckPayload) + `"}`, 0, false},
	} {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			got, err := ParseAck([]byte(tc.in))
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("ParseAck = %d, %v; want %d ok=%v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadAck) {
				t.Errorf("error %v is not ErrBadAck", err)
			}
		})
	}
}

func FuzzAckPayload(f *testing.F) {
	for _, s := range []string{`{"seq":1}`, `{"seq":"1"}`, `{"seq":-1}`, `{}`, `null`, `{"seq":1,"seq":2}`, `{"seq":1e2}`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		seq, err := ParseAck(payload)
		if err != nil {
			if seq != 0 || !errors.Is(err, ErrBadAck) {
				t.Fatalf("failed parse returned %d, %v", seq, err)
			}
			return
		}
		if !json.Valid(payload) || len(payload) > MaxAckPayload {
			t.Fatalf("accepted %q", payload)
		}
		again, err := ParseAck(fmt.Appendf(nil, `{"seq":%d}`, seq))
		if err != nil || again != seq {
			t.Fatalf("seq %d does not round-trip: %d %v", seq, again, err)
		}
	})
}
