package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
)

// writeCalibration saves a small calibration for formula, fitted on the
// simulated H100 at batch 1..8, seq 128..1024, and returns its path.
func writeCalibration(t *testing.T, formula string, mod func(*analytic.Calibration)) string {
	t.Helper()
	c := &analytic.Calibration{
		Schema: analytic.CalibrationSchema, Formula: formula, Truth: "device",
		GPU: "NVIDIA H100 80GB HBM3", Driver: "550.54.15", Torch: "sim", Simulated: true,
		Fitted: analytic.FittedRange{Runs: 12, Params: analytic.Range{Min: 1e8, Max: 2e9}, Batch: analytic.Range{Min: 1, Max: 8},
			Seq: analytic.Range{Min: 128, Max: 1024}, Tokens: analytic.Range{Min: 128, Max: 8192}},
		CalibratedFit: analytic.CalibratedFit{Quantity: "peak", Terms: analytic.FitPerCategory,
			Coefficients: []analytic.Coefficient{{Term: analytic.CategoryPerParam, Unit: "factor", Scale: true, Value: 1.1, Low: 1, High: 1.2, Level: 0.95, Original: 1}},
			Constant:     500 << 20},
	}
	if mod != nil {
		mod(c)
	}
	path := filepath.Join(t.TempDir(), "calibration-"+formula+".json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEstimateCalibrationChecks(t *testing.T) {
	breakdown := writeCalibration(t, "breakdown", nil)
	unknown := writeCalibration(t, "nope", nil)
	empty := writeCalibration(t, "breakdown", func(c *analytic.Calibration) { c.Coefficients = nil })
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--formula", "seed", "--calibration", breakdown}, []string{"--formula seed", `fitted for formula "breakdown", not "seed"`, breakdown}},
		{[]string{"--calibration", unknown}, []string{`field formula: "nope" is not a formula`}},
		{[]string{"--calibration", empty}, []string{"field coefficients: empty"}},
		{[]string{"--calibration", breakdown, "--gpu", "a100-80gb"}, []string{"--gpu a100-80gb", `fitted on GPU "NVIDIA H100 80GB HBM3"`}},
	}
	for _, tc := range tests {
		args := append([]string{"estimate", "--model", "gpt2"}, tc.args...)
		code, _, errw := runCLI(t, args...)
		if code != exitUsage {
			t.Errorf("%q: got exit %d (stderr %q), want %d", tc.args, code, errw, exitUsage)
		}
		for _, w := range tc.want {
			if !strings.Contains(errw, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, errw, w)
			}
		}
	}
}

// Warnings (simulated data, extrapolation) print without --gpu and are in
// --json as warnings.
func TestEstimateCalibrationWarningsAlwaysShow(t *testing.T) {
	cal := writeCalibration(t, "breakdown", nil)
	code, out, errw := runCLI(t, "estimate", "--model", "gpt2", "--batch", "64", "--calibration", cal)
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"formula calibrated-breakdown", "warning: calibration fitted on simulated data", "warning: batch 64 is outside the fitted range 1..8: extrapolating"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errw = runCLI(t, "estimate", "--model", "gpt2", "--batch", "64", "--calibration", cal, "--json", "--formula", "all")
	if code != 0 {
		t.Fatalf("--json: got exit %d, stderr %q", code, errw)
	}
	var rep struct {
		Estimates []analytic.Estimate `json:"estimates"`
		Warnings  []string            `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 3 || !strings.Contains(rep.Warnings[0], "simulated data") || !strings.Contains(rep.Warnings[1], "batch 64") {
		t.Errorf("got warnings %q, want simulated data, batch and tokens", rep.Warnings)
	}
	var calibrated []string
	for _, e := range rep.Estimates {
		if strings.HasPrefix(e.Formula, "calibrated-") {
			calibrated = append(calibrated, e.Formula)
		}
	}
	if strings.Join(calibrated, ",") != "calibrated-breakdown" {
		t.Errorf("--formula all: got calibrated estimates %v, want only calibrated-breakdown", calibrated)
	}
}

// validate refuses a calibration fitted on measured runs for the simulated
// device (and names the mismatch).
func TestValidateCalibrationGroupMismatch(t *testing.T) {
	cal := writeCalibration(t, "breakdown", func(c *analytic.Calibration) { c.Simulated = false })
	code, _, errw := runCLI(t, "validate", filepath.Join("..", "..", "scenarios", "gpt2-b1-s256-fp32.yaml"), "--device", "sim", "--out", t.TempDir(), "--calibration", cal)
	if code == 0 || !strings.Contains(errw, "a measured GPU, not the simulated device") {
		t.Errorf("got exit %d, stderr %q; want an error naming the simulated mismatch", code, errw)
	}
}
