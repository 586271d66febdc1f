package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
)

// fitRuns is the fit package's fixture: 26 result.json folders of a
// simulated H100 (24 usable, one OOM, one crashed), one with a trace.
var fitRuns = filepath.Join("..", "..", "fit", "testdata", "runs")

func TestFitFlags(t *testing.T) {
	var got *fitOptions
	c := newFitCmdWith(streams{}, func(_ context.Context, o *fitOptions) error { got = o; return nil })
	c.SetArgs([]string{"a", "b/*", "--out", "o", "--formula", "seed,breakdown", "--truth", "framework",
		"--group", "H100", "--allow-mixed", "--folds", "5", "--terms", "category"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.results, " ") != "a b/*" || got.out != "o" || strings.Join(got.formulas, ",") != "seed,breakdown" ||
		got.truth != "framework" || got.group != "H100" || !got.allowMixed || got.folds != 5 || got.terms != "category" {
		t.Errorf("got %+v", got)
	}
	c = newFitCmdWith(streams{}, func(_ context.Context, o *fitOptions) error { got = o; return nil })
	c.SetArgs([]string{"a"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.out != "fit-report" || got.truth != "device" || got.folds != 0 || got.allowMixed || got.terms != "auto" {
		t.Errorf("defaults: got %+v", got)
	}
}

func TestFitWritesReportAndCalibration(t *testing.T) {
	out := t.TempDir()
	code, stdout, errw := runCLI(t, "fit", fitRuns, "--out", out)
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"formula", "seed", "toy", "leave-one-out", "report: " + filepath.Join(out, "report.md"), "calibration-seed.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(errw, "tiny-b1-s64") || !strings.Contains(errw, "summary.status") {
		t.Errorf("stderr: want the crashed run's warning naming file and field, got %q", errw)
	}
	for _, f := range []string{"report.md", "timeline.png", "timeline.svg", "predicted-vs-measured-peak.png", "residuals-vs-tokens.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	cal, err := analytic.LoadCalibration(filepath.Join(out, "calibration-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cal.Formula != "seed" || cal.Fitted.Runs != 24 || cal.CVError.Method != "leave-one-out" || cal.Steady == nil {
		t.Errorf("calibration: got formula %q, %d runs, method %q, steady %v", cal.Formula, cal.Fitted.Runs, cal.CVError.Method, cal.Steady)
	}
}

func TestFitBadInput(t *testing.T) {
	out := t.TempDir()
	for _, args := range [][]string{
		{"fit"},
		{"fit", filepath.Join(out, "none")},
		{"fit", fitRuns, "--truth", "vibes"},
		{"fit", fitRuns, "--folds", "1"},
		{"fit", fitRuns, "--formula", "nope"},
		{"fit", fitRuns, "--group", "A100"},
		{"fit", fitRuns, "--terms", "groups"},
	} {
		code, _, errw := runCLI(t, append(args, "--out", out)...)
		if code != exitUsage {
			t.Errorf("%v: got exit %d (stderr %q), want %d", args, code, errw, exitUsage)
		}
	}
}
