package store

import "testing"

// TestNextSessionSurvivesReopen: the session number starts at 1, rises by
// one per call and goes on from where it was after the file is reopened.
func TestNextSessionSurvivesReopen(t *testing.T) {
	db, dir := openTest(t, Options{})
	if n, err := db.Session(); err != nil || n != 0 {
		t.Fatalf("fresh Session = %d, %v; want 0", n, err)
	}
	for want := uint64(1); want <= 3; want++ {
		if n, err := db.NextSession(); err != nil || n != want {
			t.Fatalf("NextSession = %d, %v; want %d", n, err, want)
		}
	}
	db.Close()
	db = openAt(t, dir, Options{})
	if n, err := db.Session(); err != nil || n != 3 {
		t.Fatalf("reopened Session = %d, %v; want 3", n, err)
	}
	if n, err := db.NextSession(); err != nil || n != 4 {
		t.Fatalf("reopened NextSession = %d, %v; want 4", n, err)
	}
}
