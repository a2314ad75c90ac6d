package offline

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEShowsTheVectors holds the README's table of test vectors to
// testdata/vectors.md, byte for byte, between its marker comments.
func TestREADMEShowsTheVectors(t *testing.T) {
	const begin, end = "<!-- offline vectors begin: offline/testdata/vectors.md -->\n", "<!-- offline vectors end -->"
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/vectors.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), begin)
	if !ok {
		t.Fatalf("README.md lacks %q", begin)
	}
	got, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("README.md lacks %q after the vectors", end)
	}
	if got != string(want) {
		t.Fatalf("README.md's vectors differ from testdata/vectors.md:\n%s\nwant:\n%s", got, want)
	}
}
