package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Out-of-range values are usage errors whose message names the flag or the
// file and field, and says what is wrong.
func TestRangeErrorsNameTheCulprit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"model_type":"gpt2","n_embd":"768","n_layer":12,"n_head":12,"vocab_size":50257,"n_positions":1024}`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bigBatch := spec("big.yaml", "name: big\nmodel: gpt2\nbatch: 1000000000000\nseq: 128\n")
	manySteps := spec("steps.yaml", "name: steps\nmodel: gpt2\nbatch: 1\nseq: 128\nsteps: 2000000000\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"estimate", "--model", "gpt2", "--dropout", "-0.5"}, "--dropout -0.5: must be a probability in [0, 1)"},
		{[]string{"estimate", "--model", "gpt2", "--dropout", "1"}, "--dropout 1: must be a probability"},
		{[]string{"estimate", "--model", "gpt2", "--sp"}, "--sp needs --tp 2 or more"},
		{[]string{"estimate", "--model", "gpt2", "--seq", "3000000000"}, "--seq 3000000000: out of range"},
		{[]string{"estimate", "--model", "gpt2", "--batch", "3000000000"}, "--batch 3000000000: out of range"},
		{[]string{"estimate", "--model", "gpt2", "--zero", "4"}, "--zero 4"},
		{[]string{"estimate", "--model", "gpt2", "--tp", "0"}, "--tp 0"},
		{[]string{"estimate", "--config", cfg}, `field "n_embd" = "768": is a string where an integer is expected`},
		{[]string{"validate", bigBatch, "--device", "sim", "--out", dir}, "big.yaml:3: field batch: 1000000000000 is out of range"},
		{[]string{"validate", manySteps, "--device", "sim", "--out", dir}, "field steps: 2000000000 is out of range"},
		{[]string{"validate", bigBatch, "--device", "sim", "--interval", "1h"}, "--interval 1h0m0s: want 100µs to 1m0s"},
		{[]string{"validate", bigBatch, "--device", "sim", "--sim-step", "-1s"}, "--sim-step -1s"},
		{[]string{"sweep", "g.yaml", "--jobs", "100000"}, "--jobs 100000: give 1 to 256"},
	}
	for _, tc := range tests {
		code, _, errw := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(errw, tc.want) {
			t.Errorf("%q: got exit %d, stderr %q; want %d and %q", tc.args, code, errw, exitUsage, tc.want)
		}
	}
	// In range: --sp with --tp 2 and a dropout of 0 are fine.
	if code, _, errw := runCLI(t, "estimate", "--model", "gpt2", "--sp", "--tp", "2", "--dropout", "0"); code != 0 {
		t.Errorf("--sp --tp 2 --dropout 0: got exit %d, stderr %q", code, errw)
	}
}
