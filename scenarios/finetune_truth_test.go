package scenarios

import (
	"fmt"
	"math"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// optimStates sums the breakdown's steady optimizer terms.
func optimStates(t *testing.T, a model.Arch, w model.Workload) float64 {
	t.Helper()
	e, err := analytic.Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	var opt float64
	for _, term := range e.Terms {
		if term.Group == analytic.GroupOptimizer && !term.Peak && term.Name != "master_weights" {
			opt += float64(term.Bytes)
		}
	}
	return opt
}

// TestFinetuneTruth is issue 15's CPU truth: LoRA (hand-written after
// PEFT's lora.Linear, and PEFT itself on the transformers model), task
// heads (transformers' sequence and token classifiers, their loss),
// gradient accumulation, zero_grad to zeros, Adafactor and
// torch.optim's implementations on tiny GPT-2 and Llama configs. Parameter
// counts (with the adapters), trainable counts, optimizer-state bytes and
// the hand-built program's saved-for-backward bytes equal memval's within
// 0.1%, and transformers' equal them for its attention implementation
// (hfWorkload).
func TestFinetuneTruth(t *testing.T) {
	needTorch(t)
	gpt2 := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		a         model.Arch
		w         model.Workload
		impls     []string
		optimImpl string
	}
	both := []string{"hand", "transformers"}
	lora := func(w model.Workload, r int, targets string, p float64) model.Workload {
		w.LoRARank, w.LoRATargets, w.LoRADropout = r, targets, p
		return w
	}
	base := model.Workload{Batch: 2, Seq: 32}
	pure := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Pure}
	ckpt := model.Workload{Batch: 2, Seq: 32, Checkpointing: model.FullCheckpointing}
	mixed := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed}
	var cases []tc
	for _, a := range []model.Arch{llama, gpt2} {
		cases = append(cases,
			tc{a: a, w: lora(base, 4, "", 0), impls: both},
			tc{a: a, w: lora(base, 4, model.LoRAAllLinear, 0), impls: both},
			tc{a: a, w: lora(pure, 4, model.LoRAAllLinear, 0), impls: both},
			tc{a: a, w: lora(base, 8, model.LoRAAllLinear, 0.1), impls: both},
			tc{a: a, w: lora(ckpt, 4, model.LoRAAllLinear, 0), impls: both},
			tc{a: a, w: lora(mixed, 4, model.LoRAAllLinear, 0), impls: both},
			tc{a: a, w: lora(mixed, 4, "", 0.1), impls: both},
		)
	}
	cases = append(cases,
		tc{a: llama, w: lora(base, 4, "q_proj,k_proj,down_proj", 0), impls: both},
		tc{a: gpt2, w: lora(base, 4, "c_proj", 0), impls: both},
		tc{a: gpt2, w: model.Workload{Batch: 2, Seq: 32, GradAccum: 2, ZeroGrad: model.ZeroGradZeros}, impls: both},
		tc{a: llama, w: model.Workload{Batch: 2, Seq: 32, Optimizer: model.Adafactor}, impls: both},
		tc{a: gpt2, w: model.Workload{Batch: 2, Seq: 32, Optimizer: model.Adafactor}, impls: []string{"hand"}},
		tc{a: llama, w: base, impls: []string{"hand"}, optimImpl: "for-loop"},
		tc{a: llama, w: base, impls: []string{"hand"}, optimImpl: "foreach"},
		tc{a: llama, w: base, impls: []string{"hand"}, optimImpl: "fused"},
	)
	for _, h := range []struct {
		head   string
		labels int
	}{{model.HeadSeqCls, 3}, {model.HeadTokenCls, 5}} {
		for _, a := range []model.Arch{llama, gpt2} {
			a.Head, a.Labels = h.head, h.labels
			a = normalized(t, a)
			hf := []string{"transformers"}
			cases = append(cases, tc{a: a, w: base, impls: hf}, tc{a: a, w: lora(base, 4, "", 0), impls: hf},
				tc{a: a, w: mixed, impls: hf}, tc{a: a, w: lora(mixed, 4, "", 0.1), impls: hf},
				tc{a: a, w: pure, impls: hf}, tc{a: a, w: lora(pure, 4, "", 0), impls: hf}, tc{a: a, w: ckpt, impls: hf})
		}
	}
	var jobs []TrainJob
	type ref struct {
		c    int
		impl string
	}
	var refs []ref
	for i := range cases {
		cases[i].w.Backend = model.CPU
		cases[i].w.Loss = model.HFLoss // transformers' ForCausalLMLoss; the hand-built program writes it out
		for _, impl := range cases[i].impls {
			jobs = append(jobs, TrainJob{Arch: cases[i].a, Workload: hfWorkload(cases[i].w, impl), Steps: 1, Seed: 1, Device: "cpu",
				MeasureSaved: true, Impl: impl, ListSaved: true, OptimImpl: cases[i].optimImpl})
			refs = append(refs, ref{i, impl})
		}
	}
	res := runTruthJobs(t, jobs)
	for k, r := range res {
		c := cases[refs[k].c]
		name := fmt.Sprintf("%s head %q %s lora r=%d %q p=%g ckpt %s %s accum %d %s impl %s / %s", c.a.Family, c.a.Head, c.w.Precision,
			c.w.LoRARank, c.w.LoRATargets, c.w.LoRADropout, c.w.Checkpointing, c.w.Optimizer, c.w.GradAccum, c.w.ZeroGrad, c.optimImpl, r.Impl)
		if r.Impl != refs[k].impl {
			t.Fatalf("%s: impl %q", name, r.Impl)
		}
		pb, err := model.Params(c.a)
		if err != nil {
			t.Fatal(err)
		}
		adapters, err := model.LoRAParams(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		wantParams := pb.Total + adapters
		if c.w.LoRA() && r.Impl == "transformers" {
			wantParams += model.HeadTrainable(c.a) // PEFT's modules_to_save keeps the original head beside its trained copy
		}
		wantTrain, err := model.TrainableParams(c.a, c.w, pb.Total)
		if err != nil {
			t.Fatal(err)
		}
		if r.Params != wantParams || r.Trainable != wantTrain {
			t.Errorf("%s: params %d trainable %d, want %d and %d", name, r.Params, r.Trainable, wantParams, wantTrain)
		}
		opt := optimStates(t, c.a, c.w)
		if math.Abs(float64(r.OptimBytes)-opt) > 0.001*opt {
			t.Errorf("%s: optimizer state %d bytes, want the breakdown's %.0f (%+.3f%%)", name, r.OptimBytes, opt, 100*(float64(r.OptimBytes)/opt-1))
		}
		terms, err := analytic.SavedActivations(c.a, hfWorkload(c.w, r.Impl))
		if err != nil {
			t.Fatal(err)
		}
		want := float64(analytic.SavedBytes(terms))
		got := float64(r.SavedBytes[0])
		t.Logf("%-90s saved %9.0f want %9.0f (%+.3f%%) params %d trainable %d states %d", name, got, want, 100*(got/want-1), r.Params, r.Trainable, r.OptimBytes)
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: saved %.0f bytes, want %.0f (%+.3f%%); saved tensors:\n%v", name, got, want, 100*(got/want-1), r.Saved)
		}
	}
}
