package main

import (
	"github.com/memval/memval/analytic"
)

// loadCalibration reads --calibration and checks it against what it is
// about to be applied to: a formula memval knows with fitted coefficients,
// the --formula asked for (unless all), and the --gpu's group.
func (o *estimateOptions) loadCalibration(gpu *gpuReport) (*analytic.Calibration, error) {
	cal, err := analytic.LoadCalibration(o.calibration)
	if err != nil {
		return nil, usagef("--calibration: %w", err)
	}
	if err := cal.CheckFormula(); err != nil {
		return nil, usagef("--calibration %s: %w", o.calibration, err)
	}
	if o.formula != "all" {
		if err := cal.CheckFor(o.formula); err != nil {
			return nil, usagef("--calibration %s with --formula %s: %w", o.calibration, o.formula, err)
		}
	}
	if gpu != nil && gpu.Name != "budget" {
		if err := cal.CheckGroup(analytic.CalibrationGroup{GPU: gpu.Name}); err != nil {
			return nil, usagef("--calibration %s with --gpu %s: %w", o.calibration, gpu.Name, err)
		}
	}
	return cal, nil
}
