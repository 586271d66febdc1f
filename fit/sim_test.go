package fit_test

// Recovery of known coefficients from the simulated H100 (profiler/sim, run
// through scenarios.Sweep) and from its recorded traces played back
// (profiler.Replay, device "replay:FILE").
//
// What the simulator keeps between steps is known from its code
// (profiler/sim/process.go), not from package analytic: in fp32 with AdamW
// the weights (4 B per parameter) and, from the first optimizer step on,
// exp_avg and exp_avg_sq (4 B each); gradients are freed by
// zero_grad(set_to_none=True) and the input ids and labels at the step's
// end; cuBLAS's 32 MiB workspace, taken at the first matmul, stays. The
// truth that sees exactly this is "allocated": framework.steady_allocated,
// the median torch.cuda allocated at step_end after warm-up, which the
// simulator reports on its side channel (events.jsonl) as train.py does.
// So steady allocated = 12 N + 32 MiB, plus the caching allocator's
// rounding: every request rounds up to 512 B, and a block taken from a
// large-pool segment (requests over 1 MiB) keeps its remainder when that is
// 1 MiB or less. The models here keep every parameter tensor at most 1 MiB
// and a multiple of 512 B (hidden 128 or 256, vocabulary 1024, positions
// 256), so the rounding is exactly zero and the known coefficient is exactly
// 12 B per parameter and the constant exactly 32 MiB. (With larger tensors
// the rounding adds up to about 1 MiB per tensor, which grows with N and
// moves the fit to about 12.16 with an interval that no longer holds 12:
// that is the allocator, not a fit error.)

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/fit"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/scenarios"
)

const (
	simBytesPerParam = 12       // fp32 weights 4 + AdamW exp_avg 4 + exp_avg_sq 4
	simWorkspace     = 32 << 20 // cuBLAS workspace on Hopper, kept for the process's life
)

// simSweepSpecs are GPT-2-style models whose parameter count spans about
// 27x (0.36 M to 9.8 M), with batch and sequence varied so that the
// activation, score and logit terms are not proportional to each other.
func simSweepSpecs(t *testing.T) []*scenarios.Spec {
	t.Helper()
	shapes := []struct{ layers, hidden, batch, seq int }{
		{1, 128, 1, 64}, {2, 128, 2, 128}, {4, 128, 1, 128}, {8, 128, 2, 64},
		{2, 256, 2, 64}, {4, 256, 1, 128}, {8, 256, 2, 128}, {12, 256, 1, 64},
	}
	specs := make([]*scenarios.Spec, len(shapes))
	for i, sh := range shapes {
		name := fmt.Sprintf("gpt2-l%d-h%d-b%d-s%d", sh.layers, sh.hidden, sh.batch, sh.seq)
		y := fmt.Sprintf(`name: %s
model: {family: gpt2, layers: %d, hidden: %d, heads: 4, vocab: 1024, seq_max: 256}
precision: fp32
optimizer: adamw
batch: %d
seq: %d
steps: 4
warmup: 1
`, name, sh.layers, sh.hidden, sh.batch, sh.seq)
		s, err := scenarios.ParseSpec([]byte(y), name+".yaml")
		if err != nil {
			t.Fatalf("spec %s: %v", name, err)
		}
		specs[i] = s
	}
	return specs
}

// runSimSweep runs specs on the simulated device with 2 ms steps sampled
// every millisecond (the whole sweep takes a fraction of a second).
func runSimSweep(t *testing.T, specs []*scenarios.Spec) (string, *scenarios.SweepReport) {
	t.Helper()
	out := t.TempDir()
	rep, err := scenarios.Sweep(context.Background(), specs, scenarios.SweepOptions{OutDir: out,
		Validate: scenarios.ValidateOptions{Device: "sim", SimStep: 2 * time.Millisecond, Interval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Entries {
		if e.Err != nil || e.Result == nil || e.Result.Summary.Status != schema.StatusOK {
			t.Fatalf("%s: got status %q, error %v; want a finished run", e.Name, e.Status, e.Err)
		}
	}
	return out, rep
}

// loadAndAnalyze loads the results under dir and analyses them with the
// allocated truth: seed per term, breakdown in auto mode (8 runs are too
// few for its per-term fit, so it falls back to categories).
func loadAndAnalyze(t *testing.T, dir string, want int) (seed, breakdown *fit.Analysis) {
	t.Helper()
	runs, warns, err := fit.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != want || len(warns) != 0 {
		t.Fatalf("Load: got %d runs and warnings %v, want %d runs and no warnings", len(runs), warns, want)
	}
	seed, err = fit.Analyze(runs, fit.Options{Truth: fit.TruthAllocated, Formulas: []string{"seed"}, Terms: fit.TermsPerTerm})
	if err != nil {
		t.Fatal(err)
	}
	breakdown, err = fit.Analyze(runs, fit.Options{Truth: fit.TruthAllocated, Formulas: []string{"breakdown"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seed.Runs) != want || len(breakdown.Runs) != want {
		t.Fatalf("Analyze: got %d and %d usable runs, want %d", len(seed.Runs), len(breakdown.Runs), want)
	}
	return seed, breakdown
}

func coefficient(t *testing.T, f *fit.Fit, term string) (c struct{ Value, Low, High, Original float64 }) {
	t.Helper()
	for _, co := range f.Coefficients {
		if co.Term == term {
			c.Value, c.Low, c.High, c.Original = co.Value, co.Low, co.High, co.Original
			return c
		}
	}
	var names []string
	for _, co := range f.Coefficients {
		names = append(names, co.Term)
	}
	t.Fatalf("%s %s fit: no coefficient %q among %v", f.Formula, f.Quantity, term, names)
	return c
}

func TestSimSweepRecoversBytesPerParam(t *testing.T) {
	specs := simSweepSpecs(t)
	dir, rep := runSimSweep(t, specs)

	// The known value, run by run: the simulator counts its own tensors;
	// its count must be the formulas' N for the fit to be about the same N.
	minN, maxN := int64(math.MaxInt64), int64(0)
	for _, e := range rep.Entries {
		fw := e.Result.Framework
		if fw == nil {
			t.Fatalf("%s: no framework figures in result.json", e.Name)
		}
		var seedN int64
		preds, err := analytic.DecodeEstimates(e.Result.Predictions)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		for _, p := range preds {
			if p.Formula == "seed" {
				seedN = p.Params
			}
		}
		if fw.Params != seedN {
			t.Errorf("%s: simulated model has %d parameters, the seed formula %d", e.Name, fw.Params, seedN)
		}
		if want := uint64(simBytesPerParam*fw.Params + simWorkspace); fw.SteadyAllocated != want {
			t.Errorf("%s: steady allocated got %d, want 12 N + 32 MiB = %d (see the comment at the top)", e.Name, fw.SteadyAllocated, want)
		}
		minN, maxN = min(minN, fw.Params), max(maxN, fw.Params)
	}
	if maxN < 10*minN {
		t.Fatalf("parameter counts span %d to %d, want at least 10x", minN, maxN)
	}

	seed, breakdown := loadAndAnalyze(t, dir, len(specs))

	// Seed, steady, per term: weights, gradients and adam_states (all
	// features N) merge into one column whose formula value is 16; the sim
	// keeps 12. input_ids (8 B per token, freed by step_end) must fit 0.
	sf := seed.Formulas[0].Steady.Fit
	if sf == nil {
		t.Fatalf("seed steady fit failed: %s", seed.Formulas[0].Steady.FitError)
	}
	if sf.Terms != fit.TermsPerTerm {
		t.Errorf("seed steady fit: got mode %q, want per term", sf.Terms)
	}
	c := coefficient(t, sf, "weights+gradients+adam_states")
	t.Logf("seed steady: per-parameter %.9f [%.9f, %.9f] (formula %v, known %d); constant %.0f B (known %d); CV median APE %.2g",
		c.Value, c.Low, c.High, c.Original, simBytesPerParam, sf.Constant.Value, simWorkspace, sf.CV.MedianAPE)
	if c.Original != 16 {
		t.Errorf("per-parameter column: formula value got %v, want 16", c.Original)
	}
	// The data carry no noise (see the top), so the fit must be exact to
	// float precision; the interval is then a few 1e-15 wide and must hold
	// the known value up to that precision.
	const eps = 1e-9
	if math.Abs(c.Value-simBytesPerParam) > eps*simBytesPerParam {
		t.Errorf("per-parameter bytes: got %.12g, want %d", c.Value, simBytesPerParam)
	}
	if c.Low > simBytesPerParam*(1+eps) || c.High < simBytesPerParam*(1-eps) {
		t.Errorf("per-parameter bytes: interval [%.12g, %.12g] does not hold the known %d", c.Low, c.High, simBytesPerParam)
	}
	if math.Abs(sf.Constant.Value-simWorkspace) > 1e-6*simWorkspace {
		t.Errorf("constant: got %.1f B, want the 32 MiB workspace (%d B)", sf.Constant.Value, simWorkspace)
	}
	if in := coefficient(t, sf, "input_ids"); in.Value > 1e-6 {
		t.Errorf("input_ids: got %g B per token, want 0 (freed before step_end)", in.Value)
	}

	// Breakdown, peak: against max allocated its uncalibrated figure is far
	// off (it counts the CUDA context, which allocated memory does not
	// hold, and its activation terms differ from the sim's tensors by a
	// share that changes with the shape); the calibration, judged on runs
	// held out of its fit, must do better in median and in the worst run.
	bp := breakdown.Formulas[0].Peak
	if bp.Fit == nil {
		t.Fatalf("breakdown peak fit failed: %s", bp.FitError)
	}
	t.Logf("breakdown peak vs allocated: uncalibrated median APE %.3f max %.3f; calibrated (%s, %s) median %.4f max %.4f",
		bp.Overall.MedianAPE, bp.Overall.MaxAPE, bp.Fit.Terms, bp.Fit.CVMethod, bp.Fit.CV.MedianAPE, bp.Fit.CV.MaxAPE)
	if bp.Fit.CV.N != len(specs) {
		t.Errorf("breakdown peak: cross-validated %d runs, want %d", bp.Fit.CV.N, len(specs))
	}
	if bp.Fit.CV.MedianAPE >= bp.Overall.MedianAPE || bp.Fit.CV.MaxAPE >= bp.Overall.MaxAPE {
		t.Errorf("breakdown peak: calibrated CV error (median %.4f, max %.4f) is not below the uncalibrated (median %.4f, max %.4f)",
			bp.Fit.CV.MedianAPE, bp.Fit.CV.MaxAPE, bp.Overall.MedianAPE, bp.Overall.MaxAPE)
	}
	if bp.Fit.CV.MaxAPE > 0.05 {
		t.Errorf("breakdown peak: calibrated CV max APE %.4f, want under 5 %% on the simulator's own runs", bp.Fit.CV.MaxAPE)
	}
	// Against the device truth (NVML used, CUDA context included, sampled
	// every millisecond) the breakdown is close already; calibration must
	// still not do worse on held-out runs.
	runs, _, err := fit.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := fit.Analyze(runs, fit.Options{Formulas: []string{"breakdown"}})
	if err != nil {
		t.Fatal(err)
	}
	dp := dev.Formulas[0].Peak
	if dp.Fit == nil {
		t.Fatalf("breakdown device peak fit failed: %s", dp.FitError)
	}
	t.Logf("breakdown peak vs device: uncalibrated median APE %.4f max %.4f; calibrated (%s) median %.4f max %.4f",
		dp.Overall.MedianAPE, dp.Overall.MaxAPE, dp.Fit.Terms, dp.Fit.CV.MedianAPE, dp.Fit.CV.MaxAPE)
	if dp.Fit.CV.MedianAPE >= dp.Overall.MedianAPE {
		t.Errorf("breakdown device peak: calibrated CV median APE %.4f is not below the uncalibrated %.4f", dp.Fit.CV.MedianAPE, dp.Overall.MedianAPE)
	}
	// The uncalibrated error must vary between runs, or a constant would
	// explain it and the comparison would say little.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range bp.Points {
		lo, hi = math.Min(lo, p.Rel), math.Max(hi, p.Rel)
	}
	if hi-lo < 1 {
		t.Errorf("breakdown peak: uncalibrated errors span %.3f to %.3f, want a spread of at least 100 points", lo, hi)
	}
}

// TestReplayedSimSweepMatches plays each recorded run of the sweep back
// (device "replay:<trace.csv>", which also reads events.jsonl and
// result.json beside it) through scenarios.Validate, and checks that the
// replayed results give the same measurements and the same fits.
//
// What is kept exactly: every side-channel event (the framework figures,
// hence the whole allocated truth and its fits, bit for bit), the exit
// status, the GPU list and versions. What is resampled: the trace itself,
// read at the replay's own times, so the device figures can differ by the
// recorded samples the replay's sampler did not land on; it samples ten
// times as often as the recording, so the peak matches unless the machine
// stalled for a whole recorded interval, and then it is still a recorded
// reading no lower than the next-highest one. What is lost: the process's
// PID (the replayed process tree is PID 0) and the recording's sampling
// grid; steady_bytes (device) is recomputed from the new samples and is not
// compared.
func TestReplayedSimSweepMatches(t *testing.T) {
	specs := simSweepSpecs(t)
	dir, rep := runSimSweep(t, specs)
	redir := t.TempDir()
	for i, s := range specs {
		orig := rep.Entries[i].Result
		trace := filepath.Join(dir, s.Name, profiler.TraceFile)
		v, err := scenarios.Validate(context.Background(), s, scenarios.ValidateOptions{
			Device: "replay:" + trace, OutDir: filepath.Join(redir, s.Name), Interval: 100 * time.Microsecond})
		if err != nil {
			t.Fatalf("%s: replay: %v", s.Name, err)
		}
		got := v.Result
		if got.Summary.Status != schema.StatusOK || got.Summary.ExitCode != 0 || !got.Simulated {
			t.Errorf("%s: replay status %q, exit %d, simulated %v; want ok, 0, true", s.Name, got.Summary.Status, got.Summary.ExitCode, got.Simulated)
		}
		if !reflect.DeepEqual(got.Framework, orig.Framework) {
			t.Errorf("%s: framework figures\n got %+v\nwant %+v", s.Name, got.Framework, orig.Framework)
		}
		if !reflect.DeepEqual(got.Env.GPUs, orig.Env.GPUs) || got.Env.Versions != orig.Env.Versions {
			t.Errorf("%s: environment got %+v %+v, want %+v %+v", s.Name, got.Env.GPUs, got.Env.Versions, orig.Env.GPUs, orig.Env.Versions)
		}
		if got.Summary.ProcessSource != orig.Summary.ProcessSource {
			t.Errorf("%s: process source got %q, want %q", s.Name, got.Summary.ProcessSource, orig.Summary.ProcessSource)
		}
		tr, err := profiler.ReadTraceFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		checkReplayedPeak(t, s.Name+" device", got.Summary.PeakDeviceBytes, orig.Summary.PeakDeviceBytes, tr, func(s profiler.Sample) uint64 { return s.Used })
		checkReplayedPeak(t, s.Name+" process", got.Summary.PeakProcessBytes, orig.Summary.PeakProcessBytes, tr, func(s profiler.Sample) uint64 { return s.Process })
		if got.Summary.BaselineBytes != orig.Summary.BaselineBytes {
			t.Errorf("%s: baseline got %d, want %d", s.Name, got.Summary.BaselineBytes, orig.Summary.BaselineBytes)
		}
	}

	seed, breakdown := loadAndAnalyze(t, dir, len(specs))
	rseed, rbreakdown := loadAndAnalyze(t, redir, len(specs))
	if g, w := rseed.Groups[0].Group.Key(), seed.Groups[0].Group.Key(); g != w {
		t.Errorf("group: got %q, want %q", g, w)
	}
	// The allocated truth comes from the events, which replay verbatim:
	// the same design and measurements give the same fits to rounding.
	sameFit(t, "seed steady", rseed.Formulas[0].Steady.Fit, seed.Formulas[0].Steady.Fit)
	sameFit(t, "breakdown peak", rbreakdown.Formulas[0].Peak.Fit, breakdown.Formulas[0].Peak.Fit)
}

// checkReplayedPeak: the replayed peak must be the recorded one, or, if
// the replay's sampler missed that reading, a recorded reading no lower
// than the highest one below the peak (one sample's quantization).
func checkReplayedPeak(t *testing.T, what string, got, want uint64, tr *profiler.Trace, field func(profiler.Sample) uint64) {
	t.Helper()
	if got == want {
		return
	}
	var next uint64
	recorded := false
	for _, s := range tr.Samples {
		v := field(s)
		if v < want {
			next = max(next, v)
		}
		recorded = recorded || v == got
	}
	if got > want || !recorded || got < next {
		t.Errorf("%s peak: replay got %d, recording %d (next-highest recorded reading %d); want the recorded peak or, if missed, a recorded reading of at least the next-highest", what, got, want, next)
		return
	}
	t.Logf("%s peak: replay missed the recorded peak %d and saw %d", what, want, got)
}

func sameFit(t *testing.T, what string, got, want *fit.Fit) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("%s: fit missing (replayed %v, recorded %v)", what, got != nil, want != nil)
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	if got.Terms != want.Terms || len(got.Coefficients) != len(want.Coefficients) {
		t.Fatalf("%s: replayed fit has mode %q and %d coefficients, recorded %q and %d", what, got.Terms, len(got.Coefficients), want.Terms, len(want.Coefficients))
	}
	for i, g := range got.Coefficients {
		w := want.Coefficients[i]
		if g.Term != w.Term || !close(g.Value, w.Value) || !close(g.Low, w.Low) || !close(g.High, w.High) {
			t.Errorf("%s: coefficient %d got %s %.12g [%.12g, %.12g], want %s %.12g [%.12g, %.12g]", what, i, g.Term, g.Value, g.Low, g.High, w.Term, w.Value, w.Low, w.High)
		}
	}
	if !close(got.Constant.Value, want.Constant.Value) || !close(got.CV.MedianAPE, want.CV.MedianAPE) || !close(got.CV.MaxAPE, want.CV.MaxAPE) {
		t.Errorf("%s: constant %.6g, CV median %.6g max %.6g; recorded %.6g, %.6g, %.6g", what, got.Constant.Value, got.CV.MedianAPE, got.CV.MaxAPE, want.Constant.Value, want.CV.MedianAPE, want.CV.MaxAPE)
	}
}
