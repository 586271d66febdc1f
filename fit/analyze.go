package fit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// Options control Analyze. The zero value means: every formula found, the
// device truth, leave-one-out cross validation, 95 % intervals, and an
// error if the runs come from more than one group.
type Options struct {
	Formulas   []string // formulas to analyse; empty: all that the runs predicted
	Truth      Truth    // "": TruthDevice
	Folds      int      // cross-validation folds; 0 (or >= runs): leave-one-out
	Level      float64  // confidence level of the intervals; 0: 0.95
	Group      string   // select one group (see SelectGroup)
	AllowMixed bool     // analyse runs of several groups together
	Terms      TermMode // per term, per category or auto; "": TermsAuto
}

// Point is one run's prediction and measurement of one quantity.
type Point struct {
	Run       int // index into Analysis.Runs
	Predicted uint64
	Measured  uint64
	Rel       float64 // (Predicted - Measured) / Measured
	CVRel     float64 // held-out relative error after calibration; NaN when not fitted
}

// Breakdown is ErrorStats for the runs sharing one value of a workload
// setting.
type Breakdown struct {
	Dimension string // precision, checkpointing, attention
	Value     string
	Stats     ErrorStats
}

// QuantityAnalysis is one formula against one quantity.
type QuantityAnalysis struct {
	Quantity Quantity
	Points   []Point
	Overall  ErrorStats
	By       []Breakdown
	Fit      *Fit   // nil when the fit failed
	FitError string // why there is no fit
}

// FormulaAnalysis is one formula against both quantities.
type FormulaAnalysis struct {
	Formula     string
	Peak        QuantityAnalysis
	Steady      QuantityAnalysis
	Calibration *analytic.Calibration // nil when the peak fit failed
}

// OOMRun is a run that ran out of memory, and what each formula said.
type OOMRun struct {
	Run         int // index into Analysis.OOMRuns
	BudgetBytes uint64
	Predicted   map[string]uint64 // formula -> predicted peak
}

// Analysis is the outcome of Analyze.
type Analysis struct {
	Options   Options
	Groups    []GroupCount // of the runs analysed
	Runs      []Run        // runs in the statistics
	OOMRuns   []Run        // runs that ran out of memory
	OOM       []OOMRun
	Excluded  []Run // failed runs and runs without predictions
	Warnings  []Warning
	Formulas  []FormulaAnalysis
	Dimension []string // workload settings broken down: precision, checkpointing, attention
	// FalseAlarms counts, per formula, runs that did not run out of memory
	// although the formula's predicted peak exceeded the budget.
	FalseAlarms map[string]int
}

// ErrBadOption is returned (wrapped) for an option Analyze cannot use: an
// unknown truth, a formula no run predicted, a group that matches nothing.
var ErrBadOption = errors.New("bad option")

// ErrNoUsableRuns is returned (wrapped) when no run can enter the
// statistics.
var ErrNoUsableRuns = errors.New("no usable runs")

// Analyze computes error statistics and calibrations. runs come from Load;
// the warnings it returned can be passed on in the report through
// Analysis.Warnings (Analyze appends its own).
func Analyze(runs []Run, opts Options) (*Analysis, error) {
	if opts.Truth == "" {
		opts.Truth = TruthDevice
	}
	if _, err := ParseTruth(string(opts.Truth)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	if opts.Level == 0 {
		opts.Level = 0.95
	}
	if opts.Level <= 0 || opts.Level >= 1 {
		return nil, fmt.Errorf("%w: confidence level %v: want a fraction between 0 and 1", ErrBadOption, opts.Level)
	}
	if opts.Folds < 0 || opts.Folds == 1 {
		return nil, fmt.Errorf("%w: folds %d: want 0 (leave-one-out) or at least 2", ErrBadOption, opts.Folds)
	}
	mode, err := ParseTermMode(string(opts.Terms))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	opts.Terms = mode
	if len(runs) == 0 {
		return nil, fmt.Errorf("%w: no runs to analyse", ErrNoUsableRuns)
	}
	sel, err := SelectGroup(runs, opts.Group, opts.AllowMixed)
	if err != nil {
		if errors.Is(err, ErrMixedGroups) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	an := &Analysis{Options: opts, Groups: Groups(sel), FalseAlarms: map[string]int{},
		Dimension: []string{"precision", "checkpointing", "attention"}}
	for _, r := range sel {
		switch {
		case r.Excluded != "":
			an.Excluded = append(an.Excluded, r)
		case r.OOM():
			an.OOMRuns = append(an.OOMRuns, r)
		default:
			an.Runs = append(an.Runs, r)
		}
	}
	if len(an.Runs) == 0 {
		return nil, fmt.Errorf("%w: none of the %d runs is usable (%d failed or without predictions, %d out of memory)", ErrNoUsableRuns, len(sel), len(an.Excluded), len(an.OOMRuns))
	}

	formulas := opts.Formulas
	if len(formulas) == 0 {
		for _, r := range an.Runs {
			for _, e := range r.Predictions {
				if !slices.Contains(formulas, e.Formula) {
					formulas = append(formulas, e.Formula)
				}
			}
		}
	} else {
		for _, f := range formulas {
			found := false
			for _, r := range an.Runs {
				if r.Prediction(f) != nil {
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: formula %q: no run predicted it (run memval validate with it)", ErrBadOption, f)
			}
		}
	}

	warned := map[string]bool{}
	warnOnce := func(w Warning) {
		k := w.String()
		if !warned[k] {
			warned[k] = true
			an.Warnings = append(an.Warnings, w)
		}
	}
	for _, f := range formulas {
		fa := FormulaAnalysis{Formula: f}
		fa.Peak = an.quantity(f, Peak, warnOnce)
		fa.Steady = an.quantity(f, Steady, warnOnce)
		if fa.Peak.Fit != nil {
			var steady *Fit
			if fa.Steady.Fit != nil {
				steady = fa.Steady.Fit
			}
			used := make([]Run, len(fa.Peak.Points))
			for i, p := range fa.Peak.Points {
				used[i] = an.Runs[p.Run]
			}
			fa.Calibration = Calibration(fa.Peak.Fit, steady, an.Groups[0].Group, used)
			if len(an.Groups) > 1 {
				fa.Calibration.Notes = append(fa.Calibration.Notes, "fitted on runs of several groups (--allow-mixed)")
			}
		}
		an.Formulas = append(an.Formulas, fa)
	}

	for i, r := range an.OOMRuns {
		o := OOMRun{Run: i, BudgetBytes: r.TotalBytes, Predicted: map[string]uint64{}}
		for _, f := range formulas {
			if e := r.Prediction(f); e != nil {
				o.Predicted[f] = e.Peak
			}
		}
		an.OOM = append(an.OOM, o)
	}
	for _, r := range an.Runs {
		for _, f := range formulas {
			if e := r.Prediction(f); e != nil && r.TotalBytes > 0 && e.Peak > r.TotalBytes {
				an.FalseAlarms[f]++
			}
		}
	}
	return an, nil
}

// quantity compares formula f with the measured quantity q over the usable
// runs and fits its coefficients.
func (an *Analysis) quantity(f string, q Quantity, warn func(Warning)) QuantityAnalysis {
	qa := QuantityAnalysis{Quantity: q}
	var samples []termSample
	var live [][]analytic.Term
	var y []float64
	var used []int
	sumMismatch := 0
	for i, r := range an.Runs {
		e := r.Prediction(f)
		if e == nil {
			warn(Warning{Path: r.Path, Field: "predictions", Message: fmt.Sprintf("no prediction by formula %q: left out of its statistics", f)})
			continue
		}
		meas, field, ok := r.measuredOK(an.Options.Truth, q)
		if !ok {
			warn(Warning{Path: r.Path, Field: field, Message: fmt.Sprintf("missing or zero: left out of %s statistics for truth %s", q, an.Options.Truth)})
			continue
		}
		pred := e.Peak
		if q == Steady {
			pred = e.Steady
		}
		if pred == 0 {
			warn(Warning{Path: r.Path, Field: fmt.Sprintf("predictions[%s].%s_bytes", f, q), Message: "zero: left out"})
			continue
		}
		qa.Points = append(qa.Points, Point{Run: i, Predicted: pred, Measured: meas, Rel: RelError(float64(pred), float64(meas)), CVRel: math.NaN()})
		lt := liveTerms(e, q)
		ts, total := samplesOf(lt)
		if len(e.Terms) > 0 && !near(total, float64(pred), 1e-6) && math.Abs(total-float64(pred)) > float64(8*len(e.Terms)) {
			sumMismatch++
		}
		samples = append(samples, ts)
		live = append(live, lt)
		y = append(y, float64(meas))
		used = append(used, i)
	}
	rel := make([]float64, len(qa.Points))
	for i, p := range qa.Points {
		rel[i] = p.Rel
	}
	qa.Overall = Stats(rel)
	for _, dim := range an.Dimension {
		groups := map[string][]float64{}
		var order []string
		for _, p := range qa.Points {
			w := an.Runs[p.Run].Workload
			if w == nil {
				continue
			}
			v := dimensionValue(w, dim)
			if _, ok := groups[v]; !ok {
				order = append(order, v)
			}
			groups[v] = append(groups[v], p.Rel)
		}
		slices.Sort(order)
		for _, v := range order {
			qa.By = append(qa.By, Breakdown{Dimension: dim, Value: v, Stats: Stats(groups[v])})
		}
	}
	if len(qa.Points) == 0 {
		qa.FitError = "no usable runs"
		return qa
	}
	mode := an.Options.Terms
	var d *design
	var err error
	var why string
	if mode != TermsPerCategory {
		d, err = buildDesign(samples, y)
		if err != nil && mode == TermsAuto && (errors.Is(err, ErrTooFewRuns) || errors.Is(err, ErrCollinear)) {
			why = fmt.Sprintf("fitted per term category, not per term: %v", err)
			d, err = nil, nil
		}
	}
	usedMode := TermsPerTerm
	if d == nil && err == nil {
		usedMode = TermsPerCategory
		d, err = categoryDesign(live, y)
		if err == nil && why != "" {
			d.notes = append([]string{why}, d.notes...)
		}
	}
	if err == nil && sumMismatch > 0 {
		d.notes = append(d.notes, fmt.Sprintf("in %d runs the formula's %s is not the sum of its terms live at it; the fit uses the sum", sumMismatch, q))
	}
	var fit *Fit
	if err == nil {
		fit, err = calibrate(d, an.Options.Level, an.Options.Folds)
	}
	if err != nil {
		if why != "" {
			err = fmt.Errorf("%s; per category: %w", strings.TrimPrefix(why, "fitted per term category, not per term: "), err)
		}
		qa.FitError = err.Error()
		return qa
	}
	fit.Formula, fit.Quantity, fit.Truth, fit.Terms = f, q, an.Options.Truth, usedMode
	for k := range qa.Points {
		qa.Points[k].CVRel = fit.CVRel[k]
	}
	qa.Fit = fit
	return qa
}

// samplesOf collects terms (a quantity's, see liveTerms) by name, and their
// total bytes. A term with no Feature but some Bytes enters with Feature =
// Bytes and coefficient 1.
func samplesOf(terms []analytic.Term) (termSample, float64) {
	ts := termSample{feat: map[string]float64{}, bytes: map[string]float64{}, unit: map[string]string{}}
	total := 0.0
	for _, t := range terms {
		feat, coef := t.Feature, t.Coef
		if feat == 0 && t.Bytes > 0 {
			feat, coef = float64(t.Bytes), 1
		}
		if _, ok := ts.feat[t.Name]; !ok {
			ts.names = append(ts.names, t.Name)
			ts.unit[t.Name] = t.Unit
		}
		ts.feat[t.Name] += feat
		ts.bytes[t.Name] += feat * coef
		total += float64(t.Bytes)
	}
	return ts, total
}

func dimensionValue(w *model.Workload, dim string) string {
	switch dim {
	case "precision":
		return precisionOf(w)
	case "checkpointing":
		return checkpointingOf(w)
	case "attention":
		return attentionOf(w)
	}
	panic("fit: unknown dimension " + dim)
}
