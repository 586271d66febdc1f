package fit

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/memval/memval/analytic"
)

// ReportFile is the report's name in the output folder.
const ReportFile = "report.md"

// CalibrationFile is the name of formula's calibration in the output
// folder: one file per formula, so that `memval estimate --calibration`
// takes exactly the formula it calibrates.
func CalibrationFile(formula string) string {
	return "calibration-" + safeName(formula) + ".json"
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// WriteReport writes into dir (created if missing) report.md, its charts
// (PNG and SVG) and calibration-<formula>.json for every formula whose peak
// fit succeeded.
func (an *Analysis) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report folder: %w", err)
	}
	charts, notes, err := an.WriteCharts(dir)
	if err != nil {
		return err
	}
	for _, f := range an.Formulas {
		if f.Calibration == nil {
			continue
		}
		if err := f.Calibration.Save(filepath.Join(dir, CalibrationFile(f.Formula))); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	an.Markdown(&b, charts, notes)
	if err := os.WriteFile(filepath.Join(dir, ReportFile), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// pct formats a fraction as a percentage.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 1, 64) + " %"
}

// spct formats a signed fraction as a percentage with its sign.
func spct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%+.1f %%", 100*v)
}

// sig formats v with 4 significant digits.
func sig(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// GiB formats bytes as binary gibibytes, labelled.
func GiB(b float64) string {
	return fmt.Sprintf("%.2f GiB", b/gib)
}

// MiB formats bytes as binary mebibytes, labelled.
func MiB(b float64) string {
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func (an *Analysis) groupLine() string {
	var s []string
	for _, g := range an.Groups {
		s = append(s, fmt.Sprintf("%s (%d runs)", g.Group.Key(), g.Runs))
	}
	return strings.Join(s, "; ")
}

var truthText = map[Truth]string{
	TruthDevice:    "device: NVML device used memory, absolute (summary.peak_device_bytes, summary.steady_bytes); it includes the CUDA context and the allocator's cache",
	TruthProcess:   "process: memory of the scenario's process tree (summary.peak_process_bytes; steady: summary.steady_bytes - summary.baseline_bytes)",
	TruthFramework: "framework: torch.cuda max_reserved and steady_reserved (the caching allocator, no CUDA context)",
	TruthAllocated: "allocated: torch.cuda max_allocated and steady_allocated (live tensors only)",
}

// Markdown writes report.md's text. charts are linked (PNG shown, SVG
// linked); notes are printed under the charts.
func (an *Analysis) Markdown(w io.Writer, charts []Chart, notes []string) {
	fmt.Fprintf(w, "# memval fit report\n\n")
	fmt.Fprintf(w, "- Runs: %s.\n", an.groupLine())
	fmt.Fprintf(w, "- Used: %d runs; out of memory: %d; left out: %d.\n", len(an.Runs), len(an.OOMRuns), len(an.Excluded))
	fmt.Fprintf(w, "- Truth: %s.\n", truthText[an.Options.Truth])
	fmt.Fprintf(w, "- Error = (predicted - measured) / measured; APE is its absolute value; bias is the mean error (negative: the formula predicts too little).\n")
	method := an.cvMethod()
	fmt.Fprintf(w, "- After calibration: each formula's term coefficients refitted by non-negative relative least squares, errors measured by %s cross validation (never on the runs a prediction was fitted to).\n\n", method)

	fmt.Fprintf(w, "## Headline\n\n")
	an.headlineMarkdown(w)

	for _, f := range an.Formulas {
		fmt.Fprintf(w, "\n## Formula %s\n\n", f.Formula)
		fmt.Fprintf(w, "### Error by workload\n\n")
		fmt.Fprintf(w, "| quantity | runs | subset | median APE | mean APE | max error | bias |\n|---|---:|---|---:|---:|---:|---:|\n")
		for _, qa := range []QuantityAnalysis{f.Peak, f.Steady} {
			row := func(subset string, s ErrorStats) {
				fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", qa.Quantity, s.N, subset, pct(s.MedianAPE), pct(s.MeanAPE), spct(s.MaxError), spct(s.Bias))
			}
			row("all", qa.Overall)
			for _, b := range qa.By {
				row(b.Dimension+" = "+b.Value, b.Stats)
			}
		}
		for _, qa := range []QuantityAnalysis{f.Peak, f.Steady} {
			fmt.Fprintf(w, "\n### Calibration to the measured %s\n\n", qa.Quantity)
			if qa.Fit == nil {
				fmt.Fprintf(w, "No fit: %s.\n", qa.FitError)
				continue
			}
			fitMarkdown(w, qa.Fit)
			if n := noGain(qa); n != "" {
				fmt.Fprintf(w, "\n%s\n", n)
			}
		}
		if f.Calibration != nil {
			fmt.Fprintf(w, "\nCalibration file: [%s](%s).\n", CalibrationFile(f.Formula), CalibrationFile(f.Formula))
		}
	}

	fmt.Fprintf(w, "\n## Out of memory\n\n")
	if len(an.OOM) == 0 {
		fmt.Fprintf(w, "No run ran out of memory.\n")
	} else {
		fmt.Fprintf(w, "| run | ran out of memory at budget |")
		for _, f := range an.Formulas {
			fmt.Fprintf(w, " %s predicted peak |", f.Formula)
		}
		fmt.Fprintf(w, "\n|---|---:|")
		for range an.Formulas {
			fmt.Fprintf(w, "---|")
		}
		fmt.Fprintln(w)
		for _, o := range an.OOM {
			budget := "unknown"
			if o.BudgetBytes > 0 {
				budget = GiB(float64(o.BudgetBytes))
			}
			fmt.Fprintf(w, "| %s | %s |", an.OOMRuns[o.Run].Name(), budget)
			for _, f := range an.Formulas {
				p, ok := o.Predicted[f.Formula]
				switch {
				case !ok:
					fmt.Fprintf(w, " - |")
				case o.BudgetBytes == 0:
					fmt.Fprintf(w, " %s |", GiB(float64(p)))
				case p > o.BudgetBytes:
					fmt.Fprintf(w, " %s: predicted the OOM |", GiB(float64(p)))
				default:
					fmt.Fprintf(w, " %s: missed it |", GiB(float64(p)))
				}
			}
			fmt.Fprintln(w)
		}
	}
	var alarms []string
	for _, f := range an.Formulas {
		if n := an.FalseAlarms[f.Formula]; n > 0 {
			alarms = append(alarms, fmt.Sprintf("%s in %d", f.Formula, n))
		}
	}
	if len(alarms) > 0 {
		fmt.Fprintf(w, "\nFalse alarms (predicted peak above the GPU's memory, yet the run fitted): %s runs.\n", strings.Join(alarms, ", "))
	}

	fmt.Fprintf(w, "\n## Charts\n\n")
	for _, c := range charts {
		fmt.Fprintf(w, "![%s](%s.png)\n\n%s ([SVG](%s.svg))\n\n", c.Name, c.Name, c.Caption, c.Name)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}

	if len(an.Excluded) > 0 || len(an.Warnings) > 0 {
		fmt.Fprintf(w, "\n## Warnings\n\n")
		for _, r := range an.Excluded {
			fmt.Fprintf(w, "- %s: left out (%s)\n", r.Name(), r.Excluded)
		}
		for _, wn := range an.Warnings {
			wn.Path = runLabel(wn.Path)
			fmt.Fprintf(w, "- %s\n", wn)
		}
	}
	fmt.Fprintf(w, "\n## Method\n\n- Fit: measured_i ~ sum_j x_j X_ij + c, x >= 0, c >= 0, minimising sum_i ((pred_i - measured_i) / measured_i)^2 with Lawson-Hanson NNLS; X_ij is term j's feature (its unit) in run i, or its bytes when the formula's coefficient varies between runs (the fitted value is then a factor).\n- Terms zero in every run are dropped, terms constant in every run fold into the constant, terms proportional to another in every run are merged (named a+b).\n- Intervals: %s.\n", IntervalMethod)
}

// runLabel shortens a result.json path to its run folder's name.
func runLabel(path string) string {
	if path == "" {
		return ""
	}
	return filepath.Base(filepath.Dir(path))
}

func (an *Analysis) headlineMarkdown(w io.Writer) {
	fmt.Fprintf(w, "| formula | peak median APE | peak max APE | peak bias | peak after: median | peak after: max | steady median APE | steady max APE | steady bias | steady after: median | steady after: max |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range an.Formulas {
		fmt.Fprintf(w, "| %s |", f.Formula)
		for _, qa := range []QuantityAnalysis{f.Peak, f.Steady} {
			s := qa.Overall
			fmt.Fprintf(w, " %s | %s | %s |", pct(s.MedianAPE), pct(s.MaxAPE), spct(s.Bias))
			if qa.Fit != nil {
				fmt.Fprintf(w, " %s | %s |", pct(qa.Fit.CV.MedianAPE), pct(qa.Fit.CV.MaxAPE))
			} else {
				fmt.Fprintf(w, " no fit | no fit |")
			}
		}
		fmt.Fprintln(w)
	}
}

func fitMarkdown(w io.Writer, f *Fit) {
	fmt.Fprintf(w, "%d runs; relative residual sigma %s; condition number %s; %s cross validation: median APE %s, max APE %s.\n\n",
		f.Runs, pct(f.ResidualSigma), sig(f.Condition), f.CVMethod, pct(f.CV.MedianAPE), pct(f.CV.MaxAPE))
	term := "term"
	if f.Terms == TermsPerCategory {
		term = "category"
		fmt.Fprintf(w, "Fitted per term category: each value is a factor on the formula's own bytes of that category (1 = the formula as it is); the categories' terms are listed below.\n\n")
	}
	fmt.Fprintf(w, "| %s | unit | formula | fitted | %g %% interval |\n|---|---|---:|---:|---|\n", term, 100*f.Level)
	for _, c := range f.Coefficients {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", c.Term, unitLabel(c), sig(c.Original), sig(c.Value), interval(c, sig))
	}
	c := f.Constant
	mib := func(v float64) string { return MiB(v) }
	fmt.Fprintf(w, "| %s | bytes | %s | %s | %s |\n", ConstantName, MiB(c.Original), MiB(c.Value), interval(c, mib))
	for _, n := range f.Notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	if len(f.Notes) > 0 {
		fmt.Fprintln(w)
	}
}

func unitLabel(c analytic.Coefficient) string {
	if c.Scale {
		return "x formula"
	}
	return "bytes per " + c.Unit
}

func interval(c analytic.Coefficient, format func(float64) string) string {
	if c.AtBound {
		return "held at 0 by the constraint"
	}
	return format(c.Low) + " .. " + format(c.High)
}

// WriteHeadline prints the headline table as aligned text: per formula,
// median and max error on peak and steady, before and after calibration
// (cross-validated).
func (an *Analysis) WriteHeadline(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "formula\tpeak med\tpeak max\tafter med\tafter max\tsteady med\tsteady max\tafter med\tafter max\t\n")
	for _, f := range an.Formulas {
		fmt.Fprintf(tw, "%s\t", f.Formula)
		for _, qa := range []QuantityAnalysis{f.Peak, f.Steady} {
			fmt.Fprintf(tw, "%s\t%s\t", pct(qa.Overall.MedianAPE), pct(qa.Overall.MaxAPE))
			if qa.Fit != nil {
				fmt.Fprintf(tw, "%s\t%s\t", pct(qa.Fit.CV.MedianAPE), pct(qa.Fit.CV.MaxAPE))
			} else {
				fmt.Fprintf(tw, "no fit\t-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write headline: %w", err)
	}
	fmt.Fprintf(w, "(%d runs, %s truth; errors are APE; after = calibrated, %s cross-validated)\n", len(an.Runs), an.Options.Truth, an.cvMethod())
	for _, f := range an.Formulas {
		for _, qa := range []QuantityAnalysis{f.Peak, f.Steady} {
			if qa.Fit != nil && qa.Fit.Terms == TermsPerCategory {
				fmt.Fprintf(w, "%s %s: calibrated per term category (%s)\n", f.Formula, qa.Quantity, categoryReason(qa.Fit))
			}
		}
	}
	return nil
}

// cvMethod names the cross validation the fits used.
func (an *Analysis) cvMethod() string {
	for _, f := range an.Formulas {
		if f.Peak.Fit != nil {
			return f.Peak.Fit.CVMethod
		}
	}
	if an.Options.Folds >= 2 {
		return fmt.Sprintf("%d-fold", an.Options.Folds)
	}
	return "leave-one-out"
}

// categoryReason says why a fit is per category: the fall-back note, or
// that it was asked for.
func categoryReason(f *Fit) string {
	for _, n := range f.Notes {
		if strings.HasPrefix(n, "fitted per term category, not per term: ") {
			return strings.TrimPrefix(n, "fitted per term category, not per term: ")
		}
	}
	return "--terms category"
}

// noGain says, when it is so, that a calibration does no better on held-out
// runs than the formula's own coefficients do on all of them (median APE),
// so that nobody takes a fitted file for an improvement it is not.
func noGain(qa QuantityAnalysis) string {
	if qa.Fit == nil || qa.Overall.N == 0 || qa.Fit.CV.MedianAPE <= qa.Overall.MedianAPE {
		return ""
	}
	return fmt.Sprintf("Calibration does not help here: its cross-validated median error (%s) is above the formula's own (%s). Keep the formula's coefficients, or fit on runs that vary more (models, batch, sequence).",
		pct(qa.Fit.CV.MedianAPE), pct(qa.Overall.MedianAPE))
}
