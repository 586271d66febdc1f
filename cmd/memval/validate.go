package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/scenarios"
)

// validateOptions are `memval validate`'s arguments and flags.
type validateOptions struct {
	spec string
	out  string
	json bool
	measureOptions

	streams streams
}

// measureOptions are the flags validate and sweep share: where a scenario
// is measured, and how its predictions are judged.
type measureOptions struct {
	device      string
	interval    time.Duration
	formula     string
	tolerance   string
	calibration string
	simStep     time.Duration
}

// bind adds the shared flags; formulaHelp and toleranceHelp say where each
// command takes their defaults from.
func (m *measureOptions) bind(f *pflag.FlagSet, formulaHelp, toleranceHelp string) {
	f.StringVar(&m.device, "device", "auto", "where to measure: auto, nvml, sim or replay:FILE")
	f.DurationVar(&m.interval, "interval", 0, "sampling interval (default: the profiler's)")
	f.StringVar(&m.formula, "formula", "", formulaHelp)
	f.StringVar(&m.tolerance, "tolerance", "", toleranceHelp)
	f.StringVar(&m.calibration, "calibration", "", "`FILE`: a calibration.json written by memval fit; adds the \"calibrated\" prediction")
	f.DurationVar(&m.simStep, "sim-step", 0, "wall time of one simulated training step (sim device; default: the simulator's)")
	f.MarkHidden("sim-step")
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
	opts.measureOptions.bind(f, "the formula whose miss fails (default: the spec's, else breakdown)",
		"relative peak error that passes, e.g. 0.1 or 10% (default: the spec's, else 0.1)")
	f.StringVar(&opts.out, "out", "", "the run's folder (default out/<scenario name>)")
	f.BoolVar(&opts.json, "json", false, "print result.json instead of the table")
	return c
}

// scenarioOptions checks --tolerance, --calibration and --formula and
// returns the options of scenarios.Validate they make; the scenario's own
// output goes to w (never to stdout, which may carry JSON).
func (m *measureOptions) scenarioOptions(w io.Writer) (scenarios.ValidateOptions, error) {
	vo := scenarios.ValidateOptions{Device: m.device, Interval: m.interval, SimStep: m.simStep,
		Stdout: w, Stderr: w, Tool: "memval " + version}
	if err := m.checkRanges(); err != nil {
		return vo, err
	}
	if m.tolerance != "" {
		t, ok := scenarios.ParseTolerance(m.tolerance)
		if !ok {
			return vo, usagef("--tolerance %q is not a relative tolerance: write 0.1 or 10%%, above 0 and below 10", m.tolerance)
		}
		vo.Tolerance = t
	}
	if m.calibration != "" {
		c, err := analytic.LoadCalibration(m.calibration)
		if err != nil {
			return vo, asUsage(fmt.Errorf("--calibration: %w", err))
		}
		if err := c.CheckFormula(); err != nil {
			return vo, usagef("--calibration %s: %w", m.calibration, err)
		}
		for _, wn := range c.Warnings() {
			fmt.Fprintf(w, "memval: warning: calibration %s: %s\n", m.calibration, wn)
		}
		vo.Calibration = c
	}
	if m.formula != "" {
		if m.formula == scenarios.CalibratedFormula {
			if vo.Calibration == nil {
				return vo, usagef("--formula calibrated needs --calibration FILE")
			}
		} else if err := scenarios.CheckFormula(m.formula); err != nil {
			return vo, usagef("--formula: %v", err)
		}
		vo.Formula = m.formula
	}
	return vo, nil
}

func runValidate(ctx context.Context, opts *validateOptions) error {
	vo, err := opts.scenarioOptions(opts.streams.err)
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
	vo.OutDir = out
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
