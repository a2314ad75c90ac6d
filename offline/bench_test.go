package offline

import (
	"bytes"
	"fmt"
	"testing"
)

// benchMatch checks a code against n key ids, the right one last.
func benchMatch(b *testing.B, n int) {
	key := bytes.Repeat([]byte{0x42}, KeySize)
	k, err := NewKey(key)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("7f3c2a9e-1b4d-4e8a-9c61-%012d", i)
	}
	s := int64(22233)
	code, err := k.Generate("box-0042", ids[n-1], Dropoff, 4, HourTime(s))
	if err != nil {
		b.Fatal(err)
	}
	p, _ := Parse(code)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := k.Match("box-0042", p, s, ids); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkMatch48 is a pickup with 48 keys checked in.
func BenchmarkMatch48(b *testing.B) { benchMatch(b, 48) }

// BenchmarkMatch1000 is a drop-off with 1,000 keys known.
func BenchmarkMatch1000(b *testing.B) { benchMatch(b, 1000) }

// BenchmarkMatchNoKey is a wrong code against 1,000 keys.
func BenchmarkMatchNoKey(b *testing.B) {
	k, _ := NewKey(bytes.Repeat([]byte{0x42}, KeySize))
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("7f3c2a9e-1b4d-4e8a-9c61-%012d", i)
	}
	p, _ := Parse("24223312345678")
	b.ReportAllocs()
	for b.Loop() {
		k.Match("box-0042", p, 22233, ids)
	}
}

func BenchmarkGenerate(b *testing.B) {
	k, _ := NewKey(bytes.Repeat([]byte{0x42}, KeySize))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Generate("box-0042", "key-1", Pickup, 4, HourTime(22233)); err != nil {
			b.Fatal(err)
		}
	}
}
