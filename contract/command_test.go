package contract

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		payload, id, code string
	}{
		{`{"id":"a","type":"state.get"}`, "a", ""},
		{`{"id":"a","type":"bin.open","data":{"bin":1},"expires_at":"2030-01-01T00:00:00Z"}`, "a", ""},
		{`not json`, "", CodeCmdInvalid},
		{`{"id":"a"}`, "a", CodeCmdInvalid},
		{`{"type":"state.get"}`, "", CodeCmdInvalid},
		{`{"id":7,"type":"state.get"}`, "", CodeCmdInvalid},
		{`{"id":"a","type":"state.get","extra":1}`, "a", CodeCmdInvalid},
		{`{"id":"a","type":"state.get","data":[1]}`, "a", CodeCmdInvalid},
		{`{"id":"a","type":"state.get","expires_at":"tomorrow"}`, "a", CodeCmdInvalid},
		{`{"id":"a","type":"state.get"} {}`, "a", CodeCmdInvalid},
		{`[]`, "", CodeCmdInvalid},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			cmd, err := ParseCommand([]byte(tc.payload), DefaultLimits)
			if cmd.ID != tc.id {
				t.Errorf("id %q, want %q", cmd.ID, tc.id)
			}
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := CodeOf(err); got != tc.code {
				t.Errorf("code %q, want %q (%v)", got, tc.code, err)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"id":"a","type":"state.get"}`, `{"id":"","type":""}`, `{"id":"a","type":"x","data":{"a":1},"expires_at":"2030-01-01T00:00:00Z"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		before := bytes.Clone(payload)
		cmd, err := ParseCommand(payload, DefaultLimits)
		if !bytes.Equal(payload, before) {
			t.Fatalf("ParseCommand changed its payload %q to %q", before, payload)
		}
		if err != nil {
			if CodeOf(err) != CodeCmdInvalid {
				t.Fatalf("parse error code %s", CodeOf(err))
			}
			return
		}
		if cmd.ID == "" || cmd.Type == "" {
			t.Fatalf("accepted %q without id or type", payload)
		}
		// The data passed on is the data member, as encoding/json reads it.
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", payload, err)
		}
		if d := bytes.TrimSpace(env.Data); !bytes.Equal(d, []byte("null")) && !bytes.Equal(d, cmd.Data) {
			t.Fatalf("data %q, encoding/json reads %q", cmd.Data, d)
		}
	})
}
