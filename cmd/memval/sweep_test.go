package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSweepFlags(t *testing.T) {
	var got *sweepOptions
	c := newSweepCmdWith(streams{}, func(_ context.Context, o *sweepOptions) error { got = o; return nil })
	c.SetArgs([]string{"grid.yaml", "--device", "sim", "--out", "o", "--jobs", "3", "--formula", "seed"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.grid != "grid.yaml" || got.device != "sim" || got.out != "o" || got.jobs != 3 || got.formula != "seed" {
		t.Errorf("got %+v", got)
	}
}

func TestSweepBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(bad, []byte("base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  batch: [1, x]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{bad}, {filepath.Join(dir, "none.yaml")}, {bad, "--jobs", "0"}} {
		code, _, errw := runCLI(t, append([]string{"sweep", "--device", "sim", "--out", dir}, args...)...)
		if code != exitUsage {
			t.Errorf("%v: got exit %d (stderr %q), want %d", args, code, errw, exitUsage)
		}
	}
}

func TestSweepCIGridResumes(t *testing.T) {
	out := t.TempDir()
	grid := filepath.Join("..", "..", "scenarios", "grids", "ci.yaml")
	code, stdout, errw := runCLI(t, "sweep", grid, "--device", "sim", "--sim-step", "1ms", "--out", out)
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	if !strings.Contains(stdout, "ci-b1-fp32-math") || !strings.Contains(stdout, "8 run, 0 skipped") {
		t.Errorf("summary:\n%s", stdout)
	}
	if !strings.Contains(errw, "[8/8] ") {
		t.Errorf("piped progress: want a line per scenario, got %q", errw)
	}
	if err := os.Remove(filepath.Join(out, "ci-b4-bf16-flash", "result.json")); err != nil {
		t.Fatal(err)
	}
	code, stdout, errw = runCLI(t, "sweep", grid, "--device", "sim", "--sim-step", "1ms", "--out", out)
	if code != 0 || !strings.Contains(stdout, "1 run, 7 skipped") || !strings.Contains(errw, "skipped 7 scenario(s)") {
		t.Errorf("rerun: got exit %d, stdout\n%s\nstderr %q", code, stdout, errw)
	}
}

func TestSweepInterruptedExitCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errw strings.Builder
	grid := filepath.Join("..", "..", "scenarios", "grids", "ci.yaml")
	code := run(ctx, []string{"sweep", grid, "--device", "sim", "--sim-step", "1ms", "--out", t.TempDir()}, strings.NewReader(""), &out, &errw)
	if code != 130 || !strings.Contains(errw.String(), "run the same command to resume") {
		t.Errorf("got exit %d, stderr %q; want 130 and how to resume", code, errw.String())
	}
}
