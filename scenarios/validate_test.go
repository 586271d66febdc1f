package scenarios

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

const gib64 = uint64(1) << 30

func TestCompare(t *testing.T) {
	preds := []analytic.Estimate{{Formula: "a", Peak: 11 * gib64, Steady: 4 * gib64}, {Formula: "b", Peak: 8 * gib64, Steady: 2 * gib64}}
	sum := schema.Summary{BaselineBytes: 1 * gib64, PeakDeviceBytes: 11 * gib64, PeakProcessBytes: 10 * gib64, SteadyBytes: 5 * gib64}
	fw := &schema.Framework{MaxReserved: 9 * gib64, SteadyAllocated: 3 * gib64, ContextBytes: gib64 / 2}
	got := Compare(preds, sum, fw, 0.10)
	want := []struct {
		formula, quantity, truth string
		measured                 uint64
		rel                      float64
		within                   bool
	}{
		{"a", "peak", TruthDevice, 10 * gib64, 0.1, true},
		{"a", "peak", TruthProcess, 10 * gib64, 0.1, true},
		{"a", "peak", TruthFramework, 9*gib64 + gib64/2, 11/9.5 - 1, false},
		{"a", "steady", TruthDevice, 4 * gib64, 0, true},
		{"a", "steady", TruthFramework, 3*gib64 + gib64/2, 4/3.5 - 1, false},
		{"b", "peak", TruthDevice, 10 * gib64, -0.2, false},
	}
	if len(got) != 10 {
		t.Fatalf("got %d comparisons, want 10 (2 formulas x 5 figures)", len(got))
	}
	for i, w := range want {
		c := got[i]
		if c.Formula != w.formula || c.Quantity != w.quantity || c.Truth != w.truth || c.Measured != w.measured {
			t.Errorf("comparison %d: got %s %s %s %d, want %s %s %s %d", i, c.Formula, c.Quantity, c.Truth, c.Measured, w.formula, w.quantity, w.truth, w.measured)
		}
		if math.Abs(c.RelError-w.rel) > 1e-9 || c.Within != w.within {
			t.Errorf("comparison %d: got rel %v within %v, want %v %v", i, c.RelError, c.Within, w.rel, w.within)
		}
		if c.AbsError != int64(c.Predicted)-int64(c.Measured) {
			t.Errorf("comparison %d: abs error %d is not predicted - measured", i, c.AbsError)
		}
	}
	// Figures that were not measured are left out.
	if n := len(Compare(preds, schema.Summary{PeakProcessBytes: gib64}, nil, 0.1)); n != 2 {
		t.Errorf("with only a process peak: got %d comparisons, want 2", n)
	}
}

func TestJudge(t *testing.T) {
	preds := []analytic.Estimate{{Formula: "breakdown", Peak: 11 * gib64}, {Formula: "seed", Peak: 100 * gib64}}
	gpus := []profiler.GPU{{Index: 0, TotalBytes: 80 * gib64}}
	tests := []struct {
		name    string
		formula string
		sum     schema.Summary
		status  string
		code    int
		msg     string
	}{
		{"within", "breakdown", schema.Summary{Status: "ok", PeakProcessBytes: 10 * gib64}, VerdictPass, 0, "within 10%"},
		{"over", "breakdown", schema.Summary{Status: "ok", PeakProcessBytes: 9 * gib64}, VerdictMiss, 1, "by +22.2% (over by 2.00 GiB"},
		{"under", "seed", schema.Summary{Status: "ok", PeakProcessBytes: 200 * gib64}, VerdictMiss, 1, "by -50.0% (under by 100.00 GiB"},
		{"nothing measured", "breakdown", schema.Summary{Status: "ok"}, VerdictMiss, 1, "no memory use was measured"},
		{"oom predicted", "seed", schema.Summary{Status: "oom", OOM: true, ExitCode: 3}, VerdictOOMPredicted, 0, "as seed predicted"},
		{"oom missed", "breakdown", schema.Summary{Status: "oom", OOM: true, ExitCode: 3}, VerdictOOMMissed, 1, "which fits in the 80.00 GiB GPU"},
		{"failed", "breakdown", schema.Summary{Status: "failed", ExitCode: 7}, VerdictFailed, 7, "exit code 7"},
		{"crashed", "breakdown", schema.Summary{Status: "crashed", Signal: "SIGSEGV"}, VerdictFailed, 1, "signal SIGSEGV"},
		{"interrupted", "breakdown", schema.Summary{Status: "interrupted"}, VerdictInterrupted, 130, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &schema.Result{Summary: tt.sum, Env: schema.Environment{GPUs: gpus}}
			v := Judge(preds, tt.formula, 0.10, res)
			if v.Status != tt.status || v.ExitCode != tt.code || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("got %s, exit %d, %q; want %s, exit %d, a message containing %q", v.Status, v.ExitCode, v.Message, tt.status, tt.code, tt.msg)
			}
			if v.Pass != (tt.code == 0) {
				t.Errorf("pass: got %v with exit code %d", v.Pass, v.ExitCode)
			}
			if tt.sum.OOM {
				if v.OOM == nil || v.OOM.BudgetBytes != 80*gib64 || len(v.OOM.Formulas) != 2 {
					t.Fatalf("oom record: got %+v, want the 80 GiB budget and both formulas", v.OOM)
				}
				if !v.OOM.Formulas[0].Fits || v.OOM.Formulas[1].Fits {
					t.Errorf("fits: got breakdown %v, seed %v; want true (11 GiB) and false (100 GiB)", v.OOM.Formulas[0].Fits, v.OOM.Formulas[1].Fits)
				}
			}
		})
	}
}

// ciSpec is a tiny scenario that plays in a few milliseconds on sim.
func ciSpec(t testing.TB, name string) *Spec {
	t.Helper()
	s, err := ParseSpec([]byte(`name: `+name+`
model: {family: gpt2, layers: 2, hidden: 128, heads: 4, vocab: 1024, seq_max: 256}
batch: 2
seq: 128
steps: 3
warmup: 1
`), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateOnSimWritesResult(t *testing.T) {
	dir := t.TempDir()
	v, err := Validate(context.Background(), ciSpec(t, "tiny"), ValidateOptions{Device: "sim", OutDir: dir, SimStep: time.Millisecond, Interval: time.Millisecond})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if v.Result.Summary.Status != schema.StatusOK || v.Result.Summary.PeakProcessBytes == 0 {
		t.Fatalf("got status %q, peak %d; want ok and a measured peak", v.Result.Summary.Status, v.Result.Summary.PeakProcessBytes)
	}
	res, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var sc Scenario
	if err := json.Unmarshal(res.Scenario, &sc); err != nil {
		t.Fatalf("scenario in result.json: %v", err)
	}
	if sc.Spec == nil || sc.Spec.Name != "tiny" || sc.Arch.Layers != 2 || sc.Workload.Batch != 2 || sc.Formula != DefaultFormula {
		t.Errorf("scenario: got %+v", sc)
	}
	if sc.Verdict.Status != v.Scenario.Verdict.Status || (sc.Verdict.Status != VerdictPass && sc.Verdict.Status != VerdictMiss) {
		t.Errorf("verdict: got %q in the file and %q returned, want pass or miss in both", sc.Verdict.Status, v.Scenario.Verdict.Status)
	}
	if len(res.Predictions) != len(analytic.Formulas()) {
		t.Errorf("got %d predictions, want one per formula (%d)", len(res.Predictions), len(analytic.Formulas()))
	}
	if len(res.Comparisons) < 2*len(res.Predictions) {
		t.Errorf("got %d comparisons for %d predictions, want at least peak and steady for each", len(res.Comparisons), len(res.Predictions))
	}
	var report strings.Builder
	if err := v.WriteReport(&report); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"*breakdown", "vs process", sc.Verdict.Status + ":"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}

func TestValidateBadFormula(t *testing.T) {
	_, err := Validate(context.Background(), ciSpec(t, "x"), ValidateOptions{Device: "sim", OutDir: t.TempDir(), Formula: "nope"})
	if err == nil || !strings.Contains(err.Error(), `formula "nope" gives no prediction`) {
		t.Errorf("got %v, want an error naming the formula", err)
	}
}
