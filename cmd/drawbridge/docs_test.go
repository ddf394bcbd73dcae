package main

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestEveryCommandIsDocumented: each command the binary has is in the
// package doc, the README's command table and its tour, so a new command
// comes with its documentation.
func TestEveryCommandIsDocumented(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	doc, readme := read("doc.go"), read("../../README.md")
	tour := readme[strings.Index(readme, "## A tour"):]
	tour = tour[:strings.Index(tour, "\n  internal/")+1]
	for _, name := range slices.Sorted(maps.Keys(commands())) {
		if !strings.Contains(doc, "//   - "+name) && !strings.Contains(doc, ", "+name+":") && !strings.Contains(doc, " "+name+", ") {
			t.Errorf("doc.go does not list command %q", name)
		}
		if !strings.Contains(readme, "| `drawbridge "+name) {
			t.Errorf("README's command table has no row for %q", name)
		}
		if !strings.Contains(tour, " "+name+",") && !strings.Contains(tour, " "+name+"\n") {
			t.Errorf("README's tour does not name command %q", name)
		}
	}
}
