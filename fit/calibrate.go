package fit

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// IntervalMethod says how coefficient intervals are computed.
const IntervalMethod = "t interval from the residual variance and (A_P^T A_P)^-1 over the passive set of the relative (1/measured-weighted) least-squares fit; coefficients held at zero by the constraint get none"

// Fit is one formula's coefficients refitted to one measured quantity.
//
// The model is measured_i ~ sum_j x_j * X_ij + c with x, c >= 0, where
// X_ij is term j's Feature in run i (or its bytes, when the formula's
// coefficient varies between runs) and c the constant. It is fitted by
// relative least squares, minimising sum_i ((pred_i - measured_i) /
// measured_i)^2, which matches the percentage errors reported, with
// Lawson-Hanson NNLS.
type Fit struct {
	Formula  string
	Quantity Quantity
	Terms    TermMode // TermsPerTerm or TermsPerCategory: how the columns were formed
	Truth    Truth
	Runs     int

	Coefficients     []analytic.Coefficient // the term columns, in order
	Constant         analytic.Coefficient   // the constant column, in bytes
	ConstantTerms    []string
	Dropped          []string
	Notes            []string
	Condition        float64 // of the scaled design matrix
	InSample         ErrorStats
	CV               ErrorStats // on held-out runs
	CVMethod         string
	CVRel            []float64 // held-out relative error per run, in the order of the runs given
	Level            float64
	ResidualSigma    float64 // relative: standard deviation of the relative residuals
	DegreesOfFreedom int
}

// calibrate fits d and cross-validates it with folds (0 or >= runs:
// leave-one-out). level is the confidence level of the intervals.
func calibrate(d *design, level float64, folds int) (*Fit, error) {
	n, p := len(d.y), len(d.cols)
	x, passive, err := solveDesign(d, nil)
	if err != nil {
		return nil, err
	}
	f := &Fit{Runs: n, Level: level, Condition: d.condition, ConstantTerms: d.constantTerms, Dropped: d.dropped, Notes: d.notes}

	// In-sample relative residuals and their variance.
	rel := make([]float64, n)
	rss := 0.0
	npass := 0
	for _, ps := range passive {
		if ps {
			npass++
		}
	}
	for i := 0; i < n; i++ {
		rel[i] = RelError(predictRow(d, x, i), d.y[i])
		rss += rel[i] * rel[i]
	}
	f.InSample = Stats(rel)
	dof := n - npass
	f.DegreesOfFreedom = dof
	sigma2 := rss / float64(max(dof, 1))
	f.ResidualSigma = math.Sqrt(sigma2)

	// Intervals over the passive set, in the scaled space, then unscaled.
	se := make([]float64, p)
	a, norms := d.weighted(nil)
	var idx []int
	for j := 0; j < p; j++ {
		if passive[j] {
			idx = append(idx, j)
		}
	}
	if len(idx) > 0 && dof > 0 {
		ap := mat.NewDense(n, len(idx), nil)
		for k, j := range idx {
			col := mat.Col(nil, j, a)
			ap.SetCol(k, col)
		}
		var ata, inv mat.Dense
		ata.Mul(ap.T(), ap)
		if err := inv.Inverse(&ata); err == nil {
			for k, j := range idx {
				se[j] = math.Sqrt(sigma2*math.Max(inv.At(k, k), 0)) / norms[j]
			}
		} else {
			f.Notes = append(f.Notes, "the passive set's normal matrix is singular: no intervals")
		}
	}
	tq := 0.0
	if dof > 0 {
		tq = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(dof)}.Quantile(1 - (1-level)/2)
	}
	for j, c := range d.cols {
		co := analytic.Coefficient{
			Term: c.name, Unit: c.unit, Scale: c.scale, Value: x[j], Level: level, Original: c.original,
			AtBound: !passive[j],
		}
		if len(c.members) > 1 {
			co.Members, co.Ratios = c.members, c.ratios
		}
		if passive[j] {
			co.Low = math.Max(0, x[j]-tq*se[j])
			co.High = x[j] + tq*se[j]
			if tq*se[j] > 0.5*x[j] && j != p-1 {
				f.Notes = append(f.Notes, fmt.Sprintf("coefficient %q is poorly determined (interval +-%.0f %% of its value): its share of memory is within the noise of these runs", c.name, 100*tq*se[j]/x[j]))
			}
		}
		if j == p-1 {
			f.Constant = co
		} else {
			f.Coefficients = append(f.Coefficients, co)
		}
	}

	// Cross validation: each fold fitted without its runs, then predicted.
	k := folds
	if k <= 0 || k >= n {
		k = n
		f.CVMethod = "leave-one-out"
	} else {
		f.CVMethod = fmt.Sprintf("%d-fold", k)
	}
	f.CVRel = make([]float64, n)
	for fold := 0; fold < k; fold++ {
		var train, test []int
		for i := 0; i < n; i++ {
			if i%k == fold {
				test = append(test, i)
			} else {
				train = append(train, i)
			}
		}
		xf, _, err := solveDesign(d, train)
		if err != nil {
			return nil, fmt.Errorf("cross validation, fold %d: %w", fold+1, err)
		}
		for _, i := range test {
			f.CVRel[i] = RelError(predictRow(d, xf, i), d.y[i])
		}
	}
	f.CV = Stats(f.CVRel)
	return f, nil
}

// solveDesign fits the rows (nil: all) of d by NNLS and returns the
// coefficients in the design's units.
func solveDesign(d *design, rows []int) ([]float64, []bool, error) {
	a, norms := d.weighted(rows)
	m, _ := a.Dims()
	b := make([]float64, m)
	for i := range b {
		b[i] = 1
	}
	res, err := NNLS(a, b)
	if err != nil {
		return nil, nil, err
	}
	x := make([]float64, len(res.X))
	for j := range x {
		x[j] = res.X[j] / norms[j]
	}
	return x, res.Passive, nil
}

func predictRow(d *design, x []float64, i int) float64 {
	s := 0.0
	for j, c := range d.cols {
		s += x[j] * c.vals[i]
	}
	return s
}

// Calibration turns a peak fit (and, optionally, a steady fit) into the
// calibration.json content for g, over runs.
func Calibration(peak, steady *Fit, g Group, runs []Run) *analytic.Calibration {
	c := &analytic.Calibration{
		Schema:  analytic.CalibrationSchema,
		Formula: peak.Formula,
		Truth:   string(peak.Truth),
		GPU:     g.GPU, Driver: g.Driver, CUDA: g.CUDA, Torch: g.Torch, Simulated: g.Simulated,
		Fitted:        fittedRange(peak.Formula, runs),
		CalibratedFit: calibratedFit(peak),
	}
	if steady != nil {
		s := calibratedFit(steady)
		c.Steady = &s
	}
	// Per-term files stay version 1 so that older memval reads them.
	if c.Terms != analytic.FitPerCategory && (c.Steady == nil || c.Steady.Terms != analytic.FitPerCategory) {
		c.Schema = analytic.CalibrationSchemaTerms
	}
	c.Notes = append(c.Notes, "intervals: "+IntervalMethod)
	return c
}

func calibratedFit(f *Fit) analytic.CalibratedFit {
	terms := ""
	if f.Terms == TermsPerCategory {
		terms = analytic.FitPerCategory
	}
	return analytic.CalibratedFit{
		Quantity:      string(f.Quantity),
		Terms:         terms,
		Coefficients:  f.Coefficients,
		Constant:      roundBytes(f.Constant.Value),
		ConstantLow:   roundBytes(f.Constant.Low),
		ConstantHigh:  roundBytes(f.Constant.High),
		ConstantTerms: f.ConstantTerms,
		Dropped:       f.Dropped,
		CVError:       analytic.CVError{MedianAPE: f.CV.MedianAPE, MaxAPE: f.CV.MaxAPE, Method: f.CVMethod},
	}
}

func roundBytes(v float64) uint64 {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	return uint64(math.Round(v))
}

func fittedRange(formula string, runs []Run) analytic.FittedRange {
	fr := analytic.FittedRange{Runs: len(runs)}
	first := true
	upd := func(r *analytic.Range, v int64) {
		if first || v < r.Min {
			r.Min = v
		}
		if first || v > r.Max {
			r.Max = v
		}
	}
	prec, att, ckpt := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range runs {
		if r.Workload == nil {
			continue
		}
		var params int64
		if e := r.Prediction(formula); e != nil {
			params = e.Params
		}
		w := r.Workload
		upd(&fr.Params, params)
		upd(&fr.Batch, int64(w.Batch))
		upd(&fr.Seq, int64(w.Seq))
		upd(&fr.Tokens, int64(w.Batch)*int64(w.Seq))
		first = false
		prec[precisionOf(w)] = true
		att[attentionOf(w)] = true
		ckpt[checkpointingOf(w)] = true
	}
	fr.Precisions, fr.Attention, fr.Checkpointing = sortedKeys(prec), sortedKeys(att), sortedKeys(ckpt)
	return fr
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func precisionOf(w *model.Workload) string {
	if w.Precision == "" {
		return string(model.FP32)
	}
	return string(w.Precision)
}

func attentionOf(w *model.Workload) string {
	if w.Attention == "" {
		return string(model.MathAttention)
	}
	return string(w.Attention)
}

func checkpointingOf(w *model.Workload) string {
	if w.Checkpointing == "" {
		return string(model.NoCheckpointing)
	}
	return string(w.Checkpointing)
}
