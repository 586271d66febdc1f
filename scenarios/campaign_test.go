package scenarios

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// campaignGrid is the grid scripts/gpu-campaign.sh runs by default.
var campaignGrid = filepath.Join("grids", "campaign-h100.yaml")

func campaignSpecs(t *testing.T) []*Spec {
	t.Helper()
	g, err := LoadGrid(campaignGrid)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := g.Expand()
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// TestCampaignGrid checks the H100 campaign's grid: 16 to 24 scenarios that
// resolve, GPT-2 small, medium and large in fp32 and bf16, math and flash,
// with and without full checkpointing, exactly one meant to run out of
// memory, few steps each, and peaks (breakdown) from under 15% to over 60%
// of an 80 GB H100.
func TestCampaignGrid(t *testing.T) {
	specs := campaignSpecs(t)
	if n := len(specs); n < 16 || n > 24 {
		t.Errorf("campaign grid: got %d scenarios, want 16 to 24", n)
	}
	h100, err := analytic.GPUByName("h100-80gb")
	if err != nil {
		t.Fatal(err)
	}
	const eighty = 80e9 // an "80 GB" H100, decimal
	presets := map[string]bool{}
	seen := map[string]bool{}
	for _, s := range specs {
		_, w, err := s.Resolve()
		if err != nil {
			t.Errorf("%s: Resolve: %v", s.Name, err)
			continue
		}
		presets[s.Model.Preset] = true
		seen[string(w.Precision)] = true
		seen[string(w.Attention)] = true
		seen["ckpt-"+string(w.Checkpointing)] = true
		if st := s.StepsOrDefault(); st > 6 {
			t.Errorf("%s: %d steps; campaign runs must be short (at most 6)", s.Name, st)
		}
	}
	minPeak, maxFit, ooms := breakdownSpan(t, specs, h100, 85)
	if ooms != 1 {
		t.Errorf("got %d scenarios with expect: oom, want exactly 1", ooms)
	}
	if float64(minPeak) > 0.15*eighty {
		t.Errorf("smallest campaign peak: got %.1f GiB, want under 15%% of 80 GB", float64(minPeak)/(1<<30))
	}
	if float64(maxFit) < 0.60*eighty {
		t.Errorf("largest campaign peak that fits: got %.1f GiB, want over 60%% of 80 GB", float64(maxFit)/(1<<30))
	}
	for _, p := range []string{"gpt2", "gpt2-medium", "gpt2-large"} {
		if !presets[p] {
			t.Errorf("no campaign scenario uses preset %s", p)
		}
	}
	for _, k := range []string{string(model.FP32), string(model.BF16Mixed), string(model.MathAttention),
		string(model.FlashAttention), "ckpt-" + string(model.NoCheckpointing), "ckpt-" + string(model.FullCheckpointing)} {
		if !seen[k] {
			t.Errorf("campaign grid lacks %s", k)
		}
	}
}

// TestCampaignScriptParams builds every campaign model with the training
// script on PyTorch's meta device: its parameter count must equal analytic's.
func TestCampaignScriptParams(t *testing.T) {
	needTorch(t)
	specs := campaignSpecs(t)
	jobs := make([]TrainJob, len(specs))
	want := make([]int64, len(specs))
	for i, s := range specs {
		a, w, err := s.Resolve()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		pb, err := model.Params(a)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = pb.Total
		jobs[i] = TrainJob{Arch: a, Workload: model.Workload{Batch: 1, Seq: 8, Precision: w.Precision}, Device: "cpu", ParamsOnly: true}
	}
	for i, r := range runJobs(t, jobs) {
		if r.Params != want[i] {
			t.Errorf("%s: script params %d, want model.Params %d", specs[i].Name, r.Params, want[i])
		}
	}
}

// TestCampaignScriptCPU trains two campaign models for real on the CPU, with
// the spec's precision, attention and checkpointing but a tiny batch and
// sequence: the script must build them, run warm-up and measured steps and
// report the saved-for-backward bytes. It takes about two minutes on two
// cores and a few GB of memory, so it runs only when MEMVAL_REHEARSE=1 (the
// campaign's CPU rehearsal, scripts/README.md).
func TestCampaignScriptCPU(t *testing.T) {
	if os.Getenv("MEMVAL_REHEARSE") != "1" {
		t.Skip("the campaign's CPU rehearsal (about 2 minutes): set MEMVAL_REHEARSE=1 to run it")
	}
	needTorch(t)
	names := []string{"gpt2-b8-s1024-bf16-flash", "gpt2-medium-b8-s1024-fp32-flash-ckpt-full"}
	byName := map[string]*Spec{}
	for _, s := range campaignSpecs(t) {
		byName[s.Name] = s
	}
	var jobs []TrainJob
	var want []int64
	for _, n := range names {
		s := byName[n]
		if s == nil {
			t.Fatalf("campaign grid has no scenario %s", n)
		}
		a, w, err := s.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		pb, err := model.Params(a)
		if err != nil {
			t.Fatal(err)
		}
		w.Batch, w.Seq, w.Backend = 1, 32, model.CPU
		jobs = append(jobs, TrainJob{Arch: a, Workload: w, Steps: 1, Warmup: 1, Device: "cpu", MeasureSaved: true})
		want = append(want, pb.Total)
	}
	for i, r := range runJobs(t, jobs) {
		if r.Params != want[i] {
			t.Errorf("%s: script params %d, want %d", names[i], r.Params, want[i])
		}
		if len(r.SavedBytes) != 2 || r.SavedBytes[0] == 0 {
			t.Errorf("%s: saved bytes per step %v, want 2 steps with bytes saved", names[i], r.SavedBytes)
		}
		t.Logf("%s at B1 S32 on the CPU: %d params, saved for backward %v bytes, attention %s", names[i], r.Params, r.SavedBytes, r.Attention)
	}
}
