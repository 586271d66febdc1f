package fit

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
)

// Known factors per category on the seed-like terms of synthRuns:
// per_param 18/16, activations (input ids 8 B*S, activations 14 B*S*H*L)
// 1.3, scores 2, logits (6 + 4 B*S*V) 0.9, and a 500 MiB constant.
var categoryFactors = map[string]float64{
	analytic.CategoryPerParam: 18.0 / 16, analytic.CategoryActivations: 1.3,
	analytic.CategoryScores: 2, analytic.CategoryLogits: 0.9,
}

var categoryTruth = truthCoefs{perParam: 18, input: 8 * 1.3, act: 14 * 1.3, scores: 4 * 2, logits: 10 * 0.9, constant: 500 << 20}

func TestCategoryModeRecoversFactors(t *testing.T) {
	runs := synthRuns(7, categoryTruth, 0.01, []int{1, 2, 4, 8}, []int{128, 512, 1024})
	an, err := Analyze(runs, Options{Formulas: []string{"seed"}, Terms: TermsPerCategory})
	if err != nil {
		t.Fatal(err)
	}
	f := an.Formulas[0].Peak.Fit
	if f == nil {
		t.Fatalf("peak fit failed: %s", an.Formulas[0].Peak.FitError)
	}
	if f.Terms != TermsPerCategory {
		t.Errorf("mode: got %q, want %q", f.Terms, TermsPerCategory)
	}
	if len(f.Coefficients) != len(categoryFactors) {
		t.Fatalf("got %d coefficients %v, want %d", len(f.Coefficients), names(f), len(categoryFactors))
	}
	for _, c := range f.Coefficients {
		want, ok := categoryFactors[c.Term]
		if !ok {
			t.Errorf("unexpected coefficient %q", c.Term)
			continue
		}
		if !c.Scale || c.Original != 1 {
			t.Errorf("%s: got scale %v original %v, want a factor with original 1", c.Term, c.Scale, c.Original)
		}
		if c.AtBound || c.Low > want || c.High < want {
			t.Errorf("%s: got %.4f [%.4f, %.4f], want the interval to hold %v", c.Term, c.Value, c.Low, c.High, want)
		}
		if math.Abs(c.Value-want) > 0.1*want {
			t.Errorf("%s: got %.4f, want %v within 10 %%", c.Term, c.Value, want)
		}
	}
	if c := f.Constant; c.Low > categoryTruth.constant || c.High < categoryTruth.constant {
		t.Errorf("constant: got [%.0f, %.0f], want it to hold %.0f", c.Low, c.High, categoryTruth.constant)
	}
	cal := an.Formulas[0].Calibration
	if cal == nil || cal.Terms != analytic.FitPerCategory || cal.Schema != 2 {
		t.Fatalf("calibration: got %+v, want terms %q and schema 2", cal, analytic.FitPerCategory)
	}
	var b bytes.Buffer
	if err := cal.Write(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := analytic.ParseCalibration(b.Bytes()); err != nil {
		t.Errorf("the written calibration does not load: %v", err)
	}
}

// Seven runs: enough for the 5 category columns (7 >= 5 + 2), too few for
// the 6 merged per-term columns (8 needed).
func TestAutoFallsBackToCategories(t *testing.T) {
	runs := synthRuns(3, categoryTruth, 0.01, []int{1, 2}, []int{128, 512})[:7]
	an, err := Analyze(runs, Options{Formulas: []string{"seed"}})
	if err != nil {
		t.Fatal(err)
	}
	qa := an.Formulas[0].Peak
	if qa.Fit == nil {
		t.Fatalf("peak fit failed: %s", qa.FitError)
	}
	if qa.Fit.Terms != TermsPerCategory {
		t.Fatalf("mode: got %q, want %q", qa.Fit.Terms, TermsPerCategory)
	}
	if len(qa.Fit.Notes) == 0 || !strings.Contains(qa.Fit.Notes[0], "too few runs: 7 usable runs for 6 coefficients") {
		t.Errorf("notes: got %q, want the first to say why (too few runs)", qa.Fit.Notes)
	}
	var h bytes.Buffer
	if err := an.WriteHeadline(&h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), "seed peak: calibrated per term category (too few runs") {
		t.Errorf("headline does not say why it fitted per category:\n%s", h.String())
	}
	var md bytes.Buffer
	an.Markdown(&md, nil, nil)
	if !strings.Contains(md.String(), "| category | unit |") {
		t.Errorf("report has no per-category table:\n%s", md.String())
	}

	// Forced per term, the same runs are too few.
	an, err = Analyze(runs, Options{Formulas: []string{"seed"}, Terms: TermsPerTerm})
	if err != nil {
		t.Fatal(err)
	}
	if qa := an.Formulas[0].Peak; qa.Fit != nil || !strings.Contains(qa.FitError, "too few runs") {
		t.Errorf("--terms term: got fit error %q, want too few runs", qa.FitError)
	}
}

func TestAnalyzeRejectsUnknownTermMode(t *testing.T) {
	runs := synthRuns(3, categoryTruth, 0.01, []int{1, 2}, []int{128, 512})
	_, err := Analyze(runs, Options{Terms: "groups"})
	if !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), `terms "groups"`) {
		t.Errorf("got %v, want ErrBadOption naming the value", err)
	}
}

func TestTermCategory(t *testing.T) {
	for _, tc := range []struct {
		term analytic.Term
		want string
	}{
		{analytic.Term{Name: "weights", Group: analytic.GroupWeights, Feature: 1e6, Unit: "params", Coef: 4}, analytic.CategoryPerParam},
		{analytic.Term{Name: "optimizer_step_temporaries", Group: analytic.GroupOptimizer, Feature: 1e6, Unit: "params", Coef: 4}, analytic.CategoryPerParam},
		{analytic.Term{Name: "input_ids", Group: analytic.GroupInput, Feature: 512, Unit: "B*S", Coef: 8}, analytic.CategoryActivations},
		{analytic.Term{Name: "mlp.act", Group: analytic.GroupActivations, Feature: 1e5, Unit: "B*S*H*L", Coef: 16}, analytic.CategoryActivations},
		{analytic.Term{Name: "attn.scores", Group: analytic.GroupActivations, Feature: 1e5, Unit: "B*h*S*S*L", Coef: 4}, analytic.CategoryScores},
		{analytic.Term{Name: "dropout.attn_mask", Group: analytic.GroupActivations, Feature: 1e5, Unit: "B*h*S*S*L", Coef: 1}, analytic.CategoryScores},
		{analytic.Term{Name: "logits_grad", Group: analytic.GroupLogits, Feature: 1e5, Unit: "B*S*V", Coef: 8}, analytic.CategoryLogits},
		{analytic.Term{Name: "head copy", Group: analytic.GroupActivations, Feature: 1e5, Unit: "V*H", Coef: 2}, analytic.CategoryLogits},
		{analytic.Term{Name: "kv", Group: analytic.GroupKVCache, Feature: 1e5, Unit: "B*S*H*L", Coef: 4}, analytic.CategoryKVCache},
		{analytic.Term{Name: "cuda_context", Group: analytic.GroupOverhead, Feature: 1, Unit: "1", Coef: 500 << 20}, analytic.CategoryOverhead},
		{analytic.Term{Name: "allocator_fragmentation", Group: analytic.GroupOverhead, Feature: 1e9, Unit: "activation bytes", Coef: 0}, ""},
	} {
		if got := analytic.TermCategory(tc.term); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.term.Name, got, tc.want)
		}
	}
}

// The fit of a phased formula's peak uses the terms of the larger phase
// only: the formula's peak is max over phases, not the sum.
func TestLiveTermsPeakPhase(t *testing.T) {
	e := &analytic.Estimate{Terms: []analytic.Term{
		{Name: "weights", Bytes: 100},
		{Name: "acts", Bytes: 50, Peak: true, Phase: analytic.PhaseForward},
		{Name: "grads", Bytes: 30, Peak: true, Phase: analytic.PhaseOptimizer},
	}}
	join := func(ts []analytic.Term) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Name)
		}
		return strings.Join(s, ",")
	}
	if got := join(liveTerms(e, Peak)); got != "weights,acts" {
		t.Errorf("peak: got %s, want weights,acts", got)
	}
	e.Terms[2].Bytes = 80
	if got := join(liveTerms(e, Peak)); got != "weights,grads" {
		t.Errorf("peak with the optimizer phase larger: got %s, want weights,grads", got)
	}
	if got := join(liveTerms(e, Steady)); got != "weights" {
		t.Errorf("steady: got %s, want weights", got)
	}
}
