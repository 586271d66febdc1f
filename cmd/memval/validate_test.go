package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/scenarios"
)

func TestValidateFlags(t *testing.T) {
	var got *validateOptions
	c := newValidateCmdWith(streams{}, func(_ context.Context, o *validateOptions) error { got = o; return nil })
	c.SetArgs([]string{"spec.yaml", "--device", "sim", "--out", "o", "--interval", "5ms", "--formula", "seed",
		"--tolerance", "5%", "--json", "--sim-step", "1ms"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.spec != "spec.yaml" || got.device != "sim" || got.out != "o" || got.interval != 5*time.Millisecond ||
		got.formula != "seed" || got.tolerance != "5%" || !got.json || got.simStep != time.Millisecond {
		t.Errorf("got %+v", got)
	}
	c = newValidateCmdWith(streams{}, func(_ context.Context, o *validateOptions) error { got = o; return nil })
	c.SetArgs([]string{"spec.yaml"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.device != "auto" || got.out != "" || got.json {
		t.Errorf("defaults: got device %q, out %q, json %v; want auto, empty, false", got.device, got.out, got.json)
	}
}

func TestValidateBadInputIsUsageError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("model: gpt2\nbatch: 8\nseq: 64\nprecision: fp8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("model: gpt5\nbatch: 8\nseq: 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join("..", "..", "scenarios", "gpt2-b1-s256-fp32.yaml")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad field", []string{bad}, "bad.yaml:4: field precision:"},
		{"unknown preset", []string{unknown}, `unknown model preset "gpt5"`},
		{"missing file", []string{filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"bad tolerance", []string{good, "--tolerance", "lots"}, `--tolerance "lots"`},
		{"bad formula", []string{good, "--formula", "guess"}, `--formula: "guess" is not one of`},
		{"calibrated without file", []string{good, "--formula", "calibrated"}, "needs --calibration"},
		{"no spec", nil, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errw := runCLI(t, append([]string{"validate", "--device", "sim", "--out", t.TempDir()}, tt.args...)...)
			if code != exitUsage || !strings.Contains(errw, tt.want) {
				t.Errorf("got exit %d, stderr %q; want %d and %q", code, errw, exitUsage, tt.want)
			}
		})
	}
}

// TestValidateStarterSpecsOnSim runs `memval validate` on the simulated
// device for every starter spec: each writes a complete result.json and
// exits 0 (pass, or an OOM the formula predicted) or 1 (a miss).
func TestValidateStarterSpecsOnSim(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "scenarios", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no starter specs (%v)", err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".yaml")
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			code, stdout, errw := runCLI(t, "validate", p, "--device", "sim", "--sim-step", "1ms", "--out", out)
			res, err := schema.ReadResult(filepath.Join(out, "result.json"))
			if err != nil {
				t.Fatalf("exit %d, stderr %q: %v", code, errw, err)
			}
			var sc scenarios.Scenario
			if err := json.Unmarshal(res.Scenario, &sc); err != nil {
				t.Fatalf("scenario: %v", err)
			}
			if code != sc.Verdict.ExitCode || (code != 0 && code != 1) {
				t.Errorf("got exit %d with verdict %s (exit %d); want the verdict's 0 or 1", code, sc.Verdict.Status, sc.Verdict.ExitCode)
			}
			if !strings.Contains(stdout, sc.Verdict.Status+": ") || !strings.Contains(stdout, "*breakdown") {
				t.Errorf("report lacks the verdict or the selected formula:\n%s", stdout)
			}
			if sc.Spec.Expect == scenarios.ExpectOOM {
				if res.Summary.Status != schema.StatusOOM || sc.Verdict.Status != scenarios.VerdictOOMPredicted || code != 0 {
					t.Errorf("OOM spec: got status %s, verdict %s, exit %d; want oom, oom-predicted, 0", res.Summary.Status, sc.Verdict.Status, code)
				}
			} else if res.Summary.Status != schema.StatusOK || len(res.Comparisons) == 0 {
				t.Errorf("got status %s with %d comparisons, want ok and comparisons", res.Summary.Status, len(res.Comparisons))
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	out := t.TempDir()
	code, stdout, errw := runCLI(t, "validate", filepath.Join("..", "..", "scenarios", "gpt2-b1-s256-fp32.yaml"),
		"--device", "sim", "--sim-step", "1ms", "--out", out, "--json", "--tolerance", "900%")
	if code != 0 {
		t.Fatalf("got exit %d with a 900%% tolerance, want 0 (stderr %q)", code, errw)
	}
	var res schema.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not result.json: %v", err)
	}
	if len(res.Predictions) == 0 || len(res.Scenario) == 0 {
		t.Errorf("got %d predictions and scenario %q, want both", len(res.Predictions), res.Scenario)
	}
}
