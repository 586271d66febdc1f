package estimate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// gpt2 is the request the tests start from: GPT-2 small, batch 8, seq 1024,
// bf16 autocast, one formula, nothing to fit into.
func gpt2(t testing.TB, edit func(*Request)) Request {
	t.Helper()
	a, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	r := Request{
		Arch:     a,
		Workload: model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: -1, DP: 1, TP: 1},
		Formula:  "korthikanti",
	}
	if edit != nil {
		edit(&r)
	}
	return r
}

func TestRunMatchesPredict(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Request)
		fits    bool // with a GPU: the first result's verdict
		skipped int
	}{
		{"no gpu", nil, false, 0},
		{"fits h100", func(r *Request) { r.GPU = "h100-80gb" }, true, 0},
		{"short on a budget", func(r *Request) { r.Budget = "4GiB" }, false, 0},
		{"all formulas", func(r *Request) { r.Formula = "all"; r.GPU = "l4" }, true, 0}, // seed, the first, fits
		{"inference skips training formulas", func(r *Request) {
			r.Formula, r.Workload.Inference = "all", true
		}, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := gpt2(t, tc.edit)
			rep, err := Run(req)
			if err != nil {
				t.Fatal(err)
			}
			w := req.Workload
			w.Dropout = req.Arch.Dropout
			if rep.Workload != w {
				t.Errorf("workload: got %+v, want %+v", rep.Workload, w)
			}
			if got := len(rep.Skipped); got != tc.skipped {
				t.Errorf("skipped: got %d %v, want %d", got, rep.Skipped, tc.skipped)
			}
			for i, e := range rep.Estimates {
				want, err := analytic.Predict(e.Formula, req.Arch, w)
				if err != nil {
					t.Fatal(err)
				}
				if e.Peak != want.Peak || e.Steady != want.Steady {
					t.Errorf("%s: got peak %d steady %d, want %d %d", e.Formula, e.Peak, e.Steady, want.Peak, want.Steady)
				}
				if rep.GPU == nil {
					continue
				}
				// The verdict is on the device peak (NVML used), which is
				// never below the allocated peak.
				r := rep.Results[i]
				d := e.Device
				if d == nil || d.AllocatedPeak > d.ReservedPeak || d.ReservedPeak > d.DevicePeak {
					t.Fatalf("%s: got device %+v, want ordered peaks", e.Formula, d)
				}
				if total := rep.GPU.TotalBytes; r.Fits != (d.DevicePeak <= total) || r.FreeBytes+d.DevicePeak-r.ShortBytes != total {
					t.Errorf("%s: got fits %v, free %d, short %d; want them to add up to %d with device peak %d",
						e.Formula, r.Fits, r.FreeBytes, r.ShortBytes, total, d.DevicePeak)
				}
			}
			if rep.GPU == nil {
				if rep.Results != nil || rep.Fits != nil {
					t.Errorf("without a gpu: got results %v, fits %v; want none", rep.Results, rep.Fits)
				}
				return
			}
			if *rep.Fits != tc.fits || *rep.Fits != rep.Results[0].Fits {
				t.Errorf("fits: got %v (first result %v), want %v", *rep.Fits, rep.Results[0].Fits, tc.fits)
			}
		})
	}
}

func TestRunModelReport(t *testing.T) {
	rep, err := Run(gpt2(t, func(r *Request) { r.Formula = "seed" }))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schema != 1 || rep.Model.Name != "gpt2" || rep.Model.Params != 124439808 {
		t.Errorf("got schema %d, model %q with %d params; want 1, gpt2, 124439808", rep.Schema, rep.Model.Name, rep.Model.Params)
	}
	if len(rep.SeedRules) != len(seedDTypes) {
		t.Fatalf("seed rules: got %d, want %d", len(rep.SeedRules), len(seedDTypes))
	}
	for _, r := range rep.SeedRules {
		if r.InferenceBytes != 2*r.ModelBytes || r.TrainingBytes != 4*r.ModelBytes {
			t.Errorf("%s: got model %d, inference %d, training %d; want 2x and 4x", r.DType, r.ModelBytes, r.InferenceBytes, r.TrainingBytes)
		}
	}
	if fp32 := rep.SeedRules[0]; fp32.DType != "fp32" || fp32.ModelBytes != 4*124439808 {
		t.Errorf("fp32: got %+v, want 4 bytes a parameter", fp32)
	}
}

func TestRunSolves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Request)
		solve   func(string, model.Arch, model.Workload, uint64) (int, analytic.Estimate, error)
		batch   bool
		wantMin int
	}{
		{"max batch", func(r *Request) { r.Budget, r.MaxBatch = "24GiB", true }, analytic.MaxBatch, true, 1},
		{"max seq", func(r *Request) { r.GPU, r.MaxSeq = "h100", true }, analytic.MaxSeq, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := gpt2(t, tc.edit)
			rep, err := Run(req)
			if err != nil {
				t.Fatal(err)
			}
			w := rep.Workload
			if (tc.batch && w.Batch != 1) || (!tc.batch && w.Seq != 1) {
				t.Errorf("searched size: got batch %d, seq %d; want 1", w.Batch, w.Seq)
			}
			n, e, err := tc.solve(req.Formula, req.Arch, w, rep.GPU.TotalBytes)
			if err != nil {
				t.Fatal(err)
			}
			got := rep.MaxSeq
			if tc.batch {
				got = rep.MaxBatch
			}
			if got == nil || *got != n || n < tc.wantMin || rep.Estimates[0].Peak != e.Peak {
				t.Errorf("got %v with peak %d, want %d with peak %d", got, rep.Estimates[0].Peak, n, e.Peak)
			}
		})
	}
}

func TestRunUnboundedHasNoMaximum(t *testing.T) {
	a, err := model.Preset("llama-2-7b")
	if err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(t.TempDir(), "calibration.json")
	c := &analytic.Calibration{Schema: analytic.CalibrationSchema, Formula: "deepspeed", Truth: "device",
		CalibratedFit: analytic.CalibratedFit{Quantity: "peak", Constant: 1 << 20,
			Coefficients: []analytic.Coefficient{{Term: "weights", Unit: "x", Scale: true, Value: 1, Low: 1, High: 1, Original: 1}}}}
	if err := c.Save(cal); err != nil {
		t.Fatal(err)
	}
	for _, calibration := range []string{"", cal} {
		rep, err := Run(Request{Arch: a, Workload: model.Workload{Seq: 1024, Dropout: -1, DP: 1, TP: 1},
			Formula: "deepspeed", GPU: "mi300x", MaxBatch: true, Calibration: calibration})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if !r.Unbounded || r.MaxBatch != nil || rep.MaxBatch != nil || !strings.Contains(r.Reason, "does not grow") {
			t.Errorf("calibration %q: got %+v, want unbounded with no max batch", calibration, r)
		}
	}
}

func TestRunInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"unknown formula", func(r *Request) { r.Formula = "magic" }, `--formula "magic": unknown; use one of seed, breakdown, korthikanti`},
		{"no formula", func(r *Request) { r.Formula = "" }, `--formula "": unknown`},
		{"both searches", func(r *Request) { r.MaxBatch, r.MaxSeq, r.GPU = true, true, "l4" }, "--max-batch and --max-seq are exclusive"},
		{"gpu and budget", func(r *Request) { r.GPU, r.Budget = "l4", "8GiB" }, `--gpu "l4" and --budget "8GiB" are exclusive`},
		{"unknown gpu", func(r *Request) { r.GPU = "tpu-v5" }, "--gpu: "},
		{"bad budget", func(r *Request) { r.Budget = "80G" }, "--budget: "},
		{"zero budget", func(r *Request) { r.Budget = "0" }, `--budget "0": must be more than 0 bytes`},
		{"search without a budget", func(r *Request) { r.MaxSeq = true }, "need a budget: give --gpu NAME or --budget SIZE"},
		{"no calibration file", func(r *Request) { r.Calibration = "no/such.json" }, "--calibration: "},
		{"zero dp", func(r *Request) { r.Workload.DP = 0 }, "--dp 0: must be a positive integer"},
		{"negative tp", func(r *Request) { r.Workload.TP = -2 }, "--tp -2: must be a positive integer"},
		{"zero batch", func(r *Request) { r.Workload.Batch = 0 }, "--batch 0: must be a positive integer"},
		{"unknown precision", func(r *Request) { r.Workload.Precision = "fp8" }, `--precision "fp8": unknown value; use one of`},
		{"seq past the position table", func(r *Request) { r.Workload.Seq = 2048 }, "position table"},
		{"inference with a training formula", func(r *Request) { r.Formula, r.Workload.Inference = "megatron", true },
			"--formula megatron: megatron: formula does not apply to inference; drop --inference"},
		{"overflow", func(r *Request) {
			a, err := model.Preset("gpt3")
			if err != nil {
				t.Fatal(err)
			}
			r.Arch, r.Workload.Batch, r.Workload.Seq = a, 2000000000, 2048
		}, "korthikanti: the sizes overflow (more than 2^62 bytes); use a smaller --batch or --seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(gpt2(t, tc.edit))
			var bad *InputError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an *InputError containing %q", err, tc.want)
			}
		})
	}
}

func TestRunCalibrationWarns(t *testing.T) {
	cal := filepath.Join(t.TempDir(), "calibration.json")
	data := `{"schema": 1, "formula": "seed", "truth": "device", "quantity": "peak",
	  "fitted": {"runs": 3, "batch": {"min": 1, "max": 2}, "seq": {"min": 128, "max": 256}, "tokens": {"min": 128, "max": 512}},
	  "coefficients": [{"term": "layer_activations", "unit": "B*S*H*L", "value": 20, "low": 18, "high": 22, "original": 14}]}`
	if err := os.WriteFile(cal, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	plain, err := Run(gpt2(t, func(r *Request) { r.Formula = "seed" }))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(gpt2(t, func(r *Request) { r.Formula, r.Calibration, r.GPU = "seed", cal, "h100" }))
	if err != nil {
		t.Fatal(err)
	}
	e, r := rep.Estimates[0], rep.Results[0]
	if e.Formula != "calibrated-seed" || e.Peak <= plain.Estimates[0].Peak || len(r.Warnings) == 0 {
		t.Errorf("got formula %q, peak %d (uncalibrated %d), warnings %q; want a calibrated, larger peak with warnings",
			e.Formula, e.Peak, plain.Estimates[0].Peak, r.Warnings)
	}
}
