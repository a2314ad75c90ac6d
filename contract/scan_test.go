package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name, in string
		ok       bool
		syntax   bool // refused as not JSON at all
	}{
		{"object", `{"id":"a","type":"t","data":{"n":-1.5e+3,"b":[true,false,null],"s":"\u00e9\"\\\/\b\f\n\r\t"}}`, true, false},
		{"scalars", ` 0 `, true, false},
		{"empty containers", `{"a":{},"b":[],"c":[{}]}`, true, false},
		{"utf-8", `{"name":"Grüße, 鍵 🔑"}`, true, false},
		{"surrogate pair", `{"name":"\ud83d\udd11"}`, true, false},
		{"same name in two objects", `{"a":{"x":1},"b":{"x":2},"x":3}`, true, false},
		{"depth at limit", deep(MaxDepth), true, false},

		{"member twice", `{"id":"a","id":"b"}`, false, false},
		{"member in another case", `{"type":"sync.snapshot","Type":"key.upsert"}`, false, false},
		{"upper case alone in data", `{"data":{"Name":"x"}}`, false, false},
		{"kelvin sign folds to k", `{"data":{"` + "\u212a" + `ey_id":"x"}}`, false, false},
		{"long s folds to s", `{"data":{"` + "\u017f" + `tatus":"x"}}`, false, false},
		{"escaped name", `{"\u0074ype":"t"}`, false, false},
		{"twice deep inside", `{"a":[{"b":{"c":1,"c":2}}]}`, false, false},
		{"invalid utf-8 in a value", "{\"name\":\"a\xffb\"}", false, false},
		{"invalid utf-8 in a name", "{\"n\xc3\":1}", false, false},
		{"truncated utf-8", "\"\xe2\x82\"", false, false},
		{"lone high surrogate", `"\ud800"`, false, false},
		{"lone low surrogate", `"\udc00x"`, false, false},
		{"high then not low", `"\ud800\u0041"`, false, false},
		{"too deep", deep(MaxDepth + 1), false, false},

		{"empty", ``, false, true},
		{"trailing", `{} {}`, false, true},
		{"trailing comma", `{"a":1,}`, false, true},
		{"array trailing comma", `[1,]`, false, true},
		{"missing colon", `{"a" 1}`, false, true},
		{"bare word", `{"a":tru}`, false, true},
		{"leading zero", `01`, false, true},
		{"bare minus", `-`, false, true},
		{"dot without digits", `1.`, false, true},
		{"exponent without digits", `1e+`, false, true},
		{"control in string", "\"a\nb\"", false, true},
		{"bad escape", `"\x"`, false, true},
		{"short unicode escape", `"\u12"`, false, true},
		{"unterminated", `{"a":"b`, false, true},
		{"mismatched close", `[1}`, false, true},
		{"name not a string", `{a:1}`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckJSON = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckJSON accepted it")
			}
			if got := errors.Is(err, ErrSyntax); got != tc.syntax {
				t.Errorf("errors.Is(%v, ErrSyntax) = %v", err, got)
			}
			if tc.syntax && json.Valid([]byte(tc.in)) {
				t.Errorf("a syntax error, but json.Valid takes it")
			}
		})
	}
}

// The envelope laxness of issue 13, each refused with the id it carried.
func TestParseCommandStrict(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	for _, tc := range []struct {
		name, payload, id string
	}{
		{"type twice in two cases", `{"id":"a","type":"sync.snapshot","Type":"key.upsert","data":{}}`, "a"},
		{"type twice", `{"id":"a","type":"state.get","type":"bin.open"}`, "a"},
		{"upper-case data member", `{"id":"a","type":"key.upsert","data":{"key_id":"k","Name":"x"}}`, "a"},
		{"duplicate data member", `{"id":"a","type":"key.upsert","data":{"key_id":"k","key_id":"l"}}`, "a"},
		{"invalid utf-8 in a name", "{\"id\":\"a\",\"type\":\"key.upsert\",\"data\":{\"key_id\":\"k\",\"name\":\"caf\xe9\"}}", "a"},
		{"deep data before the id", `{"type":"x","data":` + deep + `,"id":"deep-1"}`, "deep-1"},
		{"deep data after the id", `{"id":"deep-2","type":"x","data":` + deep + `}`, "deep-2"},
		{"id of the wrong type", `{"id":["a"],"type":"state.get"}`, ""},
		{"type of the wrong type", `{"id":"a","type":1}`, "a"},
		{"expires_at of the wrong type", `{"id":"a","type":"state.get","expires_at":1}`, "a"},
		{"id with bad utf-8", "{\"id\":\"a\xff\",\"type\":\"state.get\"}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := ParseCommand([]byte(tc.payload), DefaultLimits)
			if CodeOf(err) != CodeCmdInvalid {
				t.Fatalf("err = %v, want %s", err, CodeCmdInvalid)
			}
			if cmd.ID != tc.id {
				t.Errorf("id %q, want %q", cmd.ID, tc.id)
			}
		})
	}
}

func TestDecodeDataStrict(t *testing.T) {
	var d struct {
		Name string `json:"name"`
		Bin  int    `json:"bin"`
	}
	for _, in := range []string{`{"Name":"x"}`, `{"name":"x","name":"y"}`, "{\"name\":\"\xff\"}", `{"bin":"1"}`, `{"bin":1.5}`, `{"name":1}`} {
		if err := DecodeData([]byte(in), &d); CodeOf(err) != CodeCmdInvalid {
			t.Errorf("DecodeData(%q) = %v, want %s", in, err, CodeCmdInvalid)
		}
	}
	if err := DecodeData([]byte(`{"name":"x","bin":2}`), &d); err != nil || d.Name != "x" || d.Bin != 2 {
		t.Errorf("DecodeData = %v, %+v", err, d)
	}
}

// FuzzCheckJSON holds the scanner to encoding/json: it never takes what
// json.Valid refuses, its syntax errors are json.Valid's too, and what
// json.Valid takes it refuses only for a rule of its own.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"id":"a","type":"t","data":{"x":[1,2.5e-3,"\u00e9",null,true]}}`, `[[[]]]`, `"\ud83d\udd11"`,
		`{"a":1,"a":2}`, `{"A":1}`, "\"\xff\"", `-0.0E+1`, `{"a" : [ ] , "b" : { } }`, `01`, `"\u"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := CheckJSON(raw)
		valid := json.Valid(raw)
		switch {
		case err == nil && !valid:
			t.Fatalf("CheckJSON took %q, which json.Valid refuses", raw)
		case errors.Is(err, ErrSyntax) && valid:
			t.Fatalf("CheckJSON: %v, but json.Valid takes %q", err, raw)
		case err == nil:
			// Accepted: then encoding/json reads it the same, names and all.
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber() // 1E700 is JSON, if no float64
			var v any
			if e := dec.Decode(&v); e != nil {
				t.Fatalf("json.Unmarshal(%q) = %v", raw, e)
			}
		}
		_ = PeekID(raw) // never panics, whatever the input
	})
}

// snapshotPayload is a sync.snapshot envelope of about size bytes.
func snapshotPayload(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":"snap-1","type":"sync.snapshot","data":{"version":7,"keys":[],"access_codes":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"access_code_id":"ac-%07d","code":"%08d","name":"Guest %d \u00e9t\u00e9","type":"time_bound","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-12-31T00:00:00Z","key_id":"key-%05d","action":"pickup"}`, i, i, i, i%50000)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

func BenchmarkCheckJSON(b *testing.B) {
	raw := snapshotPayload(20 << 20)
	b.SetBytes(int64(len(raw)))
	b.Run("CheckJSON", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if err := CheckJSON(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if !json.Valid(raw) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("ParseCommand", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := ParseCommand(raw, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestMembers(t *testing.T) {
	m, err := Members([]byte(` {"version":"v1", "keys":[{"a":1},{}] ,"access_codes":[],"n":null,"o":{"x":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": `"v1"`, "keys": `[{"a":1},{}]`, "access_codes": `[]`, "n": `null`, "o": `{"x":[1]}`}
	if len(m) != len(want) {
		t.Errorf("members %q", m)
	}
	for k, v := range want {
		if string(m[k]) != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	for _, bad := range []string{`[1]`, `{"a":1,"a":2}`, `{"a":`, `{"A":1}`} {
		if _, err := Members([]byte(bad)); err == nil {
			t.Errorf("Members(%q) took it", bad)
		}
	}
}
