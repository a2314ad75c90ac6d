package weekly_test

import (
	"fmt"
	"time"

	"smartboxd/internal/weekly"
)

func ExampleSchedule_Active() {
	s, err := weekly.Parse([]byte(`{"time_zone":"Europe/Berlin","weekly":[{"days":["fri"],"from":"22:00","to":"02:00"}]}`))
	if err != nil {
		panic(err)
	}
	berlin := s.Location()
	for _, t := range []time.Time{
		time.Date(2025, 6, 13, 21, 59, 0, 0, berlin), // Friday
		time.Date(2025, 6, 14, 1, 59, 0, 0, berlin),  // Saturday
		time.Date(2025, 6, 14, 2, 0, 0, 0, berlin),
	} {
		fmt.Println(t.Format("Mon 15:04"), s.Active(t))
	}
	// Output:
	// Fri 21:59 false
	// Sat 01:59 true
	// Sat 02:00 false
}
