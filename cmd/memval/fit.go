package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/memval/memval/fit"
)

// fitOptions are the flags and arguments of memval fit.
type fitOptions struct {
	results    []string
	out        string
	formulas   []string
	truth      string
	group      string
	allowMixed bool
	folds      int
	terms      string

	stdout, stderr io.Writer
}

func newFitCmd(s streams) *cobra.Command {
	return newFitCmdWith(s, runFit)
}

// newFitCmdWith builds the command with run as its behaviour, so that flag
// parsing can be tested apart.
func newFitCmdWith(s streams, run func(context.Context, *fitOptions) error) *cobra.Command {
	opts := &fitOptions{stdout: s.out, stderr: s.err}
	cmd := &cobra.Command{
		Use:   "fit RESULTS...",
		Short: "Measure each formula's error on recorded runs and calibrate its coefficients",
		Long: `fit reads result.json files (files, folders walked for result.json, or globs)
written by memval validate or sweep, and compares every formula's steady and
peak prediction with what was measured (--truth): median, mean and max
error and bias, overall and by precision, checkpointing and attention.

It then refits each formula's term coefficients, plus a constant for the
CUDA context and workspaces, by non-negative least squares on relative
error, with confidence intervals, and measures the calibrated error by
cross validation (leave-one-out, or --folds K) on runs left out of each fit.
With --terms auto (the default) a formula whose terms need more runs than
there are (runs >= coefficients + 2) or that are collinear is fitted per
term category instead: one factor per category (per_param, activations,
scores, logits, kv_cache, overhead) on the formula's own bytes, plus the
constant; the report says why.

Into --out it writes report.md with its charts (PNG and SVG) and one
calibration-<formula>.json per formula that could be fitted, for
'memval estimate --calibration FILE'. Runs from different GPUs, drivers or
torch versions are not mixed unless --group picks one or --allow-mixed.

Truths: device (NVML device used, absolute), process (the process tree),
framework (torch max/steady reserved), allocated (torch max/steady allocated).`,
		Example: `  memval fit scenarios/results/h100/2025-01-10 --out fit-h100
  memval fit 'results/*/result.json' --formula seed --truth framework --folds 5
  memval fit results/ --group H100 --out fit-h100`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.results = args
			return run(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.out, "out", "fit-report", "folder for report.md, the charts and the calibration files")
	f.StringSliceVar(&opts.formulas, "formula", nil, "formulas to analyse, comma-separated (default: every formula the runs predicted)")
	f.StringVar(&opts.truth, "truth", "device", "what predictions are compared with: device, process, framework or allocated")
	f.StringVar(&opts.group, "group", "", "analyse only the runs of this GPU/driver/torch group (a part of its name is enough)")
	f.BoolVar(&opts.allowMixed, "allow-mixed", false, "analyse runs of different GPUs, drivers or torch versions together")
	f.IntVar(&opts.folds, "folds", 0, "cross-validation folds (0: leave-one-out)")
	f.StringVar(&opts.terms, "terms", "auto", "what to fit: term (a coefficient per term), category (a factor per term category: per_param, activations, scores, logits, kv_cache, overhead) or auto (per term when the runs are enough, else per category)")
	return cmd
}

func runFit(_ context.Context, opts *fitOptions) error {
	truth, err := fit.ParseTruth(opts.truth)
	if err != nil {
		return usagef("--truth: %v", err)
	}
	if opts.folds < 0 || opts.folds == 1 {
		return usagef("--folds %d: want 0 (leave-one-out) or at least 2", opts.folds)
	}
	terms, err := fit.ParseTermMode(opts.terms)
	if err != nil {
		return usagef("--terms: %v", err)
	}
	if opts.out == "" {
		return usagef("--out: empty; name a folder for the report")
	}
	runs, warns, err := fit.Load(opts.results...)
	if err != nil {
		return asUsage(err)
	}
	if allPublished(runs) {
		return runFitPublished(opts, runs)
	}
	an, err := fit.Analyze(runs, fit.Options{
		Formulas: opts.formulas, Truth: truth, Folds: opts.folds,
		Group: opts.group, AllowMixed: opts.allowMixed, Terms: terms,
	})
	if err != nil {
		if errors.Is(err, fit.ErrMixedGroups) || errors.Is(err, fit.ErrBadOption) || errors.Is(err, fit.ErrNoUsableRuns) {
			return asUsage(err)
		}
		return err
	}
	an.Warnings = append(warns, an.Warnings...)
	if err := an.WriteReport(opts.out); err != nil {
		return err
	}
	for _, w := range an.Warnings {
		fmt.Fprintln(opts.stderr, "memval: warning:", w)
	}
	var written []string
	for _, f := range an.Formulas {
		for _, qa := range []fit.QuantityAnalysis{f.Peak, f.Steady} {
			if qa.Fit == nil {
				fmt.Fprintf(opts.stderr, "memval: warning: %s, %s: no calibration: %s\n", f.Formula, qa.Quantity, qa.FitError)
			}
		}
		if f.Calibration != nil {
			written = append(written, filepath.Join(opts.out, fit.CalibrationFile(f.Formula)))
		}
	}
	if err := an.WriteHeadline(opts.stdout); err != nil {
		return err
	}
	fmt.Fprintf(opts.stdout, "report: %s\n", filepath.Join(opts.out, fit.ReportFile))
	for _, w := range written {
		fmt.Fprintf(opts.stdout, "calibration: %s\n", w)
	}
	return nil
}
