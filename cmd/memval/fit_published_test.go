package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFitPublishedCorpus(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	opts := &fitOptions{results: []string{filepath.Join("..", "..", "scenarios", "published")}, out: out,
		truth: "device", terms: "auto", stdout: &stdout, stderr: &stderr}
	if err := runFit(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"measurements from", "| breakdown | allocated |", "report:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## By source", "## Out of memory", "## Not yet expressible", "| torch.compile |", "predicted the OOM"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// Published measurements that cannot be evaluated leave nothing to compare:
// a usage error that says so.
func TestFitPublishedNotEvaluatedOnly(t *testing.T) {
	var stdout, stderr bytes.Buffer
	one := filepath.Join("..", "..", "scenarios", "published", "peft", "lora-rank32-dora", "result.json")
	opts := &fitOptions{results: []string{one}, out: t.TempDir(), truth: "device", terms: "auto", stdout: &stdout, stderr: &stderr}
	err := runFit(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "none of the 1 published measurements can be evaluated") {
		t.Errorf("got %v", err)
	}
}
