package fit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler/schema"
)

// PublishedScenario is the scenario of a published measurement (see
// schema.Published): the model, a preset or a config.json beside the
// result, and the workload as the source states or implies it. Arch is
// filled in from Model by UpdatePublished.
type PublishedScenario struct {
	Model    PublishedModel  `json:"model"`
	Workload *model.Workload `json:"workload,omitempty"`
	Arch     *model.Arch     `json:"arch,omitempty"`
	// Device, when set, is what the device-level estimate needs to know
	// about the measured machine: its GPU (the cuBLAS workspace, a context
	// measured on that GPU) and CUDA's module loading. Absent: an H100 and
	// lazy loading, memval's defaults.
	Device *PublishedDevice `json:"device,omitempty"`
}

// PublishedDevice is the measured machine, as far as the device-level
// estimate depends on it.
type PublishedDevice struct {
	GPU string `json:"gpu,omitempty"` // a name analytic.GPUByName knows, e.g. v100-16gb
	// ModuleLoading is CUDA_MODULE_LOADING as the run had it: lazy
	// (PyTorch's default since 1.13) or eager (before CUDA 11.7 there was
	// no lazy loading).
	ModuleLoading string `json:"module_loading,omitempty"`
}

// options turns d into the device-level estimate's options, or an error
// naming the field.
func (d *PublishedDevice) options() (analytic.DeviceOptions, error) {
	var o analytic.DeviceOptions
	if d == nil {
		return o, nil
	}
	if d.GPU != "" {
		g, err := analytic.GPUByName(d.GPU)
		if err != nil {
			return o, fmt.Errorf("field scenario.device.gpu: %w", err)
		}
		o.GPU = g.Name
	}
	switch d.ModuleLoading {
	case "", "lazy":
	case "eager":
		o.EagerLoading = true
	default:
		return o, fmt.Errorf("field scenario.device.module_loading: %q: want lazy or eager", d.ModuleLoading)
	}
	return o, nil
}

// PublishedModel names the model of a published measurement: a preset or
// a Hugging Face config.json relative to the result's folder.
type PublishedModel struct {
	Preset string `json:"preset,omitempty"`
	Config string `json:"config,omitempty"`
}

// IsPublished reports whether the run records a published measurement.
func (r Run) IsPublished() bool { return r.Result.Published != nil }

// PredictPublished computes every formula's prediction for the published
// measurement in res, read from path (its config.json is looked up beside
// it), each with its device-level peaks (analytic.PredictDevice with the
// default context and allocator settings): a measurement is compared with
// the figure of its own basis (PredictedOn). A measurement that is not
// evaluated gets no predictions.
func PredictPublished(path string, res *schema.Result) (*model.Arch, []analytic.Estimate, error) {
	p := res.Published
	if p == nil {
		return nil, nil, fmt.Errorf("%s: field published: missing; not a published measurement", path)
	}
	if p.NotEvaluated != "" {
		return nil, nil, nil
	}
	var sc PublishedScenario
	if len(res.Scenario) == 0 {
		return nil, nil, fmt.Errorf("%s: field scenario: missing; give model and workload or published.not_evaluated", path)
	}
	if err := json.Unmarshal(res.Scenario, &sc); err != nil {
		return nil, nil, fmt.Errorf("%s: field scenario: %w", path, err)
	}
	if sc.Workload == nil {
		return nil, nil, fmt.Errorf("%s: field scenario.workload: missing", path)
	}
	var a model.Arch
	var err error
	switch {
	case sc.Model.Preset != "" && sc.Model.Config != "":
		return nil, nil, fmt.Errorf("%s: field scenario.model: both preset and config; keep one", path)
	case sc.Model.Preset != "":
		a, err = model.Preset(sc.Model.Preset)
	case sc.Model.Config != "":
		a, err = model.LoadConfig(filepath.Join(filepath.Dir(path), sc.Model.Config))
	default:
		return nil, nil, fmt.Errorf("%s: field scenario.model: give preset or config", path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: field scenario.model: %w", path, err)
	}
	opts, err := sc.Device.options()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var preds []analytic.Estimate
	for _, f := range analytic.Formulas() {
		var e analytic.Estimate
		err := analytic.PredictDevice(&e, f, a, *sc.Workload, opts)
		if errors.Is(err, analytic.ErrNotApplicable) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: formula %s: %w", path, f, err)
		}
		preds = append(preds, e)
	}
	return &a, preds, nil
}

// PredictedOn is the figure of e that a measurement of basis is compared
// with: the device-level estimate's allocated, reserved or device peak
// (analytic.Device), and the formula's own peak_bytes for a basis the
// source does not state.
func PredictedOn(e *analytic.Estimate, basis string) uint64 {
	if e.Device == nil {
		return e.Peak
	}
	switch basis {
	case schema.BasisAllocated:
		return e.Device.AllocatedPeak
	case schema.BasisReserved:
		return e.Device.ReservedPeak
	case schema.BasisNVML:
		return e.Device.DevicePeak
	}
	return e.Peak
}

// UpdatePublished returns res with scenario.arch and predictions computed
// by PredictPublished, for writing back; the rest is left as it is.
func UpdatePublished(path string, res *schema.Result) (*schema.Result, error) {
	a, preds, err := PredictPublished(path, res)
	if err != nil {
		return nil, err
	}
	out := *res
	raw, err := analytic.EncodeEstimates(preds)
	if err != nil {
		return nil, err
	}
	out.Predictions = raw
	if a != nil {
		var sc PublishedScenario
		if err := json.Unmarshal(res.Scenario, &sc); err != nil {
			return nil, err
		}
		sc.Arch = a
		raw, err := json.Marshal(sc)
		if err != nil {
			return nil, err
		}
		out.Scenario = raw
	}
	return &out, nil
}

// PublishedPoint is one evaluated measurement against one formula.
type PublishedPoint struct {
	Run       int // index into PublishedAnalysis.Runs
	Predicted uint64
	Measured  uint64
	Rel       float64
	CVRel     float64 // after the leave-one-source-out calibration; NaN when not fitted
}

// BasisAnalysis is one formula on the measurements of one basis.
type BasisAnalysis struct {
	Formula   string
	Basis     string
	Points    []PublishedPoint
	Stats     ErrorStats
	BySource  map[string]ErrorStats
	CV        ErrorStats // leave-one-source-out calibrated errors
	CVSources int        // sources that could be held out (the others had no runs to fit on)
	CVNote    string
}

// PublishedAnalysis is the outcome of AnalyzePublished.
type PublishedAnalysis struct {
	Runs         []Run            // evaluated measurements that fitted
	OOM          []Run            // evaluated measurements that ran out of memory
	Inconsistent []Run            // figures their stated setup cannot give (Inconsistent): shown, not scored
	NotEvaluated map[string][]Run // reason -> measurements
	Sources      []string
	Formulas     []string
	Bases        []BasisAnalysis // formula-major, in schema.Bases order
	Warnings     []Warning
	All          int // measurements read
}

// AnalyzePublished compares every formula with published measurements, per
// basis: the allocated, reserved and device bases each with their own
// truth, and "not stated" apart. It calibrates each formula per term
// category, leaving one source out at a time, so a calibration is judged
// on sources it never saw. Runs that are not published are an error.
func AnalyzePublished(runs []Run) (*PublishedAnalysis, error) {
	an := &PublishedAnalysis{NotEvaluated: map[string][]Run{}, All: len(runs)}
	srcSeen := map[string]bool{}
	for _, r := range runs {
		p := r.Result.Published
		if p == nil {
			return nil, fmt.Errorf("%w: %s is not a published measurement (field published missing); analyse it apart", ErrBadOption, r.Path)
		}
		if err := p.Check(r.Result); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path, err)
		}
		if !srcSeen[p.Source.Name] {
			srcSeen[p.Source.Name] = true
			an.Sources = append(an.Sources, p.Source.Name)
		}
		switch {
		case p.NotEvaluated != "":
			an.NotEvaluated[p.NotEvaluated] = append(an.NotEvaluated[p.NotEvaluated], r)
		case len(r.Result.Predictions) == 0:
			an.Warnings = append(an.Warnings, Warning{Path: r.Path, Field: "predictions", Message: "missing: run go test ./fit -run TestPublishedPredictions -update"})
		case r.OOM():
			an.OOM = append(an.OOM, r)
		case Inconsistent(r.Result, r.Predictions) != "":
			an.Inconsistent = append(an.Inconsistent, r)
		default:
			an.Runs = append(an.Runs, r)
		}
	}
	sort.Strings(an.Sources)
	if len(an.Runs) == 0 {
		return nil, fmt.Errorf("%w: none of the %d published measurements can be evaluated", ErrNoUsableRuns, len(runs))
	}
	for _, r := range an.Runs {
		for _, e := range r.Predictions {
			if !slices.Contains(an.Formulas, e.Formula) {
				an.Formulas = append(an.Formulas, e.Formula)
			}
		}
	}
	for _, f := range an.Formulas {
		for _, b := range schema.Bases() {
			ba := an.basis(f, b)
			if len(ba.Points) > 0 {
				an.Bases = append(an.Bases, ba)
			}
		}
	}
	return an, nil
}

func (an *PublishedAnalysis) basis(f, basis string) BasisAnalysis {
	ba := BasisAnalysis{Formula: f, Basis: basis, BySource: map[string]ErrorStats{}}
	var live [][]analytic.Term
	var y []float64
	var src []string
	for i, r := range an.Runs {
		p := r.Result.Published
		if p.Basis != basis {
			continue
		}
		e := r.Prediction(f)
		if e == nil || e.Peak == 0 {
			continue
		}
		meas := float64(p.PeakBytes)
		pred := PredictedOn(e, basis)
		ba.Points = append(ba.Points, PublishedPoint{Run: i, Predicted: pred, Measured: p.PeakBytes, Rel: RelError(float64(pred), meas), CVRel: math.NaN()})
		live = append(live, liveTerms(e, Peak))
		y = append(y, meas)
		src = append(src, p.Source.Name)
	}
	rel := make([]float64, len(ba.Points))
	bySrc := map[string][]float64{}
	for k, pt := range ba.Points {
		rel[k] = pt.Rel
		bySrc[src[k]] = append(bySrc[src[k]], pt.Rel)
	}
	ba.Stats = Stats(rel)
	for s, v := range bySrc {
		ba.BySource[s] = Stats(v)
	}
	if len(ba.Points) == 0 {
		return ba
	}
	// Leave one source out: fit the category factors on the other sources,
	// predict the held-out one.
	d, err := categoryDesign(live, y)
	if err != nil {
		ba.CVNote = "no calibration: " + err.Error()
		return ba
	}
	var cv []float64
	for _, s := range sortedKeys(setOf(src)) {
		var train, test []int
		for k := range src {
			if src[k] == s {
				test = append(test, k)
			} else {
				train = append(train, k)
			}
		}
		if len(train) < 2 {
			continue
		}
		x, _, err := solveDesign(d, train)
		if err != nil {
			continue
		}
		ba.CVSources++
		for _, k := range test {
			pred := predictRow(d, x, k)
			ba.Points[k].CVRel = RelError(pred, y[k])
			cv = append(cv, ba.Points[k].CVRel)
		}
	}
	ba.CV = Stats(cv)
	if ba.CVSources < 2 {
		ba.CVNote = fmt.Sprintf("measurements from %d source(s) only: no source can be held out against another", len(bySrc))
	}
	return ba
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// basisLabel is how reports name a basis.
var basisLabel = map[string]string{
	schema.BasisAllocated: "allocated",
	schema.BasisReserved:  "reserved",
	schema.BasisNVML:      "device (nvml)",
	schema.BasisNotStated: "not stated (apart)",
}

// Headline writes the headline table (Markdown): per formula and basis,
// the number of measurements and sources, median and max |error|, bias,
// and the leave-one-source-out calibrated median and max.
func (an *PublishedAnalysis) Headline(w io.Writer) {
	fmt.Fprintf(w, "| formula | basis | measurements | sources | median \\|error\\| | max \\|error\\| | bias | calibrated, leave-one-source-out: median | max |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, b := range an.Bases {
		cvMed, cvMax := "-", "-"
		if b.CVSources >= 2 {
			cvMed, cvMax = pct(b.CV.MedianAPE), pct(b.CV.MaxAPE)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %s | %s | %s |\n", b.Formula, basisLabel[b.Basis], b.Stats.N, len(b.BySource),
			pct(b.Stats.MedianAPE), pct(b.Stats.MaxAPE), spct(b.Stats.Bias), cvMed, cvMax)
	}
}

// Counts writes one line: measurements, sources, evaluated, out of memory,
// not evaluated.
func (an *PublishedAnalysis) Counts(w io.Writer) {
	ne := 0
	for _, v := range an.NotEvaluated {
		ne += len(v)
	}
	fmt.Fprintf(w, "%d measurements from %d sources (%s): %d evaluated, %d out of memory (OOM table), %d inconsistent with their stated setup (shown, not scored), %d not evaluated yet.\n",
		an.All, len(an.Sources), strings.Join(an.Sources, ", "), len(an.Runs), len(an.OOM), len(an.Inconsistent), ne)
}

// InconsistentTable writes the measurements whose figure their stated
// setup cannot give, why, and every formula's figure on their basis
// (none of them scored), as a Markdown table.
func (an *PublishedAnalysis) InconsistentTable(w io.Writer) {
	if len(an.Inconsistent) == 0 {
		fmt.Fprintf(w, "Every evaluated figure is at least what its stated setup holds at once.\n")
		return
	}
	fmt.Fprintf(w, "| measurement | source | basis | measured | why | %s |\n|---|---|---|---:|---|%s\n", strings.Join(an.Formulas, " | "), strings.Repeat("---:|", len(an.Formulas)))
	for _, r := range an.Inconsistent {
		p := r.Result.Published
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |", r.Name(), p.Source.Name, basisLabel[p.Basis], GiB(float64(p.PeakBytes)), Inconsistent(r.Result, r.Predictions))
		an.formulaCells(w, r)
	}
}

// formulaCells ends a table row of r with each formula's figure on r's
// basis and its error, "-" where the formula has none.
func (an *PublishedAnalysis) formulaCells(w io.Writer, r Run) {
	p := r.Result.Published
	for _, f := range an.Formulas {
		if e := r.Prediction(f); e != nil {
			pred := PredictedOn(e, p.Basis)
			fmt.Fprintf(w, " %s (%s) |", GiB(float64(pred)), spct(RelError(float64(pred), float64(p.PeakBytes))))
		} else {
			fmt.Fprintf(w, " - |")
		}
	}
	fmt.Fprintln(w)
}

// Roadmap writes the reasons measurements are not evaluated, most frequent
// first, as a Markdown table.
func (an *PublishedAnalysis) Roadmap(w io.Writer) {
	type kv struct {
		reason string
		runs   []Run
	}
	var rs []kv
	for k, v := range an.NotEvaluated {
		rs = append(rs, kv{k, v})
	}
	sort.Slice(rs, func(i, j int) bool {
		if len(rs[i].runs) != len(rs[j].runs) {
			return len(rs[i].runs) > len(rs[j].runs)
		}
		return rs[i].reason < rs[j].reason
	})
	fmt.Fprintf(w, "| not evaluated because | measurements | sources |\n|---|---:|---|\n")
	for _, r := range rs {
		src := map[string]bool{}
		for _, run := range r.runs {
			src[run.Result.Published.Source.Name] = true
		}
		fmt.Fprintf(w, "| %s | %d | %s |\n", r.reason, len(r.runs), strings.Join(sortedKeys(src), ", "))
	}
}

// Markdown writes the whole report.
func (an *PublishedAnalysis) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# memval fit report: published measurements\n\n")
	an.Counts(w)
	fmt.Fprintf(w, "\nError = (predicted - measured) / measured of the peak; bias is the mean error (negative: the formula predicts too little). ")
	fmt.Fprintf(w, "Each figure is compared on its own basis: max_memory_allocated (framework.max_allocated), max_memory_reserved (framework.max_reserved), nvidia-smi/NVML used (summary.peak_device_bytes); figures whose basis the source does not state are reported apart and never mixed in. ")
	fmt.Fprintf(w, "Each basis is compared with the matching figure of the estimate's device-level peaks: allocated_peak_bytes, reserved_peak_bytes (the step played through the caching-allocator model; formulas without a tensor timeline take reserved = allocated) or device_peak_bytes (reserved + CUDA context + workspaces + non-torch memory); a basis not stated is compared with the formula's peak_bytes. The OOM table uses device_peak_bytes. ")
	fmt.Fprintf(w, "Calibrated: each formula's term-category factors and constant refitted by non-negative relative least squares on all other sources, then applied to the held-out source.\n\n")
	fmt.Fprintf(w, "## Headline\n\n")
	an.Headline(w)
	fmt.Fprintf(w, "\n## By source\n\n| formula | basis | source | measurements | median \\|error\\| | max \\|error\\| | bias |\n|---|---|---|---:|---:|---:|---:|\n")
	for _, b := range an.Bases {
		for _, s := range sortedKeys(setOfKeys(b.BySource)) {
			st := b.BySource[s]
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s |\n", b.Formula, basisLabel[b.Basis], s, st.N, pct(st.MedianAPE), pct(st.MaxAPE), spct(st.Bias))
		}
	}
	fmt.Fprintf(w, "\n## Every measurement\n\n| measurement | source | basis | measured | ")
	fmt.Fprintf(w, "%s |\n|---|---|---|---:|%s\n", strings.Join(an.Formulas, " | "), strings.Repeat("---:|", len(an.Formulas)))
	for _, r := range an.Runs {
		p := r.Result.Published
		fmt.Fprintf(w, "| %s | %s | %s | %s |", r.Name(), p.Source.Name, basisLabel[p.Basis], GiB(float64(p.PeakBytes)))
		an.formulaCells(w, r)
	}
	for _, b := range an.Bases {
		if b.CVNote != "" {
			fmt.Fprintf(w, "\n- %s, %s: %s", b.Formula, basisLabel[b.Basis], b.CVNote)
		}
	}
	fmt.Fprintf(w, "\n\n## Out of memory\n\n")
	if len(an.OOM) == 0 {
		fmt.Fprintf(w, "No evaluated measurement ran out of memory.\n")
	} else {
		fmt.Fprintf(w, "| measurement | source | GPU memory | %s |\n|---|---|---:|%s\n", strings.Join(an.Formulas, " | "), strings.Repeat("---|", len(an.Formulas)))
		for _, r := range an.OOM {
			fmt.Fprintf(w, "| %s | %s | %s |", r.Name(), r.Result.Published.Source.Name, GiB(float64(r.TotalBytes)))
			for _, f := range an.Formulas {
				e := r.Prediction(f)
				switch {
				case e == nil:
					fmt.Fprintf(w, " - |")
				case r.TotalBytes > 0 && e.DevicePeak() > r.TotalBytes:
					fmt.Fprintf(w, " %s: predicted the OOM |", GiB(float64(e.DevicePeak())))
				default:
					fmt.Fprintf(w, " %s: missed it |", GiB(float64(e.DevicePeak())))
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "\n## Inconsistent with their stated setup\n\n")
	an.InconsistentTable(w)
	fmt.Fprintf(w, "\n## Not yet expressible (the roadmap)\n\n")
	an.Roadmap(w)
	if len(an.Warnings) > 0 {
		fmt.Fprintf(w, "\n## Warnings\n\n")
		for _, wn := range an.Warnings {
			fmt.Fprintf(w, "- %s\n", wn)
		}
	}
}

func setOfKeys(m map[string]ErrorStats) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// WriteReport writes report.md into dir (created if missing).
func (an *PublishedAnalysis) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report folder: %w", err)
	}
	var b strings.Builder
	an.Markdown(&b)
	if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
