package offline_test

import (
	"encoding/hex"
	"fmt"
	"time"

	"smartboxd/offline"
)

// The key of testdata/vectors.json.
var key, _ = hex.DecodeString("88ce97a628c0a458999c5a346cdf70e366a6e5029bac45ba6c30c5d54cf9138d")

// A cloud makes a code for a guest.
func ExampleGenerate() {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	code, err := offline.Generate(key, "box-0042", "key-1", offline.Pickup, 1, start)
	if err != nil {
		panic(err)
	}
	fmt.Println(code)
	// Output: 11000095031223
}

// A box checks a code entered at its keypad against the keys checked in.
func ExampleKey_Match() {
	k, err := offline.NewKey(key)
	if err != nil {
		panic(err)
	}
	p, err := offline.Parse("11000095031223")
	if err != nil {
		panic(err)
	}
	now := time.Date(2024, 1, 1, 1, 30, 0, 0, time.UTC)
	s := p.Start(now)
	from, to := p.Window(s)
	keyID, ok := k.Match("box-0042", p, s, []string{"key-7", "key-1"})
	fmt.Println(p.Mode, s, from.Format(time.RFC3339), to.Format(time.RFC3339), keyID, ok)
	fmt.Println("open:", ok && !now.Before(from) && now.Before(to))
	// Output:
	// pickup 0 2024-01-01T00:00:00Z 2024-01-01T02:00:00Z key-1 true
	// open: true
}
