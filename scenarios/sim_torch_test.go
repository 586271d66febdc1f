package scenarios_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler/sim"
	"github.com/memval/memval/scenarios"
	"github.com/memval/memval/scenarios/torchtest"
)

// simSaved runs the simulated process for one step and returns the bytes
// its "saved" event reports.
func simSaved(t *testing.T, a model.Arch, w model.Workload) uint64 {
	t.Helper()
	var now int64 = 1
	s, err := sim.New(sim.Config{Arch: a, Workload: w, Steps: 1, Clock: func() int64 { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Start(now)
	now += int64(s.Duration()) + 1
	for _, e := range s.Events(now) {
		if e.Kind == "saved" && e.SavedBytes != nil {
			return *e.SavedBytes
		}
	}
	t.Fatalf("%+v: the simulator reported no saved event", w)
	return 0
}

// torchSaved runs every job in one train.py process (--jobs) and returns
// each job's saved bytes of its only step. It skips without torch, unless
// CI=true, where it fails.
func torchSaved(t *testing.T, jobs []scenarios.TrainJob) []uint64 {
	t.Helper()
	torchtest.Need(t, scenarios.Python())
	path := filepath.Join(t.TempDir(), "jobs.json")
	if err := scenarios.WriteJobs(path, jobs); err != nil {
		t.Fatal(err)
	}
	argv, err := scenarios.TrainJobsCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("train.py: %v\n%s", err, stderr.String())
	}
	var got []uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			SavedBytes []uint64 `json:"saved_bytes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || len(r.SavedBytes) != 1 {
			t.Fatalf("train.py printed %q (%v), want one saved figure", sc.Text(), err)
		}
		got = append(got, r.SavedBytes[0])
	}
	if len(got) != len(jobs) {
		t.Fatalf("got %d results, want %d\n%s", len(got), len(jobs), stderr.String())
	}
	return got
}

// TestSimSavedMatchesTorch: the simulated process's per-step "saved" event
// (its own tensor walk, CPU rules) equals what autograd saves in
// scenarios/train.py on the CPU, within 0.5%, for small GPT-2 and Llama
// models across precisions, dropout and checkpointing.
func TestSimSavedMatchesTorch(t *testing.T) {
	norm := func(a model.Arch) model.Arch {
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		return a
	}
	small := norm(model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	long := norm(model.Arch{Family: "gpt2", Layers: 2, Hidden: 32, Heads: 2, Vocab: 500, MaxPositions: 128})
	llama := norm(model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	llamaMHA := norm(model.Arch{Family: "llama", Layers: 3, Hidden: 64, Heads: 4, FFN: 176, Vocab: 1000})
	type tc struct {
		name string
		a    model.Arch
		w    model.Workload
	}
	var cases []tc
	ckpts := []model.Checkpointing{model.NoCheckpointing, model.FullCheckpointing, model.SelectiveCheckpointing}
	precs := []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure}
	for _, prec := range precs {
		for _, p := range []float64{0, 0.1} {
			for _, ck := range ckpts {
				cases = append(cases, tc{"gpt2", small, model.Workload{Batch: 2, Seq: 32, Precision: prec, Dropout: p, Checkpointing: ck}})
			}
			cases = append(cases, tc{"gpt2 S>H", long, model.Workload{Batch: 2, Seq: 96, Precision: prec, Dropout: p}})
		}
		for _, ck := range ckpts {
			cases = append(cases, tc{"llama gqa", llama, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}})
			cases = append(cases, tc{"llama mha", llamaMHA, model.Workload{Batch: 1, Seq: 48, Precision: prec, Checkpointing: ck}})
		}
	}
	cases = append(cases, tc{"gpt2 flash falls back", small, model.Workload{Batch: 2, Seq: 32, Attention: model.FlashAttention, Dropout: 0.1}})
	// the Mixtral-style and Qwen-MoE-style models (scenarios.moeArchs's)
	mixtral := norm(model.Arch{Family: "mixtral", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 1000, Experts: 4, ExpertsPerToken: 2})
	qwen := norm(model.Arch{Family: "qwen2_moe", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 48, Vocab: 1000, Experts: 6, ExpertsPerToken: 3, SharedFFN: 80})
	qwenAux := qwen
	qwenAux.RouterAuxLoss, qwenAux.NormTopK = true, true
	for _, prec := range precs {
		for _, ck := range []model.Checkpointing{model.NoCheckpointing, model.FullCheckpointing} {
			cases = append(cases, tc{"mixtral", mixtral, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}},
				tc{"qwen2_moe", qwen, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}})
		}
		cases = append(cases, tc{"qwen2_moe aux", qwenAux, model.Workload{Batch: 2, Seq: 32, Precision: prec}})
	}
	jobs := make([]scenarios.TrainJob, len(cases))
	for i := range cases {
		cases[i].w.Backend = model.CPU
		jobs[i] = scenarios.TrainJob{Arch: cases[i].a, Workload: cases[i].w, Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: true, Impl: "hand"}
	}
	truth := torchSaved(t, jobs)
	for i, c := range cases {
		name := fmt.Sprintf("%s %s dropout %g ckpt %s", c.name, c.w.Precision, c.w.Dropout, c.w.Checkpointing)
		got := simSaved(t, c.a, c.w)
		t.Logf("%-45s torch %8d sim %8d (%+.2f%%)", name, truth[i], got, 100*(float64(got)/float64(truth[i])-1))
		if math.Abs(float64(got)-float64(truth[i])) > 0.005*float64(truth[i]) {
			t.Errorf("%s: simulator saved %d bytes, want torch's %d (%+.2f%%)", name, got, truth[i], 100*(float64(got)/float64(truth[i])-1))
		}
	}
}
