package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/profiler/sim"
)

// CalibratedFormula is the name of the prediction made with a calibration
// file (analytic.Calibration applied to its formula's estimate).
const CalibratedFormula = "calibrated"

// Verdict statuses.
const (
	VerdictPass         = "pass"          // the selected formula's peak is within tolerance
	VerdictMiss         = "miss"          // it is not
	VerdictOOMPredicted = "oom-predicted" // the run ran out of memory and the formula said it would not fit
	VerdictOOMMissed    = "oom-missed"    // the run ran out of memory and the formula said it would fit
	VerdictFailed       = "failed"        // the scenario failed, crashed or was killed: nothing to judge
	VerdictInterrupted  = "interrupted"   // the user stopped it
	VerdictError        = "error"         // memval could not run it (see Message)
)

// Exit codes Validate reports beyond the child's own.
const (
	ExitPass        = 0
	ExitMiss        = 1
	ExitInterrupted = 130 // as a shell reports SIGINT
)

// ValidateOptions configure Validate. OutDir is required; every other zero
// value means the default documented on the field.
type ValidateOptions struct {
	Device    string        // auto (default), nvml, sim or replay:FILE, as profiler.Open takes it
	OutDir    string        // the run's folder: job.json (nvml), trace.csv, events.jsonl, result.json
	Interval  time.Duration // sampling interval; 0: the profiler's default
	Formula   string        // the formula whose miss fails; "": the spec's
	Tolerance float64       // relative peak error that passes; 0: the spec's

	// Calibration, when set, adds a prediction named CalibratedFormula: its
	// formula's estimate with the fitted coefficients.
	Calibration *analytic.Calibration

	// SimStep is the simulated device's wall time per training step; 0:
	// the simulator's default. Tests and benchmarks make it small.
	SimStep time.Duration

	Stdout, Stderr io.Writer // the scenario's output; nil: discarded
	Progress       io.Writer // the profiler's live line; nil: quiet
	Tool           string    // Result.Tool
}

// Scenario is result.json's "scenario": the spec as written, what it
// resolved to, and the verdict.
type Scenario struct {
	Spec      *Spec          `json:"spec"`
	Arch      model.Arch     `json:"arch"`
	Workload  model.Workload `json:"workload"`
	Steps     int            `json:"steps"`
	Warmup    int            `json:"warmup"`
	Formula   string         `json:"formula"`   // the selected formula
	Tolerance float64        `json:"tolerance"` // relative
	Verdict   Verdict        `json:"verdict"`
}

// Verdict is the outcome of one validation.
type Verdict struct {
	Status   string `json:"status"` // one of the Verdict* constants
	Pass     bool   `json:"pass"`
	ExitCode int    `json:"exit_code"` // what `memval validate` exits with
	Message  string `json:"message"`

	// The selected formula's peak against the judged truth (process tree,
	// which the profiler falls back to device minus baseline for).
	Truth     string  `json:"truth,omitempty"`
	Predicted uint64  `json:"predicted_bytes,omitempty"`
	Measured  uint64  `json:"measured_bytes,omitempty"`
	RelError  float64 `json:"rel_error,omitempty"`

	OOM *OOMVerdict `json:"oom,omitempty"` // when the run ran out of memory
}

// OOMVerdict records an out-of-memory run: the budget it exceeded and what
// each formula said about fitting in it.
type OOMVerdict struct {
	BudgetBytes uint64       `json:"budget_bytes"` // the GPU's total memory
	Formulas    []FormulaFit `json:"formulas"`
}

// FormulaFit is one formula's answer to "does it fit in the budget?".
type FormulaFit struct {
	Formula   string `json:"formula"`
	PeakBytes uint64 `json:"peak_bytes"`
	Fits      bool   `json:"fits"` // PeakBytes <= budget: the formula did not predict the OOM
}

// Validation is what Validate returns: the run's result (also written to
// OutDir/result.json) and the scenario record in it.
type Validation struct {
	Result      *schema.Result
	Scenario    Scenario
	Predictions []analytic.Estimate // Result.Predictions as estimates
}

// ExitCode is the process exit code the validation asks for.
func (v *Validation) ExitCode() int { return v.Scenario.Verdict.ExitCode }

// Predictions resolves s and predicts its memory with every formula of
// analytic.Formulas() (and the calibration's, named CalibratedFormula, when
// cal is not nil). Formulas that do not apply are left out with a note.
func Predictions(s *Spec, cal *analytic.Calibration) (model.Arch, model.Workload, []analytic.Estimate, []string, error) {
	a, w, err := s.Resolve()
	if err != nil {
		return a, w, nil, nil, err
	}
	var preds []analytic.Estimate
	var notes []string
	for _, f := range analytic.Formulas() {
		e, err := analytic.Predict(f, a, w)
		if err != nil {
			if errors.Is(err, analytic.ErrNotApplicable) {
				notes = append(notes, fmt.Sprintf("formula %s left out: %v", f, err))
				continue
			}
			return a, w, nil, nil, fmt.Errorf("scenario %s: formula %s: %w", s.Name, f, err)
		}
		preds = append(preds, e)
	}
	if cal != nil {
		e, err := analytic.Predict(cal.Formula, a, w)
		if err != nil {
			return a, w, nil, nil, fmt.Errorf("scenario %s: calibrated formula %s: %w", s.Name, cal.Formula, err)
		}
		ce, warns, err := cal.Apply(e, a, w)
		if err != nil {
			return a, w, nil, nil, fmt.Errorf("scenario %s: apply calibration: %w", s.Name, err)
		}
		ce.Formula = CalibratedFormula
		ce.Notes = append(ce.Notes, warns...)
		preds = append(preds, ce)
		for _, wn := range warns {
			notes = append(notes, "calibration: "+wn)
		}
	}
	return a, w, preds, notes, nil
}

// Validate runs scenario s under the profiler and judges every formula's
// prediction against what it measured. On the simulated device (and a
// replay) the device's own simulated process is the workload; on a real GPU
// it writes OutDir/job.json and runs scenarios/train.py (TrainCommand) as
// the child. result.json in OutDir gets the scenario, the predictions and
// the comparisons.
//
// A scenario that fails or runs out of memory is a result, not an error:
// see the Verdict. The error is for what kept memval from running it (a
// bad spec, a formula that cannot predict it, no device, unwritable files);
// an interrupted run is returned with VerdictInterrupted and no error.
func Validate(ctx context.Context, s *Spec, opts ValidateOptions) (*Validation, error) {
	if opts.OutDir == "" {
		return nil, errors.New("validate: no output folder")
	}
	formula := s.FormulaOrDefault()
	if opts.Formula != "" {
		formula = opts.Formula
	}
	tol := s.ToleranceOrDefault()
	if opts.Tolerance > 0 {
		tol = opts.Tolerance
	}
	a, w, preds, notes, err := Predictions(s, opts.Calibration)
	if err != nil {
		return nil, err
	}
	if findEstimate(preds, formula) == nil {
		return nil, fmt.Errorf("scenario %s: %w: formula %q gives no prediction for it: choose one of %s", s.Name, ErrInvalid, formula, strings.Join(estimateNames(preds), ", "))
	}
	sc := Scenario{Spec: s, Arch: a, Workload: w, Steps: s.StepsOrDefault(), Warmup: s.WarmupOrDefault(), Formula: formula, Tolerance: tol}

	dev, devNotes, err := profiler.Open(deviceOrAuto(opts.Device), sim.Opener(sim.Config{
		Arch: a, Workload: w, Steps: sc.Steps, Warmup: sc.Warmup, Seed: int64(s.Seed), StepDuration: opts.SimStep,
	}))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	defer dev.Close()
	if err := checkCalibrationDevice(opts.Calibration, dev, 0); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	var command []string
	if _, ok := dev.(profiler.Timeline); !ok {
		job := filepath.Join(opts.OutDir, "job.json")
		// The script runs Warmup steps and then Steps measured ones.
		if err := WriteJob(job, TrainJob{Arch: a, Workload: w, Steps: sc.Steps - sc.Warmup, Warmup: sc.Warmup, Seed: s.Seed,
			Device: string(w.Backend), MeasureSaved: true}); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		if command, err = TrainCommand(job); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
	}
	res, err := profiler.Run(ctx, profiler.RunOptions{
		Device:   dev,
		Command:  command,
		Interval: opts.Interval,
		OutDir:   opts.OutDir,
		Stdout:   opts.Stdout,
		Stderr:   opts.Stderr,
		Progress: opts.Progress,
		GPU:      -1,
		Tool:     opts.Tool,
		Notices:  devNotes,
	})
	if res == nil {
		if err == nil {
			err = errors.New("profiler returned no result")
		}
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err != nil {
		res.Notices = append(res.Notices, err.Error())
	}
	res.Notices = append(res.Notices, notes...)
	res.Notices = append(res.Notices, calibrationNotices(opts.Calibration, res.Env)...)
	raw, perr := analytic.EncodeEstimates(preds)
	if perr != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, perr)
	}
	res.Predictions = raw
	res.Comparisons = Compare(preds, res.Summary, res.Framework, tol)
	sc.Verdict = Judge(preds, formula, tol, res)
	scen, merr := json.Marshal(sc)
	if merr != nil {
		return nil, fmt.Errorf("scenario %s: encode: %w", s.Name, merr)
	}
	res.Scenario = scen
	if werr := schema.WriteResult(opts.OutDir, res); werr != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, werr)
	}
	v := &Validation{Result: res, Scenario: sc, Predictions: preds}
	if err != nil {
		return v, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return v, nil
}

func deviceOrAuto(d string) string {
	if d == "" {
		return "auto"
	}
	return d
}

func findEstimate(preds []analytic.Estimate, name string) *analytic.Estimate {
	for i := range preds {
		if preds[i].Formula == name {
			return &preds[i]
		}
	}
	return nil
}

func estimateNames(preds []analytic.Estimate) []string {
	out := make([]string, len(preds))
	for i, p := range preds {
		out[i] = p.Formula
	}
	return out
}

// Truths, the measured figures a prediction is compared with.
const (
	TruthDevice    = "device"    // device used minus the baseline before the run
	TruthProcess   = "process"   // the process tree's use (NVML), else device minus baseline
	TruthFramework = "framework" // torch.cuda figures plus the CUDA context, as the scenario reported (see measurements)
)

// measured is one truth's figure for one quantity.
type measured struct {
	quantity, truth string
	bytes           uint64
}

// measurements lists the figures a run gives, peak first:
//   - peak device = PeakDeviceBytes − BaselineBytes; peak process =
//     PeakProcessBytes; peak framework = MaxReserved + ContextBytes;
//   - steady device = SteadyBytes − BaselineBytes; steady framework =
//     SteadyAllocated + ContextBytes (the tensors alive between steps: the
//     allocator's reserved memory, which the device sees, keeps the step's
//     peak).
//
// Figures that are zero (not measured) are left out.
func measurements(sum schema.Summary, fw *schema.Framework) []measured {
	ms := []measured{
		{"peak", TruthDevice, sub0(sum.PeakDeviceBytes, sum.BaselineBytes)},
		{"peak", TruthProcess, sum.PeakProcessBytes},
	}
	if fw != nil && fw.MaxReserved > 0 {
		ms = append(ms, measured{"peak", TruthFramework, fw.MaxReserved + fw.ContextBytes})
	}
	ms = append(ms, measured{"steady", TruthDevice, sub0(sum.SteadyBytes, sum.BaselineBytes)})
	if fw != nil && fw.SteadyAllocated > 0 {
		ms = append(ms, measured{"steady", TruthFramework, fw.SteadyAllocated + fw.ContextBytes})
	}
	out := ms[:0]
	for _, m := range ms {
		if m.bytes > 0 {
			out = append(out, m)
		}
	}
	return out
}

// Compare sets every prediction against every measured figure of a run
// (see measurements for the truths), in prediction order. RelError =
// (predicted − measured) / measured; Within is |RelError| <= tolerance.
func Compare(preds []analytic.Estimate, sum schema.Summary, fw *schema.Framework, tolerance float64) []schema.Comparison {
	ms := measurements(sum, fw)
	var out []schema.Comparison
	for _, e := range preds {
		for _, m := range ms {
			pred := e.Peak
			if m.quantity == "steady" {
				pred = e.Steady
			}
			rel := (float64(pred) - float64(m.bytes)) / float64(m.bytes)
			out = append(out, schema.Comparison{
				Formula:   e.Formula,
				Quantity:  m.quantity,
				Truth:     m.truth,
				Predicted: pred,
				Measured:  m.bytes,
				AbsError:  int64(pred) - int64(m.bytes),
				RelError:  rel,
				Within:    math.Abs(rel) <= tolerance,
			})
		}
	}
	return out
}

// gpuTotal is the total memory of the GPU the summary is about.
func gpuTotal(res *schema.Result) uint64 {
	for _, g := range res.Env.GPUs {
		if g.Index == res.Summary.GPU {
			return g.TotalBytes
		}
	}
	if len(res.Env.GPUs) > 0 {
		return res.Env.GPUs[0].TotalBytes
	}
	return 0
}

// Judge decides the validation's outcome from the run's status and the
// selected formula's peak:
//   - ok: pass (exit 0) when |peak error| against the process truth is
//     within tolerance, else miss (exit 1);
//   - oom: the budget is the GPU's total; pass (exit 0) when the formula's
//     peak exceeds it (it predicted the OOM), else oom-missed (exit 1);
//   - interrupted: exit 130; failed, crashed, killed: the child's exit code
//     (1 when it has none).
func Judge(preds []analytic.Estimate, formula string, tolerance float64, res *schema.Result) Verdict {
	sum := res.Summary
	sel := findEstimate(preds, formula)
	switch {
	case sum.Status == schema.StatusInterrupted:
		return Verdict{Status: VerdictInterrupted, ExitCode: ExitInterrupted, Message: "interrupted: nothing judged"}
	case sum.OOM || sum.Status == schema.StatusOOM:
		budget := gpuTotal(res)
		o := &OOMVerdict{BudgetBytes: budget}
		for _, e := range preds {
			o.Formulas = append(o.Formulas, FormulaFit{Formula: e.Formula, PeakBytes: e.Peak, Fits: budget > 0 && e.Peak <= budget})
		}
		v := Verdict{OOM: o}
		if sel != nil && (budget == 0 || sel.Peak > budget) {
			v.Status, v.Pass, v.ExitCode = VerdictOOMPredicted, true, ExitPass
			v.Message = fmt.Sprintf("ran out of memory, as %s predicted: %s peak over the %s GPU", formula, gib(sel.Peak), gib(budget))
		} else {
			v.Status, v.ExitCode = VerdictOOMMissed, ExitMiss
			peak := uint64(0)
			if sel != nil {
				peak = sel.Peak
			}
			v.Message = fmt.Sprintf("ran out of memory, but %s predicted %s, which fits in the %s GPU", formula, gib(peak), gib(budget))
		}
		return v
	case sum.Status != schema.StatusOK:
		code := sum.ExitCode
		if code == 0 {
			code = 1
		}
		msg := fmt.Sprintf("scenario %s (exit code %d", sum.Status, sum.ExitCode)
		if sum.Signal != "" {
			msg += ", signal " + sum.Signal
		}
		return Verdict{Status: VerdictFailed, ExitCode: code, Message: msg + "): nothing judged"}
	}
	measured := sum.PeakProcessBytes
	if sel == nil {
		return Verdict{Status: VerdictError, ExitCode: 1, Message: fmt.Sprintf("formula %s gave no prediction", formula)}
	}
	v := Verdict{Truth: TruthProcess, Predicted: sel.Peak, Measured: measured}
	if measured == 0 {
		v.Status, v.ExitCode = VerdictMiss, ExitMiss
		v.Message = "no memory use was measured: nothing to compare the prediction with"
		return v
	}
	v.RelError = (float64(sel.Peak) - float64(measured)) / float64(measured)
	if math.Abs(v.RelError) <= tolerance {
		v.Status, v.Pass, v.ExitCode = VerdictPass, true, ExitPass
		v.Message = fmt.Sprintf("%s peak %s is within %.0f%% of the measured %s (%+.1f%%)",
			formula, gib(sel.Peak), tolerance*100, gib(measured), v.RelError*100)
		return v
	}
	v.Status, v.ExitCode = VerdictMiss, ExitMiss
	word := "over"
	if v.RelError < 0 {
		word = "under"
	}
	v.Message = fmt.Sprintf("%s peak %s misses the measured %s by %+.1f%% (%s by %s; tolerance %.0f%%)",
		formula, gib(sel.Peak), gib(measured), v.RelError*100,
		word, gib(max(sel.Peak, measured)-min(sel.Peak, measured)), tolerance*100)
	return v
}

// WriteReport prints the validation: the measured figures, a table of every
// formula's predicted peak and steady with their absolute (GiB) and
// relative errors against each truth, and the verdict.
func (v *Validation) WriteReport(w io.Writer) error {
	res, sc := v.Result, v.Scenario
	sum := res.Summary
	fmt.Fprintf(w, "scenario %s on %s: %s\n", sc.Spec.Name, res.Device, sum.Status)
	fmt.Fprintf(w, "measured:")
	for _, m := range measurements(sum, res.Framework) {
		fmt.Fprintf(w, " %s %s %s;", m.quantity, m.truth, gib(m.bytes))
	}
	fmt.Fprintf(w, " baseline %s; process figures from %s\n", gib(sum.BaselineBytes), sum.ProcessSource)
	if len(res.Comparisons) > 0 {
		if err := writeComparisonTable(w, res, v.Predictions, sc.Formula); err != nil {
			return err
		}
	}
	if o := sc.Verdict.OOM; o != nil {
		fmt.Fprintf(w, "out of memory on a %s GPU; predicted peaks:\n", gib(o.BudgetBytes))
		for _, f := range o.Formulas {
			word := "predicted the OOM"
			if f.Fits {
				word = "said it fits"
			}
			fmt.Fprintf(w, "  %-12s %10s  %s\n", f.Formula, gib(f.PeakBytes), word)
		}
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", sc.Verdict.Status, sc.Verdict.Message)
	return err
}

// writeComparisonTable prints one row per formula: its predicted peak and
// errors against each peak truth, then its predicted steady state and
// errors against each steady truth. The judged figures (peak against the
// process tree, steady against the device) show the absolute error in GiB
// beside the relative one; the selected formula is marked with "*".
func writeComparisonTable(w io.Writer, res *schema.Result, preds []analytic.Estimate, selected string) error {
	type col struct{ quantity, truth string }
	var cols []col
	seen := map[col]bool{}
	for _, c := range res.Comparisons {
		k := col{c.Quantity, c.Truth}
		if !seen[k] {
			seen[k] = true
			cols = append(cols, k)
		}
	}
	judged := func(k col) bool {
		return k == col{"peak", TruthProcess} || k == col{"steady", TruthDevice}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "formula\tpeak\t"
	for _, quantity := range []string{"peak", "steady"} {
		if quantity == "steady" {
			header += "steady\t"
		}
		for _, k := range cols {
			if k.quantity == quantity {
				header += "vs " + k.truth + "\t"
			}
		}
	}
	fmt.Fprintln(tw, header)
	for _, e := range preds {
		name := e.Formula
		if name == selected {
			name = "*" + name
		}
		row := name + "\t" + gib(e.Peak) + "\t"
		for _, quantity := range []string{"peak", "steady"} {
			if quantity == "steady" {
				row += gib(e.Steady) + "\t"
			}
			for _, k := range cols {
				if k.quantity != quantity {
					continue
				}
				cell := "-"
				for _, c := range res.Comparisons {
					if c.Formula == e.Formula && c.Quantity == k.quantity && c.Truth == k.truth {
						cell = fmt.Sprintf("%+.1f%%", c.RelError*100)
						if judged(k) {
							cell = fmt.Sprintf("%+.2f GiB %s", float64(c.AbsError)/(1<<30), cell)
						}
					}
				}
				row += cell + "\t"
			}
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

func sub0(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// gib prints bytes in GiB (binary), labelled.
func gib(b uint64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
