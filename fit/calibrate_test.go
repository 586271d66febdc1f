package fit

import (
	"errors"
	"math"
	"strings"
	"testing"
)

var defaultTruth = truthCoefs{perParam: 18, input: 8, act: 20, scores: 48, logits: 12, constant: 500 << 20}

// TestCalibrateRecoversKnownCoefficients fits seed-like terms to synthetic
// runs made with known coefficients and 1 % multiplicative noise: each
// fitted coefficient must be near the truth and inside its interval.
func TestCalibrateRecoversKnownCoefficients(t *testing.T) {
	runs := synthRuns(42, defaultTruth, 0.01, []int{1, 2, 4, 8}, []int{128, 512, 1024})
	an, err := Analyze(runs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fa := an.Formulas[0]
	fit := fa.Peak.Fit
	if fit == nil {
		t.Fatalf("peak fit failed: %s", fa.Peak.FitError)
	}
	if fit.Terms != TermsPerTerm {
		t.Errorf("mode: got %q, want %q (enough runs for the per-term fit)", fit.Terms, TermsPerTerm)
	}
	want := map[string]struct{ value, original float64 }{
		"weights+gradients+adam states": {18, 16},
		"input ids":                     {8, 8},
		"activations":                   {20, 14},
		"attention scores":              {48, 4},
		"logits+logits grad":            {12, 10},
	}
	if len(fit.Coefficients) != len(want) {
		t.Fatalf("got %d coefficients %v, want %d", len(fit.Coefficients), names(fit), len(want))
	}
	for _, c := range fit.Coefficients {
		w, ok := want[c.Term]
		if !ok {
			t.Errorf("unexpected coefficient %q", c.Term)
			continue
		}
		if c.Original != w.original {
			t.Errorf("%s: original got %v, want %v", c.Term, c.Original, w.original)
		}
		if c.Term == "input ids" {
			// 8 bytes per token is a few kilobytes against noise of 1 % of
			// gigabytes: the fit cannot see it and the interval must say so.
			if !c.AtBound && c.High-c.Low < c.Value {
				t.Errorf("input ids: got %.1f [%.1f, %.1f], want a wide interval (an unidentifiable term)", c.Value, c.Low, c.High)
			}
			continue
		}
		if c.AtBound || c.Low > w.value || c.High < w.value {
			t.Errorf("%s: got %.3f [%.3f, %.3f], want the interval to hold %v", c.Term, c.Value, c.Low, c.High, w.value)
		}
		if math.Abs(c.Value-w.value) > 0.1*w.value {
			t.Errorf("%s: got %.3f, want %v within 10 %%", c.Term, c.Value, w.value)
		}
	}
	if c := fit.Constant; c.Low > defaultTruth.constant || c.High < defaultTruth.constant {
		t.Errorf("constant: got %.0f [%.0f, %.0f], want the interval to hold %v", c.Value, c.Low, c.High, defaultTruth.constant)
	}
	if fit.CVMethod != "leave-one-out" {
		t.Errorf("cv method: got %q, want leave-one-out", fit.CVMethod)
	}
	// With 1 % noise the held-out error must be a few percent at most, and
	// far below the formula's own error.
	if fit.CV.MedianAPE > 0.03 || fit.CV.MedianAPE >= fa.Peak.Overall.MedianAPE {
		t.Errorf("cv median APE: got %.4f, want < 0.03 and below the formula's %.4f", fit.CV.MedianAPE, fa.Peak.Overall.MedianAPE)
	}
	if fa.Calibration == nil || fa.Steady.Fit == nil {
		t.Fatalf("want a calibration and a steady fit; steady error %q", fa.Steady.FitError)
	}
}

func names(f *Fit) []string {
	var s []string
	for _, c := range f.Coefficients {
		s = append(s, c.Term)
	}
	return s
}

func TestCalibrateKFold(t *testing.T) {
	runs := synthRuns(7, defaultTruth, 0.01, []int{1, 2, 4, 8}, []int{128, 512, 1024})
	an, err := Analyze(runs, Options{Folds: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := an.Formulas[0].Peak.Fit.CVMethod; got != "4-fold" {
		t.Errorf("cv method: got %q, want 4-fold", got)
	}
}

// An active constraint: the truth has no input-id memory at all and the
// formula's scores term is far too big; the fitted scores coefficient is
// driven towards zero but never below.
func TestCalibrateNonNegative(t *testing.T) {
	tc := defaultTruth
	tc.scores = 0
	tc.input = 0
	runs := synthRuns(3, tc, 0.02, []int{1, 2, 4, 8}, []int{128, 512, 1024})
	an, err := Analyze(runs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range an.Formulas[0].Peak.Fit.Coefficients {
		if c.Value < 0 || c.Low < 0 {
			t.Errorf("%s: got %v [%v, %v], want >= 0", c.Term, c.Value, c.Low, c.High)
		}
		if c.Term == "attention scores" && c.Value > 1 {
			t.Errorf("attention scores: got %v, want near 0", c.Value)
		}
	}
}

func TestCalibrateTooFewRuns(t *testing.T) {
	runs := synthRuns(1, defaultTruth, 0.01, []int{1}, []int{128})
	an, err := Analyze(runs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	qa := an.Formulas[0].Peak
	if qa.Fit != nil || !strings.Contains(qa.FitError, "too few runs") {
		t.Fatalf("got fit error %q, want it to say too few runs", qa.FitError)
	}
	if an.Formulas[0].Calibration != nil {
		t.Error("got a calibration from too few runs, want none")
	}
	_, err = buildDesign(samplesFor(runs, Peak), measuredOf(runs, Peak))
	if !errors.Is(err, ErrTooFewRuns) {
		t.Errorf("got %v, want ErrTooFewRuns", err)
	}
}

// One model only: per-param features never vary (folded into the
// constant); with a single sequence length, activations, scores and logits
// are all proportional to B (merged), leaving too little to fit, or with a
// hand-made dependent column, a collinearity error.
func TestCalibrateCollinear(t *testing.T) {
	m := synthModels[1]
	var samples []termSample
	var y []float64
	for i, b := range []int{1, 2, 3, 4, 5, 6, 7, 8} {
		s := []int{128, 256, 512, 1024}[i%4]
		ts := termSample{feat: map[string]float64{}, bytes: map[string]float64{}, unit: map[string]string{}}
		add := func(name string, v float64) {
			ts.names = append(ts.names, name)
			ts.feat[name], ts.bytes[name] = v, v
		}
		add("a", float64(b*s))
		add("b", float64(b*s*s))
		add("a+b", float64(b*s+b*s*s)) // a linear combination of the two
		samples = append(samples, ts)
		y = append(y, float64(b*s*m.hidden))
	}
	_, err := buildDesign(samples, y)
	if !errors.Is(err, ErrCollinear) {
		t.Fatalf("got %v, want ErrCollinear", err)
	}
	for _, name := range []string{"a", "b", "a+b"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name column %q", err, name)
		}
	}
}

func TestBuildDesignFoldsAndDrops(t *testing.T) {
	var samples []termSample
	var y []float64
	for i := 1; i <= 6; i++ {
		ts := termSample{feat: map[string]float64{}, bytes: map[string]float64{}, unit: map[string]string{}}
		add := func(name string, f, coef float64) {
			ts.names = append(ts.names, name)
			ts.feat[name], ts.bytes[name] = f, f*coef
		}
		add("params", 1000, 16)    // constant in every run
		add("zero", 0, 3)          // zero in every run
		add("x", float64(i), 2)    // varies
		add("x2", float64(3*i), 1) // proportional to x
		add("y", float64(i*i), 1)  // varies
		samples = append(samples, ts)
		y = append(y, float64(16000+5*i+i*i))
	}
	d, err := buildDesign(samples, y)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.columnNames(); got != "x+x2, y, constant" {
		t.Errorf("columns: got %q, want %q", got, "x+x2, y, constant")
	}
	if got := d.cols[0].original; got != 2+3*1 {
		t.Errorf("merged original: got %v, want 5", got)
	}
	if got := d.cols[2].original; got != 16000 {
		t.Errorf("constant original: got %v, want 16000", got)
	}
	if len(d.dropped) != 1 || d.dropped[0] != "zero" {
		t.Errorf("dropped: got %v, want [zero]", d.dropped)
	}
	if len(d.constantTerms) != 1 || d.constantTerms[0] != "params" {
		t.Errorf("constant terms: got %v, want [params]", d.constantTerms)
	}
}

func samplesFor(runs []Run, q Quantity) []termSample {
	var out []termSample
	for _, r := range runs {
		ts, _ := samplesOf(liveTerms(r.Prediction("seed"), q))
		out = append(out, ts)
	}
	return out
}

func measuredOf(runs []Run, q Quantity) []float64 {
	var out []float64
	for _, r := range runs {
		v, _ := r.Measured(TruthDevice, q)
		out = append(out, float64(v))
	}
	return out
}

func BenchmarkAnalyze(b *testing.B) {
	runs := synthRuns(42, defaultTruth, 0.01, []int{1, 2, 4, 8}, []int{128, 512, 1024})
	for b.Loop() {
		if _, err := Analyze(runs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNoGain: the report says so when a calibration's cross-validated
// median error is above the formula's own, and says nothing otherwise.
func TestNoGain(t *testing.T) {
	qa := QuantityAnalysis{Overall: ErrorStats{N: 10, MedianAPE: 0.034}, Fit: &Fit{CV: ErrorStats{N: 10, MedianAPE: 0.067}}}
	if got := noGain(qa); !strings.Contains(got, "does not help") || !strings.Contains(got, "6.7 %") {
		t.Errorf("worse calibration: got %q, want a note naming 6.7 %%", got)
	}
	qa.Fit.CV.MedianAPE = 0.02
	if got := noGain(qa); got != "" {
		t.Errorf("better calibration: got %q, want no note", got)
	}
	qa.Fit = nil
	if got := noGain(qa); got != "" {
		t.Errorf("no fit: got %q, want no note", got)
	}
}
