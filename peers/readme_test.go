package peers

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEPeersTable keeps the README's peers table from drifting from
// the code: the peers' own figures come from make peers (Python, minutes)
// and are not rerun here, but what Go alone decides is checked: the number
// of truth specs and published measurements in the table's first line, and
// memval's cells on the published corpus (its breakdown on each
// measurement's basis). A change to the breakdown that moves memval's
// published error fails here until make peers is rerun and the README
// updated.
func TestREADMEPeersTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- peers-table: from make peers", "<!-- peers-table: end -->"
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md: no peers table between %q and %q", begin, end)
	}
	table := s[i:j]
	cases, err := PublishedCases(filepath.Join("..", "scenarios", "published"), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range TruthSpecs(false) {
		cases = append(cases, Case{Set: SetTruth})
	}
	var md bytes.Buffer
	rep := Compare(cases, nil, nil)
	rep.Markdown(&md)
	want := strings.SplitN(md.String(), "\n", 2)[0]
	if !strings.Contains(table, want) {
		t.Errorf("README.md peers table: first line is not\n%s\n(the case counts moved: rerun make peers and paste peers-out/report.md)", want)
	}
	var mine []string
	for _, l := range strings.Split(md.String(), "\n") {
		if strings.HasPrefix(l, "| "+Memval+" |") {
			mine = strings.Split(l, "|")
		}
	}
	var theirs []string
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "| "+Memval+" |") {
			theirs = strings.Split(l, "|")
		}
	}
	if mine == nil || len(theirs) != len(mine) {
		t.Fatalf("README.md peers table: memval row %q, want %d cells like %q", theirs, len(mine), mine)
	}
	for k, col := range Columns {
		if col.Set != SetPublished {
			continue
		}
		if got, want := strings.TrimSpace(theirs[2+k]), strings.TrimSpace(mine[2+k]); got != want {
			t.Errorf("README.md peers table: memval's %q is %q, the code gives %q: rerun make peers and paste peers-out/report.md", col.Title, got, want)
		}
	}
}
