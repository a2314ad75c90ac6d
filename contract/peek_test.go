package contract

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPeekID(t *testing.T) {
	long := strings.Repeat("i", MaxIDLen+1)
	for _, tc := range []struct {
		in, id string
	}{
		{`{"id":"a","type":"sync.snapshot","data":{"x":[1,2,{"type":"no"}]}}`, "a"},
		{`{"data":{"id":"inner"},"type":"bin.open","id":"b"}`, "b"},
		{`{"id":5,"type":["x"]}`, ""},
		{`{"id":"` + long + `","type":"t"}`, ""},
		{`{"id":"c","type":"t","data":{"unterminated`, "c"},
		{`{"type":"t","data":{"unterminated`, ""},
		{`not json`, ""},
		{`["id","type"]`, ""},
		{`{"id":"d","id":"e"}`, "e"},
		{`{"data":` + strings.Repeat("[", 100) + `,"id":"f"}`, ""},
		{`{"data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"id":"g"}`, "g"},
		{"{\"Name\":\"\xff\",\"id\":\"h\"}", "h"},
		{`{"id":"\u0041"}`, "A"},
		{`{"id":"\ud800"}`, ""},
	} {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			if id := PeekID([]byte(tc.in)); id != tc.id {
				t.Errorf("peek = %q; want %q", id, tc.id)
			}
		})
	}
}

func FuzzPeekID(f *testing.F) {
	f.Add([]byte(`{"id":"a","type":"sync.snapshot","data":{}}`))
	f.Add([]byte(`{"id":"a","type":1}`))
	f.Add([]byte(`{"id":"a"`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		id := PeekID(payload)
		if len(id) > MaxIDLen {
			t.Fatalf("id of %d bytes", len(id))
		}
		// On a well-formed envelope the peek agrees with a full decode.
		var env struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if json.Unmarshal(payload, &env) == nil && len(env.ID) <= MaxIDLen && CheckJSON(payload) == nil && validStrings(payload) {
			if id != env.ID {
				t.Fatalf("peek %q, decode %q", id, env.ID)
			}
		}
	})
}

// validStrings reports whether payload is an object whose "id" and "type"
// members, when present, are strings and appear once (where a full decode
// and the peek may rightly differ otherwise). Keys are compared as
// encoding/json does, case-insensitively.
func validStrings(payload []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return false
	}
	seen := map[string]int{}
	for k, v := range m {
		lk := strings.ToLower(k)
		if lk != "id" && lk != "type" {
			continue
		}
		seen[lk]++
		if k != lk {
			return false
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return false
		}
	}
	return seen["id"] <= 1 && seen["type"] <= 1 && !duplicateKeys(payload)
}

// duplicateKeys reports whether the top-level object repeats a key.
func duplicateKeys(payload []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if _, err := dec.Token(); err != nil {
		return true
	}
	keys := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return true
		}
		k := strings.ToLower(t.(string))
		if keys[k] {
			return true
		}
		keys[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return true
		}
	}
	return false
}
