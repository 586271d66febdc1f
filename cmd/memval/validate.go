package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/scenarios"
)

func init() { subcommands = append(subcommands, newValidateCmd) }

// validateOptions are `memval validate`'s arguments and flags.
type validateOptions struct {
	spec        string
	device      string
	out         string
	interval    time.Duration
	formula     string
	tolerance   string
	calibration string
	json        bool
	simStep     time.Duration

	streams streams
}

func newValidateCmd(s streams) *cobra.Command { return newValidateCmdWith(s, runValidate) }

// newValidateCmdWith builds the command with run as its behaviour, so that tests
// can check flag parsing apart from it.
func newValidateCmdWith(s streams, run func(context.Context, *validateOptions) error) *cobra.Command {
	opts := &validateOptions{streams: s}
	c := &cobra.Command{
		Use:   "validate SPEC",
		Short: "Run a scenario under the profiler and measure how wrong each formula is",
		Long: `validate reads a scenario spec (YAML, see scenarios/README.md), predicts its
memory with every formula, runs it under the profiler (on a real GPU the
PyTorch script scenarios/train.py; on --device sim the simulated H100's own
training process, no Python) and compares the measured peak and steady
memory with each prediction.

Exit codes: 0 when the selected formula's peak is within the tolerance (or,
for a run that ran out of memory, when the formula predicted it would not
fit); 1 when it misses; the scenario's own exit code when it fails; 130 when
interrupted; 2 for bad input.`,
		Example: `  memval validate scenarios/gpt2-b8-s1024-fp32.yaml --device sim
  memval validate scenarios/gpt2-xl-b8-s1024-fp32-oom.yaml --out out/xl-oom --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.spec = args[0]
			return run(c.Context(), opts)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.device, "device", "auto", "where to measure: auto, nvml, sim or replay:FILE")
	f.StringVar(&opts.out, "out", "", "the run's folder (default out/<scenario name>)")
	f.DurationVar(&opts.interval, "interval", 0, "sampling interval (default: the profiler's)")
	f.StringVar(&opts.formula, "formula", "", "the formula whose miss fails (default: the spec's, else breakdown)")
	f.StringVar(&opts.tolerance, "tolerance", "", "relative peak error that passes, e.g. 0.1 or 10% (default: the spec's, else 0.1)")
	f.StringVar(&opts.calibration, "calibration", "", "`FILE`: a calibration.json written by memval fit; adds the \"calibrated\" prediction")
	f.BoolVar(&opts.json, "json", false, "print result.json instead of the table")
	f.DurationVar(&opts.simStep, "sim-step", 0, "wall time of one simulated training step (sim device; default: the simulator's)")
	f.MarkHidden("sim-step")
	return c
}

// validateSettings are the checked flags shared by validate and sweep.
type validateSettings struct {
	formula     string
	tolerance   float64
	calibration *analytic.Calibration
}

// checkValidateFlags parses --tolerance, --calibration and --formula.
func checkValidateFlags(formula, tolerance, calibration string) (validateSettings, error) {
	var st validateSettings
	if tolerance != "" {
		t, ok := scenarios.ParseTolerance(tolerance)
		if !ok {
			return st, usagef("--tolerance %q is not a relative tolerance: write 0.1 or 10%%, above 0 and below 10", tolerance)
		}
		st.tolerance = t
	}
	if calibration != "" {
		c, err := analytic.LoadCalibration(calibration)
		if err != nil {
			return st, asUsage(fmt.Errorf("--calibration: %w", err))
		}
		st.calibration = c
	}
	if formula != "" {
		if formula == scenarios.CalibratedFormula {
			if st.calibration == nil {
				return st, usagef("--formula calibrated needs --calibration FILE")
			}
		} else if err := scenarios.CheckFormula(formula); err != nil {
			return st, usagef("--formula: %v", err)
		}
		st.formula = formula
	}
	return st, nil
}

func runValidate(ctx context.Context, opts *validateOptions) error {
	st, err := checkValidateFlags(opts.formula, opts.tolerance, opts.calibration)
	if err != nil {
		return err
	}
	spec, err := scenarios.LoadSpec(opts.spec)
	if err != nil {
		return asUsage(err)
	}
	if _, _, err := spec.Resolve(); err != nil {
		return asUsage(fmt.Errorf("%s: %w", opts.spec, err))
	}
	out := opts.out
	if out == "" {
		out = filepath.Join("out", spec.Name)
	}
	vo := scenarios.ValidateOptions{
		Device:      opts.device,
		OutDir:      out,
		Interval:    opts.interval,
		Formula:     st.formula,
		Tolerance:   st.tolerance,
		Calibration: st.calibration,
		SimStep:     opts.simStep,
		Stdout:      opts.streams.err, // the scenario's own output stays off our stdout
		Stderr:      opts.streams.err,
		Tool:        "memval " + version,
	}
	if isTerminal(opts.streams.err) {
		vo.Progress = opts.streams.err
	}
	v, err := scenarios.Validate(ctx, spec, vo)
	if err != nil && v == nil {
		if errors.Is(err, scenarios.ErrInvalid) {
			return asUsage(err)
		}
		return err
	}
	for _, n := range v.Result.Notices {
		fmt.Fprintln(opts.streams.err, "note:", n)
	}
	if opts.json {
		enc := json.NewEncoder(opts.streams.out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(v.Result); jerr != nil {
			return jerr
		}
	} else if rerr := v.WriteReport(opts.streams.out); rerr != nil {
		return rerr
	}
	fmt.Fprintf(opts.streams.err, "result: %s\n", filepath.Join(out, "result.json"))
	if err != nil {
		return err
	}
	if code := v.ExitCode(); code != 0 {
		msg := "" // the report ends with the verdict
		if opts.json {
			msg = v.Scenario.Verdict.Status + ": " + v.Scenario.Verdict.Message
		}
		return &exitCodeError{code: code, msg: msg}
	}
	return nil
}

// oneLine shortens a message to its first line.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
