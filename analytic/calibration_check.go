package analytic

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrCalibrationMismatch is wrapped by the errors that refuse to apply a
// calibration where it does not belong: another formula, GPU, driver,
// torch, or simulated data against measured (or the reverse).
var ErrCalibrationMismatch = errors.New("calibration does not apply")

// CheckFormula refuses a calibration whose formula memval does not know,
// or that holds no fitted coefficients.
func (c *Calibration) CheckFormula() error {
	if FormulaDoc(c.Formula) == "" {
		return fmt.Errorf("field formula: %q is not a formula memval knows (%s): write the file with memval fit", c.Formula, strings.Join(Formulas(), ", "))
	}
	if len(c.Coefficients) == 0 {
		return errors.New("field coefficients: empty: the file holds no fitted coefficients; write it with memval fit on measured runs")
	}
	return nil
}

// CheckFor refuses to apply c to formula's estimate unless c was fitted for
// that formula: its coefficients are that formula's terms.
func (c *Calibration) CheckFor(formula string) error {
	if c.Formula != formula {
		return fmt.Errorf("%w: it was fitted for formula %q, not %q: use --formula %s, or the calibration-%s.json that memval fit wrote",
			ErrCalibrationMismatch, c.Formula, formula, c.Formula, formula)
	}
	return nil
}

// CalibrationGroup is where a calibration is about to be applied; empty
// fields are not known and not checked.
type CalibrationGroup struct {
	GPU       string // the GPU's name (NVML's, or a memval key like h100-80gb)
	Driver    string
	Torch     string
	Simulated *bool // whether the figures are simulated
}

// CheckGroup refuses a calibration fitted on another GPU, driver or torch
// version, or on simulated data for a measured run (and the reverse): the
// fitted coefficients hold only for the group they were measured on. GPU
// names match when every word of the shorter is in the longer ("h100-80gb"
// matches "NVIDIA H100 80GB HBM3").
func (c *Calibration) CheckGroup(g CalibrationGroup) error {
	var bad []string
	if g.GPU != "" && c.GPU != "" && !sameGPU(g.GPU, c.GPU) {
		bad = append(bad, fmt.Sprintf("GPU %q, not %q", c.GPU, g.GPU))
	}
	if g.Driver != "" && c.Driver != "" && g.Driver != c.Driver {
		bad = append(bad, fmt.Sprintf("driver %s, not %s", c.Driver, g.Driver))
	}
	if g.Torch != "" && c.Torch != "" && g.Torch != c.Torch {
		bad = append(bad, fmt.Sprintf("torch %s, not %s", c.Torch, g.Torch))
	}
	if g.Simulated != nil && *g.Simulated != c.Simulated {
		if c.Simulated {
			bad = append(bad, "simulated data, not a measured GPU")
		} else {
			bad = append(bad, "a measured GPU, not the simulated device")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: it was fitted on %s: fit one on runs of this group (memval fit)", ErrCalibrationMismatch, strings.Join(bad, "; "))
	}
	return nil
}

// Warnings are what always goes with a calibration's numbers, whatever it
// is applied to: that it was fitted on simulated data.
func (c *Calibration) Warnings() []string {
	var w []string
	if c.Simulated {
		w = append(w, "calibration fitted on simulated data (the simulated device), not measurements of a GPU")
	}
	return w
}

// sameGPU reports whether every word of the shorter name is in the longer.
func sameGPU(a, b string) bool {
	wa, wb := gpuWords(a), gpuWords(b)
	if len(wa) > len(wb) {
		wa, wb = wb, wa
	}
	if len(wa) == 0 {
		return true
	}
	set := map[string]bool{}
	for _, w := range wb {
		set[w] = true
	}
	for _, w := range wa {
		if !set[w] {
			return false
		}
	}
	return true
}

func gpuWords(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	out := f[:0]
	for _, w := range f {
		if w != "nvidia" && w != "amd" {
			out = append(out, w)
		}
	}
	return out
}
