package estimate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// Run makes the estimate req asks for. Errors that are req's fault are
// *InputError; others (a calibration that cannot be applied, a formula's
// internal failure) are returned as they are.
func Run(req Request) (*Report, error) {
	formulas, err := req.formulas()
	if err != nil {
		return nil, err
	}
	if req.MaxBatch && req.MaxSeq {
		return nil, inputf("--max-batch and --max-seq are exclusive; give one of them")
	}
	gpu, err := req.gpu()
	if err != nil {
		return nil, err
	}
	if (req.MaxBatch || req.MaxSeq) && gpu == nil {
		return nil, inputf("--max-batch and --max-seq need a budget: give --gpu NAME or --budget SIZE")
	}
	cal, err := req.calibration(gpu)
	if err != nil {
		return nil, err
	}
	w, err := req.workload()
	if err != nil {
		return nil, err
	}
	dev, err := req.device()
	if err != nil {
		return nil, err
	}
	rep := &Report{Schema: 1, GPU: gpu, Workload: w}
	if cal != nil {
		rep.Warnings = append(rep.Warnings, cal.Warnings()...)
	}
	for _, f := range formulas {
		e, res, err := req.one(f, w, gpu, cal, &dev)
		switch {
		case errors.Is(err, analytic.ErrNotApplicable) && len(formulas) > 1:
			rep.Skipped = append(rep.Skipped, err.Error())
			continue
		case errors.Is(err, analytic.ErrNotApplicable):
			return nil, predictError(f, err)
		case err != nil:
			return nil, err
		}
		rep.Estimates = append(rep.Estimates, e)
		rep.Results = append(rep.Results, res)
		rep.Warnings = append(rep.Warnings, res.Warnings...)
	}
	if len(rep.Estimates) == 0 {
		return nil, inputf("no formula applies: %s", strings.Join(rep.Skipped, "; "))
	}
	if w.Distributed() {
		if err := req.ranks(rep, formulas, w, gpu, cal, &dev); err != nil {
			return nil, err
		}
	}
	rep.Model = Model{Arch: req.Arch, Params: rep.Estimates[0].Params}
	if w.LoRA() && !w.Inference {
		n, err := model.TrainableParams(req.Arch, w, rep.Model.Params)
		if err != nil {
			return nil, predictError("breakdown", err)
		}
		rep.Model.TrainableParams = n
	}
	if slices.Contains(formulas, "seed") {
		if rep.SeedRules, err = seedRules(rep.Model.Params); err != nil {
			return nil, predictError("seed", err)
		}
	}
	if gpu != nil {
		first := rep.Results[0]
		rep.Fits = &first.Fits
		rep.MaxBatch, rep.MaxSeq = first.MaxBatch, first.MaxSeq
	} else {
		rep.Results = nil
	}
	return rep, nil
}

// calibration reads req.Calibration and checks it against what it is about
// to be applied to: a formula memval knows with fitted coefficients, the
// formula asked for (unless all) and the GPU's group. nil without one.
func (req Request) calibration(gpu *GPU) (*analytic.Calibration, error) {
	if req.Calibration == "" {
		return nil, nil
	}
	cal, err := analytic.LoadCalibration(req.Calibration)
	if err != nil {
		return nil, inputf("--calibration: %w", err)
	}
	if err := cal.CheckFormula(); err != nil {
		return nil, inputf("--calibration %s: %w", req.Calibration, err)
	}
	if req.Formula != "all" {
		if err := cal.CheckFor(req.Formula); err != nil {
			return nil, inputf("--calibration %s with --formula %s: %w", req.Calibration, req.Formula, err)
		}
	}
	if gpu != nil && gpu.Name != "budget" {
		if err := cal.CheckGroup(analytic.CalibrationGroup{GPU: gpu.Name}); err != nil {
			return nil, inputf("--calibration %s with --gpu %s: %w", req.Calibration, gpu.Name, err)
		}
	}
	return cal, nil
}

// one estimates with formula f (solving for the largest batch or sequence
// if asked), applies the calibration (when it was fitted for f) and judges
// the peak against gpu. An
// error wrapping analytic.ErrNotApplicable is returned as it is, for Run
// to skip the formula.
func (req Request) one(f string, w model.Workload, gpu *GPU, cal *analytic.Calibration, dev *analytic.DeviceOptions) (analytic.Estimate, Result, error) {
	var (
		e   analytic.Estimate
		n   int
		err error
	)
	switch {
	case req.MaxBatch:
		n, e, err = analytic.MaxBatchDevice(f, req.Arch, w, gpu.TotalBytes, dev)
	case req.MaxSeq:
		n, e, err = analytic.MaxSeqDevice(f, req.Arch, w, gpu.TotalBytes, dev)
	default:
		err = analytic.PredictDevice(&e, f, req.Arch, w, *dev)
	}
	res := Result{Formula: f}
	switch {
	case errors.Is(err, analytic.ErrNotApplicable):
		return e, res, err
	case errors.Is(err, analytic.ErrNoFit), errors.Is(err, analytic.ErrUnbounded):
		res.Reason = err.Error()
		res.Unbounded = errors.Is(err, analytic.ErrUnbounded)
	case err != nil:
		return e, res, predictError(f, err)
	}
	if cal != nil && cal.Formula == f {
		wc := w
		if req.MaxBatch {
			wc.Batch = max(n, 1)
		} else if req.MaxSeq {
			wc.Seq = max(n, 1)
		}
		var cerr error
		if e, res.Warnings, cerr = cal.Apply(e, req.Arch, wc); cerr != nil {
			return e, res, fmt.Errorf("--calibration: %w", cerr)
		}
		if cerr = analytic.FillDevice(&e, req.Arch, wc, *dev); cerr != nil {
			return e, res, predictError(f, cerr)
		}
	}
	if req.MaxBatch && !res.Unbounded {
		res.MaxBatch = &n
	}
	if req.MaxSeq && !res.Unbounded {
		res.MaxSeq = &n
	}
	if gpu != nil {
		// The device peak decides: NVML used, what an OOM is about.
		peak := e.DevicePeak()
		res.Fits = peak <= gpu.TotalBytes && res.Reason == ""
		if peak <= gpu.TotalBytes {
			res.FreeBytes = gpu.TotalBytes - peak
		} else {
			res.ShortBytes = peak - gpu.TotalBytes
		}
	}
	return e, res, nil
}
