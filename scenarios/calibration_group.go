package scenarios

import (
	"fmt"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// checkCalibrationDevice refuses a calibration fitted on another group
// than the device's: GPU, driver, simulated or measured. torch is only
// known after the run (checkCalibrationTorch).
func checkCalibrationDevice(cal *analytic.Calibration, dev profiler.Device, gpu int) error {
	if cal == nil {
		return nil
	}
	g := analytic.CalibrationGroup{Driver: dev.Versions().Driver}
	if gpus, err := dev.GPUs(); err == nil {
		for _, x := range gpus {
			if x.Index == gpu || g.GPU == "" {
				g.GPU = x.Name
			}
		}
	}
	sim := profiler.DeviceSimulated(dev)
	g.Simulated = &sim
	if _, replay := dev.(*profiler.Replay); replay {
		g.GPU, g.Driver = "", "" // a replay's names are what was recorded, or placeholders
	}
	if err := cal.CheckGroup(g); err != nil {
		return fmt.Errorf("--calibration: %w", err)
	}
	return nil
}

// calibrationNotices are the calibration's warnings for result.json, and a
// torch version that differs from the one it was fitted with.
func calibrationNotices(cal *analytic.Calibration, env schema.Environment) []string {
	if cal == nil {
		return nil
	}
	var out []string
	for _, w := range cal.Warnings() {
		out = append(out, "calibration: "+w)
	}
	if err := cal.CheckGroup(analytic.CalibrationGroup{Torch: env.Torch}); err != nil {
		out = append(out, "calibration: WARNING: "+err.Error()+" (torch is known only after the run)")
	}
	return out
}
