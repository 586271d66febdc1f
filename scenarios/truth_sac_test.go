package scenarios

import (
	"fmt"
	"math"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestOpsCheckpointingTruth: under torchtitan's per-op selective
// checkpointing (checkpointing ops:torchtitan; train.py's
// torchtitan_policy through torch 2.11's
// create_selective_checkpoint_contexts on every layer) the hand-built
// program and transformers' classes keep what analytic.SavedActivations
// says, within 0.1%: each layer's input plus the odd-numbered aten.mm
// outputs (none for GPT-2's Conv1D addmm; q, v, gate and down for Llama;
// o and up for Qwen2, whose q, k, v have biases and run addmm), for tiny
// models in fp32, bf16 autocast and pure bf16, eager and SDPA attention,
// on the CPU (where torch's flash kernel is not in torchtitan's list).
func TestOpsCheckpointingTruth(t *testing.T) {
	needTorch(t)
	gpt2 := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	qwen2 := normalized(t, model.Arch{Family: "qwen2", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
		for _, att := range []model.Attention{model.MathAttention, model.FlashAttention} {
			if att == model.FlashAttention && prec != model.BF16Mixed {
				continue // SDPA's kernel is recomputed whatever the dtype: one precision is enough
			}
			for _, a := range []model.Arch{gpt2, llama, qwen2} {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: att, Checkpointing: "ops:torchtitan"}})
			}
		}
	}
	res := runTruthJobs(t, handAndHFJobs(len(cases), func(i int) (model.Arch, *model.Workload) { return cases[i].a, &cases[i].w }))
	for i, c := range cases {
		hand, hf := res[2*i], res[2*i+1]
		name := fmt.Sprintf("%s %s %s", c.a.Family, c.w.Precision, c.w.Attention)
		if hand.Impl != "hand" || hf.Impl != "transformers" {
			t.Fatalf("%s: impls %q and %q, want hand and transformers", name, hand.Impl, hf.Impl)
		}
		for _, r := range []struct {
			got truthResult
			w   model.Workload
		}{{hand, c.w}, {hf, hfWorkload(c.w, "transformers")}} {
			terms, err := analytic.SavedActivations(c.a, r.w)
			if err != nil {
				t.Fatal(err)
			}
			want, got := float64(analytic.SavedBytes(terms)), float64(r.got.SavedBytes[0])
			t.Logf("%-28s %-12s analytic %8.0f measured %8.0f (%+.3f%%)", name, r.got.Impl, want, got, 100*(got/want-1))
			if math.Abs(got-want) > 0.001*want {
				t.Errorf("%s %s: saved %.0f bytes, want analytic %.0f (%+.3f%%); saved tensors:\n%v", name, r.got.Impl, got, want, 100*(got/want-1), r.got.Saved)
			}
		}
	}
}
