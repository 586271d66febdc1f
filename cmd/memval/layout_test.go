package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandFilesStayThin: what a command decides lives outside package
// main, so no file of it grows to 250 lines.
func TestCommandFilesStayThin(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files here: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n >= 250 {
			t.Errorf("%s has %d lines, want under 250: move what it decides into a package", f, n)
		}
	}
}
