package analytic

import (
	"errors"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// A calibration applies only to its own formula; the error names both.
func TestCalibrationRefusesAnotherFormula(t *testing.T) {
	c := testCalibration() // fitted for seed
	e := testEstimate()
	e.Formula = "breakdown"
	_, _, err := c.Apply(e, model.Arch{}, model.Workload{Batch: 2, Seq: 256})
	if !errors.Is(err, ErrCalibrationMismatch) || !strings.Contains(err.Error(), `fitted for formula "seed", not "breakdown"`) {
		t.Errorf("got %v, want a mismatch naming seed and breakdown", err)
	}
}

func TestCalibrationCheckFormula(t *testing.T) {
	c := testCalibration()
	if err := c.CheckFormula(); err != nil {
		t.Errorf("seed with coefficients: got %v", err)
	}
	c.Formula = "nope"
	if err := c.CheckFormula(); err == nil || !strings.Contains(err.Error(), `field formula: "nope" is not a formula`) {
		t.Errorf("unknown formula: got %v", err)
	}
	c = testCalibration()
	c.Coefficients = nil
	if err := c.CheckFormula(); err == nil || !strings.Contains(err.Error(), "field coefficients: empty") {
		t.Errorf("no coefficients: got %v", err)
	}
}

func TestCalibrationCheckGroup(t *testing.T) {
	yes, no := true, false
	c := testCalibration() // NVIDIA H100 80GB HBM3, measured
	c.Driver, c.Torch = "550.54.15", "2.3.0"
	tests := []struct {
		name string
		g    CalibrationGroup
		want string // "" when it applies
	}{
		{"same group", CalibrationGroup{GPU: "NVIDIA H100 80GB HBM3", Driver: "550.54.15", Torch: "2.3.0", Simulated: &no}, ""},
		{"memval's GPU key", CalibrationGroup{GPU: "h100-80gb"}, ""},
		{"nothing known", CalibrationGroup{}, ""},
		{"other GPU", CalibrationGroup{GPU: "a100-80gb"}, `GPU "NVIDIA H100 80GB HBM3", not "a100-80gb"`},
		{"other driver", CalibrationGroup{Driver: "535.0"}, "driver 550.54.15, not 535.0"},
		{"other torch", CalibrationGroup{Torch: "2.1.0"}, "torch 2.3.0, not 2.1.0"},
		{"simulated run", CalibrationGroup{Simulated: &yes}, "a measured GPU, not the simulated device"},
	}
	for _, tc := range tests {
		err := c.CheckGroup(tc.g)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want it to apply", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrCalibrationMismatch) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want a mismatch saying %q", tc.name, err, tc.want)
		}
	}
	c.Simulated = true
	if err := c.CheckGroup(CalibrationGroup{Simulated: &no}); err == nil || !strings.Contains(err.Error(), "simulated data, not a measured GPU") {
		t.Errorf("simulated calibration on a measured run: got %v", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "simulated data") {
		t.Errorf("got warnings %q, want one about simulated data", w)
	}
}
