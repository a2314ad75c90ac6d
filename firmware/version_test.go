package firmware

import (
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		ok   bool
	}{
		{"1.4.0", Version{1, 4, 0}, true},
		{"0.0.0", Version{}, true},
		{"10.20.30", Version{10, 20, 30}, true},
		{"2147483647.0.1", Version{2147483647, 0, 1}, true},
		{"2147483648.0.0", Version{}, false},
		{"01.2.3", Version{}, false},
		{"1.2", Version{}, false},
		{"1.2.3.4", Version{}, false},
		{"v1.2.3", Version{}, false},
		{"1.2.3-rc1", Version{}, false},
		{"1.2.3+meta", Version{}, false},
		{"1..3", Version{}, false},
		{"-1.2.3", Version{}, false},
		{"+1.2.3", Version{}, false},
		{" 1.2.3", Version{}, false},
		{"dev", Version{}, false},
		{"", Version{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVersion(tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("ParseVersion(%q) = %v, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is not ErrVersion", err)
			}
			if err == nil && got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.4.0", "1.3.9", true},
		{"1.10.0", "1.9.0", true}, // numbers, not strings
		{"2.0.0", "1.99.99", true},
		{"1.4.0", "1.4.0", false},
		{"1.3.9", "1.4.0", false},
		{"0.0.1", "dev", true}, // a development build is older than any release
		{"dev", "0.0.1", false},
		{"dev", "test", false},
		{"1.0.0", "", true},
		{"", "1.0.0", false},
	} {
		if got := Newer(tc.a, tc.b); got != tc.want {
			t.Errorf("Newer(%q, %q) = %t, want %t", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.4.0", "0.0.0", "01.2.3", "1.2.3-rc1", "4294967296.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("%q parses to %v, which prints %q", s, v, v.String())
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%v is not equal to itself", v)
		}
	})
}
