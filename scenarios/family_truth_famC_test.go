package scenarios

import (
	"fmt"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// famCArchs are tiny models of the GPT-style families whose layers the
// family table writes out for the breakdown only (model.Layer.HFOnly):
// gpt_neox (partial rotary 0.25, parallel residual, and without it), opt
// (with and without project_in/out, pre- and post-norm), phi (also with
// grouped-query attention) (partial rotary 0.5, parallel
// block), gpt_neo (global and local layers) and gptj (interleaved rotary
// of 8 dims). Their heads are 16 wide and the MLP 160, so that every
// tensor's size tells which it is.
func famCArchs(t *testing.T) []model.Arch {
	base := model.Arch{Layers: 2, Hidden: 64, Heads: 4, FFN: 160, Vocab: 1000}
	var as []model.Arch
	for _, f := range []string{"gpt_neox", "opt", "phi", "gpt_neo", "gptj"} {
		a := base
		a.Family = f
		if fam, _ := model.FamilyOf(f); fam.Positions == model.LearnedPositions {
			a.MaxPositions = 64 // a table of 64 rows (rotary families have none)
		}
		if f == "gptj" {
			a.RotaryDim = 8
		}
		as = append(as, normalized(t, a))
	}
	serial := as[0]
	serial.ParallelBlock = false // use_parallel_residual false: each norm reads its own input
	proj := base
	proj.Family, proj.EmbedProj, proj.MaxPositions = "opt", 32, 64
	post := as[1]
	post.FinalNorm = false // do_layer_norm_before false: post-norm layers, no final norm (OPT-350m)
	gqa := base
	gqa.Family, gqa.KVHeads = "phi", 2 // num_key_value_heads: SDPA keeps k and v of 2 heads
	return append(as, serial, normalized(t, proj), post, normalized(t, gqa))
}

// TestFamilyTruthFamC: for each tiny model above, transformers' own class
// (AutoModelForCausalLM.from_config of the config.json HFConfig writes;
// impl transformers only, as these layers have no hand-built program)
// has model.Params' parameters, all trainable, the breakdown's optimizer
// state within 0.1%, and saves for backward what analytic.SavedActivations
// says within 0.1%, across fp32, bf16 autocast and pure bf16, eager and
// sdpa attention (gpt_neo has only eager), dropout, full and layers:N
// checkpointing. A
// mismatch lists the saved tensors and the breakdown's terms.
func TestFamilyTruthFamC(t *testing.T) {
	needTorch(t)
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for i, a := range famCArchs(t) {
		attns := []model.Attention{model.MathAttention, model.FlashAttention}
		if f, _ := model.FamilyOf(a.Family); f.Layer.EagerOnly {
			attns = attns[:1]
		}
		precs := []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure}
		if i >= 5 { // the variants: fewer cases
			precs = precs[:2]
		}
		for _, prec := range precs {
			for _, at := range attns {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 12, Precision: prec, Attention: at}})
			}
		}
		if i < 5 {
			cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 12, Precision: model.BF16Mixed, Checkpointing: model.FullCheckpointing}})
			// dropout: eager in fp32 and bf16; sdpa's math path in bf16
			for _, at := range attns {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 12, Precision: model.BF16Mixed, Attention: at, Dropout: 0.1}})
			}
			cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 12, Precision: model.FP32, Dropout: 0.1}})
		}
		if a.Family == "gpt_neox" || a.Family == "gptj" {
			// layers:2 on 3 layers: transformers checkpoints layers 1 and 3;
			// layer 2 keeps neox's cos and sin (gptj's are per layer)
			a3 := a
			a3.Layers = 3
			cases = append(cases, tc{a3, model.Workload{Batch: 2, Seq: 12, Precision: model.BF16Mixed, Checkpointing: "layers:2"}},
				tc{a3, model.Workload{Batch: 2, Seq: 12, Precision: model.FP32, Attention: model.FlashAttention, Checkpointing: "layers:2"}})
		}
	}
	var jobs []TrainJob
	for i := range cases {
		w := &cases[i].w
		w.Backend, w.Loss = model.CPU, model.HFLoss
		*w = hfWorkload(*w, "transformers")
		jobs = append(jobs, TrainJob{Arch: cases[i].a, Workload: *w, Steps: 1, Seed: 1, Device: "cpu",
			MeasureSaved: true, Impl: "transformers", ListSaved: true})
	}
	res := runTruthJobs(t, jobs)
	for i, c := range cases {
		r := res[i]
		name := fmt.Sprintf("%s L%d kv %d parallel %v proj %d final norm %v %s %s ckpt %s dropout %g", c.a.Family, c.a.Layers,
			c.a.KVHeads, c.a.ParallelBlock, c.a.EmbedProj, c.a.FinalNorm, c.w.Precision, c.w.AttnImpl, c.w.Checkpointing, c.w.Dropout)
		terms := checkTransformersTruth(t, name, c.a, c.w, r, true)
		for _, term := range terms {
			if term.Note != terms[0].Note {
				t.Errorf("%s: term %s note %q, want every term's %q", name, term.Name, term.Note, terms[0].Note)
				break
			}
		}
	}
}
