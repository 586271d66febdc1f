package fit

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// ErrTooFewRuns is returned (wrapped) when there are not enough runs to fit
// a formula's coefficients and estimate their spread.
var ErrTooFewRuns = errors.New("too few runs")

// ErrCollinear is returned (wrapped) when some of a formula's terms are
// linear combinations of others over the runs, so their coefficients
// cannot be told apart.
var ErrCollinear = errors.New("collinear terms")

// ConstantName is the design column for bytes that scale with nothing.
const ConstantName = "constant"

// column is one column of the design matrix: a term (or terms whose
// features were proportional, merged) or the constant.
type column struct {
	name     string
	members  []string
	ratios   []float64 // member values / first member values
	unit     string
	scale    bool    // values are the formula's bytes (coef varied); the fitted value is a factor
	original float64 // the formula's coefficient in this column's units
	vals     []float64
}

// design is the least-squares problem for one formula and quantity: rows
// are runs, y the measured bytes; the last column is the constant.
type design struct {
	cols          []column
	y             []float64
	constantTerms []string
	dropped       []string
	notes         []string
	condition     float64
}

// termSample is one run's term data: the features and bytes of the terms
// (of one formula, for one quantity), summed by name.
type termSample struct {
	names []string // in order of first appearance
	feat  map[string]float64
	bytes map[string]float64
	unit  map[string]string
}

// buildDesign turns per-run terms and measured bytes into a design:
// features per term name; a term whose coefficient varied between runs
// enters as its bytes (the fit is then a factor on the formula's
// coefficient); columns zero in every run are dropped; columns constant in
// every run are folded into the constant; columns proportional to an
// earlier one are merged into it. It then checks that there are enough runs
// (at least columns + 2) and that the matrix has full column rank.
func buildDesign(samples []termSample, y []float64) (*design, error) {
	n := len(samples)
	if n != len(y) {
		panic("fit: buildDesign: samples and y differ in length")
	}
	var names []string
	seen := map[string]bool{}
	units := map[string]string{}
	for _, s := range samples {
		for _, nm := range s.names {
			if !seen[nm] {
				seen[nm] = true
				names = append(names, nm)
				units[nm] = s.unit[nm]
			}
		}
	}
	d := &design{y: y}
	constOriginal := 0.0
	for _, nm := range names {
		feat := make([]float64, n)
		byt := make([]float64, n)
		coef, varies := math.NaN(), false
		for i, s := range samples {
			feat[i], byt[i] = s.feat[nm], s.bytes[nm]
			if feat[i] > 0 {
				c := byt[i] / feat[i]
				if math.IsNaN(coef) {
					coef = c
				} else if !near(c, coef, 1e-9) {
					varies = true
				}
			}
		}
		c := column{name: nm, members: []string{nm}, ratios: []float64{1}, unit: units[nm], vals: feat, original: coef}
		if math.IsNaN(coef) {
			c.original = 0
		}
		if varies {
			c.vals, c.scale, c.original, c.unit = byt, true, 1, "x formula"
			d.notes = append(d.notes, fmt.Sprintf("term %q: the formula's coefficient varies between runs (e.g. with precision); its fitted value is a factor on it", nm))
		}
		switch {
		case allEqual(c.vals, 0):
			d.dropped = append(d.dropped, nm)
			d.notes = append(d.notes, fmt.Sprintf("term %q is zero in every run: dropped from the fit", nm))
			continue
		case nearlyConstant(c.vals):
			d.constantTerms = append(d.constantTerms, nm)
			constOriginal += c.original * floats.Sum(c.vals) / float64(n)
			d.notes = append(d.notes, fmt.Sprintf("term %q does not vary between runs: folded into the constant", nm))
			continue
		}
		merged := false
		for k := range d.cols {
			lead := &d.cols[k]
			if r, ok := proportional(lead.vals, c.vals); ok {
				lead.members = append(lead.members, nm)
				lead.ratios = append(lead.ratios, r)
				lead.original += c.original * r
				lead.name += "+" + nm
				d.notes = append(d.notes, fmt.Sprintf("term %q is proportional to %q in every run: merged (%s)", nm, lead.members[0], lead.name))
				merged = true
				break
			}
		}
		if !merged {
			d.cols = append(d.cols, c)
		}
	}
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	d.cols = append(d.cols, column{name: ConstantName, unit: "bytes", original: constOriginal, vals: ones})

	p := len(d.cols)
	if n < p+2 {
		return nil, fmt.Errorf("%w: %d usable runs for %d coefficients (%s); need at least %d (coefficients + 2) with different shapes",
			ErrTooFewRuns, n, p, d.columnNames(), p+2)
	}
	a, _ := d.weighted(nil)
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return nil, errors.New("design matrix: SVD did not converge")
	}
	sv := svd.Values(nil)
	d.condition = sv[0] / sv[len(sv)-1]
	if sv[len(sv)-1] <= 1e-10*sv[0] {
		var v mat.Dense
		svd.VTo(&v)
		var involved []string
		for j := 0; j < p; j++ {
			if math.Abs(v.At(j, p-1)) > 0.05 {
				involved = append(involved, d.cols[j].name)
			}
		}
		return nil, fmt.Errorf("%w: %s are linearly dependent over these runs (condition number %.3g); vary batch, sequence and model between runs, or fit with fewer terms",
			ErrCollinear, strings.Join(involved, ", "), d.condition)
	}
	if d.condition > 1e8 {
		d.notes = append(d.notes, fmt.Sprintf("design is ill-conditioned (condition number %.3g after scaling): intervals are wide", d.condition))
	}
	return d, nil
}

func (d *design) columnNames() string {
	s := make([]string, len(d.cols))
	for i, c := range d.cols {
		s[i] = c.name
	}
	return strings.Join(s, ", ")
}

// weighted returns the rows (all when rows is nil) of the design divided by
// y (relative least squares) with columns scaled to unit norm, and the
// column norms. An all-zero column keeps norm 1.
func (d *design) weighted(rows []int) (*mat.Dense, []float64) {
	if rows == nil {
		rows = make([]int, len(d.y))
		for i := range rows {
			rows[i] = i
		}
	}
	p := len(d.cols)
	a := mat.NewDense(len(rows), p, nil)
	norms := make([]float64, p)
	for j, c := range d.cols {
		col := make([]float64, len(rows))
		for k, i := range rows {
			col[k] = c.vals[i] / d.y[i]
		}
		nrm := floats.Norm(col, 2)
		if nrm == 0 {
			nrm = 1
		}
		floats.Scale(1/nrm, col)
		a.SetCol(j, col)
		norms[j] = nrm
	}
	return a, norms
}

// proportional reports whether b = r*a for every element (to 1e-9), with
// r > 0.
func proportional(a, b []float64) (float64, bool) {
	na, nb := floats.Norm(a, 2), floats.Norm(b, 2)
	if na == 0 || nb == 0 {
		return 0, false
	}
	for i := range a {
		if math.Abs(a[i]/na-b[i]/nb) > 1e-9 {
			return 0, false
		}
	}
	return nb / na, true
}

// nearlyConstant reports whether v varies by less than a millionth of its
// size between runs (e.g. a constant 500 MiB context plus a 4-byte term
// live in only some runs' peak phase): such a column cannot be told apart
// from the constant, so it folds into it.
func nearlyConstant(v []float64) bool {
	for _, e := range v {
		if !near(e, v[0], 1e-6) {
			return false
		}
	}
	return true
}

func allEqual(v []float64, x float64) bool {
	for _, e := range v {
		if !near(e, x, 1e-12) {
			return false
		}
	}
	return true
}

func near(a, b, rel float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}
