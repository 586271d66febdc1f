package scenarios

import (
	"fmt"
	"math"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// moeArchs are the small Mixtral-style and Qwen-MoE-style models the MoE
// truth tests build: routed experts (k of E), Qwen's shared expert with
// its sigmoid gate, with and without the load-balancing loss.
func moeArchs(t *testing.T) []model.Arch {
	mixtral := normalized(t, model.Arch{Family: "mixtral", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 96,
		Vocab: 1000, Experts: 4, ExpertsPerToken: 2})
	qwen := normalized(t, model.Arch{Family: "qwen2_moe", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 48,
		Vocab: 1000, Experts: 6, ExpertsPerToken: 3, SharedFFN: 80})
	mixtralAux, qwenAux := mixtral, qwen
	mixtralAux.RouterAuxLoss, qwenAux.RouterAuxLoss = true, true
	qwenAux.NormTopK = true
	return []model.Arch{mixtral, qwen, mixtralAux, qwenAux}
}

// TestMoETruth: the Mixtral-style and Qwen-MoE-style models, built by hand
// from the family table's layer (OpMoE) and by transformers
// (MixtralForCausalLM, Qwen2MoeForCausalLM from_config, default grouped
// experts), give model.Params' parameter count, and the bytes autograd
// saves equal analytic.SavedActivations within 0.1% (transformers: for its
// attn_impl, eager or sdpa), across precisions,
// checkpointing, attention and the auxiliary loss. A mismatch lists the
// tensors the two programs save differently.
func TestMoETruth(t *testing.T) {
	needTorch(t)
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for i, a := range moeArchs(t) {
		for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
			cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec}})
			if i < 2 {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: model.FullCheckpointing}},
					tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: model.FlashAttention}})
			}
		}
		if i >= 2 {
			cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Checkpointing: model.FullCheckpointing}})
		}
	}
	res := runTruthJobs(t, handAndHFJobs(len(cases), func(i int) (model.Arch, *model.Workload) { return cases[i].a, &cases[i].w }))
	for i, c := range cases {
		hand, hf := res[2*i], res[2*i+1]
		name := fmt.Sprintf("%s aux %v %s ckpt %s %s", c.a.Family, c.a.RouterAuxLoss, c.w.Precision, c.w.Checkpointing, c.w.Attention)
		if hand.Impl != "hand" || hf.Impl != "transformers" {
			t.Fatalf("%s: impls %q and %q, want hand and transformers", name, hand.Impl, hf.Impl)
		}
		pb, err := model.Params(c.a)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []truthResult{hand, hf} {
			if r.Params != pb.Total || r.Trainable != pb.Total {
				t.Errorf("%s %s: params %d trainable %d, want model.Params %d", name, r.Impl, r.Params, r.Trainable, pb.Total)
			}
		}
		terms, err := analytic.SavedActivations(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(analytic.SavedBytes(terms))
		got := float64(hand.SavedBytes[0])
		hfTerms, err := analytic.SavedActivations(c.a, hfWorkload(c.w, "transformers"))
		if err != nil {
			t.Fatal(err)
		}
		wantHF := float64(analytic.SavedBytes(hfTerms))
		gotHF := float64(hf.SavedBytes[0])
		t.Logf("%-48s analytic %8.0f hand %8.0f (%+.3f%%) transformers %8.0f = analytic %+.0f", name, want, got, 100*(got/want-1), gotHF, gotHF-want)
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: hand-built saved %.0f bytes, want analytic %.0f (%+.3f%%); tensors the two programs save differently:\n%s",
				name, got, want, 100*(got/want-1), diffSaved(hand.Saved, hf.Saved))
		}
		if math.Abs(gotHF-wantHF) > 0.001*wantHF {
			t.Errorf("%s: transformers %s saved %.0f bytes, want analytic (transformers' attn_impl) %.0f (%+.3f%%); tensors that differ from the hand-built program:\n%s",
				name, hf.Transformers, gotHF, wantHF, 100*(gotHF/wantHF-1), diffSaved(hand.Saved, hf.Saved))
		}
	}
}
