package fit

import (
	"fmt"
	"strings"

	"github.com/memval/memval/analytic"
)

// TermMode says what Analyze fits a coefficient to (Options.Terms).
type TermMode string

const (
	// TermsAuto fits per term when the runs are enough for the merged
	// per-term design (runs >= coefficients + 2) and it is not collinear,
	// and per category otherwise, saying why in the fit's notes.
	TermsAuto TermMode = "auto"
	// TermsPerTerm fits one coefficient per term (or merged terms).
	TermsPerTerm TermMode = analytic.FitPerTerm
	// TermsPerCategory fits one factor per term category
	// (analytic.TermCategory) on the formula's own bytes, plus the
	// constant.
	TermsPerCategory TermMode = analytic.FitPerCategory
)

// TermModes lists the values ParseTermMode accepts.
func TermModes() []string {
	return []string{string(TermsAuto), string(TermsPerTerm), string(TermsPerCategory)}
}

// ParseTermMode checks a --terms value; "" is TermsAuto.
func ParseTermMode(s string) (TermMode, error) {
	switch TermMode(s) {
	case "":
		return TermsAuto, nil
	case TermsAuto, TermsPerTerm, TermsPerCategory:
		return TermMode(s), nil
	}
	return "", fmt.Errorf("terms %q: want one of %s", s, strings.Join(TermModes(), ", "))
}

// categorySample turns a run's terms (already selected for the quantity,
// see liveTerms) into one column per category: feature and bytes are both
// the sum of the category's term bytes (Feature*Coef), so the fitted value
// is a factor on the formula's own bytes, 1 meaning the formula as it is.
// Terms of no category (coefficient 0) are left out. members collects the
// term names of each category.
func categorySample(terms []analytic.Term, members map[string][]string) termSample {
	ts := termSample{feat: map[string]float64{}, bytes: map[string]float64{}, unit: map[string]string{}}
	for _, t := range terms {
		cat := analytic.TermCategory(t)
		if cat == "" {
			continue
		}
		b := t.Feature * t.Coef
		if t.Feature == 0 && t.Bytes > 0 {
			b = float64(t.Bytes)
		}
		if _, ok := ts.feat[cat]; !ok {
			ts.names = append(ts.names, cat)
			ts.unit[cat] = "x formula"
		}
		ts.feat[cat] += b
		ts.bytes[cat] += b
		if members != nil && !containsString(members[cat], t.Name) {
			members[cat] = append(members[cat], t.Name)
		}
	}
	// Report the categories in a fixed order.
	var ordered []string
	for _, c := range analytic.Categories() {
		if _, ok := ts.feat[c]; ok {
			ordered = append(ordered, c)
		}
	}
	ts.names = ordered
	return ts
}

func containsString(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// liveTerms returns the terms that make up e's quantity q: for steady the
// terms that are not peak-only; for peak, when terms name phases, the
// terms live in the phase with the largest total (Phase empty or that
// phase), since the formula's peak is the largest phase, not the sum of
// all terms.
func liveTerms(e *analytic.Estimate, q Quantity) []analytic.Term {
	var out []analytic.Term
	if q == Steady {
		for _, t := range e.Terms {
			if !t.Peak {
				out = append(out, t)
			}
		}
		return out
	}
	sums := map[string]float64{}
	for _, t := range e.Terms {
		if t.Phase != "" {
			sums[t.Phase] += float64(t.Bytes)
		}
	}
	if len(sums) == 0 {
		return e.Terms
	}
	best, bestSum := "", -1.0
	for _, ph := range []string{analytic.PhaseForward, analytic.PhaseOptimizer} {
		if v, ok := sums[ph]; ok && v > bestSum {
			best, bestSum = ph, v
		}
	}
	for ph, v := range sums { // phases this code does not know, in no order
		if v > bestSum {
			best, bestSum = ph, v
		}
	}
	for _, t := range e.Terms {
		if t.Phase == "" || t.Phase == best {
			out = append(out, t)
		}
	}
	return out
}

// categoryDesign is the per-category design for the runs' live terms: one
// column per category (analytic.TermCategory) whose values are the
// category's bytes, plus the constant. A category constant in every run
// (the CUDA context) folds into the constant. The notes name each
// category's terms.
func categoryDesign(live [][]analytic.Term, y []float64) (*design, error) {
	members := map[string][]string{}
	samples := make([]termSample, len(live))
	for i, terms := range live {
		samples[i] = categorySample(terms, members)
	}
	d, err := buildDesign(samples, y)
	if err != nil {
		return nil, err
	}
	// buildDesign speaks of terms; here its columns are categories.
	for k, n := range d.notes {
		d.notes[k] = strings.Replace(n, "term ", "category ", 1)
	}
	// The calibration file names terms in constant_terms and dropped.
	expand := func(cats []string) []string {
		var out []string
		for _, c := range cats {
			out = append(out, members[c]...)
		}
		return out
	}
	d.constantTerms, d.dropped = expand(d.constantTerms), expand(d.dropped)
	var notes []string
	for _, c := range analytic.Categories() {
		if m := members[c]; len(m) > 0 {
			notes = append(notes, fmt.Sprintf("category %s: %s", c, strings.Join(m, ", ")))
		}
	}
	for k := range d.cols {
		if d.cols[k].name != ConstantName {
			d.cols[k].scale, d.cols[k].unit = true, "x formula"
		}
	}
	d.notes = append(d.notes, notes...)
	return d, nil
}
