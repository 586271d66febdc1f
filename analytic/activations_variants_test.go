package analytic

import (
	"math"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// variantArchs are the tiny configs of scenarios/family_truth_famA_test.go.
func variantArchs(t *testing.T) map[string]model.Arch {
	t.Helper()
	m := map[string]model.Arch{
		"gemma":     {Family: "gemma", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 24, FFN: 176, Vocab: 1000},
		"qwen3":     {Family: "qwen3", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 24, FFN: 176, Vocab: 1000},
		"qwen3_moe": {Family: "qwen3_moe", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 24, FFN: 48, Vocab: 1000, Experts: 6, ExpertsPerToken: 3},
		"phi3":      {Family: "phi3", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000},
		"phi3_mha":  {Family: "phi3", Layers: 2, Hidden: 64, Heads: 4, FFN: 176, Vocab: 1000},
		"olmo2":     {Family: "olmo2", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000},
	}
	for k, a := range m {
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		m[k] = a
	}
	return m
}

// TestVariantSavedMeasured checks the Llama variants' saved bytes against
// what transformers 5.24's classes saved on torch 2.11's CPU (MEMVAL_PYTHON
// set to the truth venv, go test ./scenarios -run TestFamilyTruthFamA -v:
// batch 2, sequence 32, transformers' loss, saved_tensors_hooks with each
// storage counted once, parameters and buffers left out), recorded here so
// that the rules are checked where torch is not installed.
func TestVariantSavedMeasured(t *testing.T) {
	archs := variantArchs(t)
	for _, c := range []struct {
		arch     string
		prec     model.Precision
		impl     model.AttnImpl
		ckpt     model.Checkpointing
		measured float64
		dropout  float64
	}{
		{"gemma", model.FP32, model.EagerAttn, model.NoCheckpointing, 1134084, 0},
		{"gemma", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 1112580, 0},
		{"gemma", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 844292, 0},
		{"gemma", model.BF16Pure, model.EagerAttn, model.FullCheckpointing, 314884, 0},
		{"qwen3", model.FP32, model.EagerAttn, model.NoCheckpointing, 1283332, 0},
		{"qwen3", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 1224964, 0},
		{"qwen3", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 915716, 0},
		{"qwen3_moe", model.FP32, model.SDPAAttn, model.NoCheckpointing, 1318708, 0},
		{"qwen3_moe", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1523252, 0},
		{"qwen3_moe", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 876596, 0},
		{"phi3", model.FP32, model.SDPAAttn, model.NoCheckpointing, 1050884, 0},
		{"phi3", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1123588, 0},
		{"phi3", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 1051908, 0},
		{"phi3", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 696580, 0},
		{"phi3_mha", model.FP32, model.SDPAAttn, model.NoCheckpointing, 1100036, 0},
		{"phi3_mha", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1139972, 0},
		{"olmo2", model.FP32, model.EagerAttn, model.NoCheckpointing, 1164548, 0},
		{"olmo2", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 1159428, 0},
		{"olmo2", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 910596, 0},
		{"olmo2", model.BF16Pure, model.SDPAAttn, model.FullCheckpointing, 314628, 0},
		{"phi3", model.FP32, model.EagerAttn, model.NoCheckpointing, 1261828, 0.1},
		{"phi3", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1221892, 0.1},
		{"phi3_mha", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1238276, 0.1},
		{"olmo2", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1304836, 0.1},
		{"gemma", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 877060, 0.1},
		{"qwen3_moe", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 1588788, 0.1},
	} {
		w := model.Workload{Batch: 2, Seq: 32, Precision: c.prec, Checkpointing: c.ckpt, AttnImpl: c.impl,
			Backend: model.CPU, Loss: model.HFLoss, Dropout: c.dropout}
		terms, err := SavedActivations(archs[c.arch], w)
		if err != nil {
			t.Fatal(err)
		}
		got := float64(SavedBytes(terms))
		if math.Abs(got-c.measured) > 0.001*c.measured {
			t.Errorf("%s %s %s ckpt %s dropout %g: saved %.0f bytes, measured %.0f (%+.0f)", c.arch, c.prec, c.impl, c.ckpt, c.dropout, got, c.measured, got-c.measured)
		}
		for _, term := range terms {
			if term.Note != noteMeasured {
				t.Errorf("%s %s %s: term %s notes %q, want measured", c.arch, c.prec, c.impl, term.Name, term.Note)
				break
			}
		}
	}
}

// TestVariantLoRAMeasured: PEFT's LoRA (rank 4) on the variants, as
// transformers 5.24 and peft 0.21 saved it on torch 2.11's CPU (go test
// ./scenarios -run TestFamilyTruthFamA -v; eager attention, batch 2,
// sequence 32).
func TestVariantLoRAMeasured(t *testing.T) {
	archs := variantArchs(t)
	for _, c := range []struct {
		arch, targets string
		prec          model.Precision
		dropout       float64
		measured      float64
	}{
		{"gemma", model.LoRAAllLinear, model.BF16Pure, 0, 968708},
		{"qwen3", "", model.BF16Mixed, 0.1, 1171460},
		{"phi3", model.LoRAAllLinear, model.BF16Pure, 0, 820996},
		{"olmo2", model.LoRAAllLinear, model.BF16Pure, 0, 977668},
	} {
		w := model.Workload{Batch: 2, Seq: 32, Precision: c.prec, AttnImpl: model.EagerAttn, Backend: model.CPU,
			Loss: model.HFLoss, LoRARank: 4, LoRATargets: c.targets, LoRADropout: c.dropout}
		terms, err := SavedActivations(archs[c.arch], w)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(SavedBytes(terms)); math.Abs(got-c.measured) > 0.001*c.measured {
			t.Errorf("%s lora %q %s: saved %.0f bytes, measured %.0f (%+.0f)", c.arch, c.targets, c.prec, got, c.measured, got-c.measured)
		}
	}
}

// TestVariantNotes: what the truth tests did not run on the variants is
// derived: memval's own attention under flash or checkpointing.
func TestVariantNotes(t *testing.T) {
	archs := variantArchs(t)
	base := model.Workload{Batch: 2, Seq: 32, Backend: model.CPU, Loss: model.HFLoss}
	for _, c := range []struct {
		name string
		edit func(w *model.Workload)
		note string
	}{
		{"hand eager", func(w *model.Workload) {}, noteMeasured},
		{"hand flash", func(w *model.Workload) { w.Attention = model.FlashAttention }, noteDerived},
		{"hand full ckpt", func(w *model.Workload) { w.Checkpointing = model.FullCheckpointing }, noteDerived},
		{"eager dropout", func(w *model.Workload) { w.AttnImpl, w.Dropout = model.EagerAttn, 0.1 }, noteMeasured},
		{"eager lora", func(w *model.Workload) { w.AttnImpl, w.LoRARank = model.EagerAttn, 8 }, noteMeasured},
		{"sdpa full ckpt", func(w *model.Workload) { w.AttnImpl, w.Checkpointing = model.SDPAAttn, model.FullCheckpointing }, noteMeasured},
	} {
		w := base
		c.edit(&w)
		terms, err := SavedActivations(archs["gemma"], w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if terms[0].Note != c.note {
			t.Errorf("%s: note %q, want %q", c.name, terms[0].Note, c.note)
		}
	}
}

// TestVariantTermsFromFlags: each flag adds or changes only its own terms
// against the llama program of the same shape (pure bf16, sdpa, where all
// of them show).
func TestVariantTermsFromFlags(t *testing.T) {
	w := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Pure, Backend: model.CPU, Loss: model.HFLoss,
		AttnImpl: model.SDPAAttn}
	byName := func(fam string) map[string]uint64 {
		a := model.Arch{Family: fam, Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		terms, err := SavedActivations(a, w)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]uint64{}
		for _, term := range terms {
			m[term.Name] += term.Bytes
		}
		return m
	}
	llama := byName("llama")
	BSH, H, L := uint64(2*32*64), uint64(64), uint64(2)
	for _, c := range []struct {
		fam  string
		want map[string]uint64 // terms that differ from llama's (0: absent)
	}{
		{"gemma", map[string]uint64{"ln.normed16": 0, "ln.normed_fp32": 4 * 2 * BSH * L, "lnf.normed16": 0,
			"lnf.normed_fp32": 4 * BSH, "ln.weight_plus_one": 4 * H * 2 * L, "lnf.weight_plus_one": 4 * H}},
		{"qwen3", map[string]uint64{"attn.qk_norm_in": 4 * 2 * 32 * 6 * 16 * L, "attn.qk_norm_stats": 4 * 2 * 32 * 6 * L,
			"attn.qk_norm_out": 2 * 2 * 32 * 6 * 16 * L}},
		{"phi3", map[string]uint64{"attn.v": 0, "attn.qkv_out": 2 * 2 * 32 * 8 * 16 * L, "attn.sdpa_out": 2 * BSH * L}},
		{"olmo2", map[string]uint64{"ln.normed16": 0, "ln.normed_fp32": 4 * 2 * BSH * L, "lnf.normed16": 0,
			"lnf.normed_fp32": 4 * BSH, "rope.cos_sin": 4 * 2 * 32 * 16, "attn.qk_norm_in": 4 * 2 * 32 * 6 * 16 * L,
			"attn.qk_norm_stats": 4 * 2 * 32 * 2 * L, "attn.qk_norm_out": 4 * 2 * 32 * 6 * 16 * L}},
	} {
		got := byName(c.fam)
		for name, n := range got {
			want, ok := c.want[name]
			if !ok {
				want = llama[name]
			}
			if n != want {
				t.Errorf("%s: %s %d bytes, want %d", c.fam, name, n, want)
			}
		}
		for name, want := range c.want {
			if _, ok := got[name]; !ok && want != 0 {
				t.Errorf("%s: no %s term, want %d bytes", c.fam, name, want)
			}
		}
		for name := range llama {
			if _, ok := got[name]; !ok && c.want[name] != 0 {
				if _, listed := c.want[name]; !listed {
					t.Errorf("%s: llama's %s term is missing", c.fam, name)
				}
			}
		}
	}
}

// TestHandBuilt: train.py's hand-built program computes the plain
// programs, not the variants.
func TestHandBuilt(t *testing.T) {
	for fam, want := range map[string]bool{"gpt2": true, "llama": true, "mixtral": true, "qwen2_moe": true,
		"gemma": false, "qwen3": false, "qwen3_moe": false, "phi3": false, "olmo2": false} {
		f, ok := model.FamilyOf(fam)
		if !ok {
			t.Fatalf("no family %s", fam)
		}
		if got := f.Layer.HandBuilt(); got != want {
			t.Errorf("%s: HandBuilt %v, want %v", fam, got, want)
		}
	}
}
