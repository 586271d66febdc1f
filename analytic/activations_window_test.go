package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestWindowFamiliesMeasured compares with the bytes transformers 5.24's
// classes saved on torch 2.11's CPU (scenarios/family_truth_famB_test.go,
// TestWindowFamiliesTruth, tiny models: 2 layers, hidden 64, 4 heads, 2
// kv heads of 16, FFN 176, vocabulary 1000; batch 2, sequence 32).
func TestWindowFamiliesMeasured(t *testing.T) {
	arch := func(fam string, adjust func(a *model.Arch)) model.Arch {
		a := model.Arch{Family: fam, Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 176, Vocab: 1000}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		adjust(&a)
		return a
	}
	gemma2 := arch("gemma2", func(a *model.Arch) { a.SlidingWindow = 16 })
	gemma3 := arch("gemma3_text", func(a *model.Arch) { a.SlidingWindow, a.GlobalEvery = 16, 2 })
	gemma3Wide := arch("gemma3_text", func(a *model.Arch) { a.GlobalEvery = 2 })
	starcoder2 := arch("starcoder2", func(a *model.Arch) { a.SlidingWindow = 16 })
	for _, c := range []struct {
		name string
		a    model.Arch
		prec model.Precision
		impl model.AttnImpl
		ckpt model.Checkpointing
		drop float64
		want uint64
	}{
		{"gemma2 fp32 eager", gemma2, model.FP32, model.EagerAttn, "", 0, 1521156},
		{"gemma2 bf16 eager", gemma2, model.BF16Mixed, model.EagerAttn, "", 0, 1467908},
		{"gemma2 bf16-pure eager", gemma2, model.BF16Pure, model.EagerAttn, "", 0, 1104388},
		{"gemma2 bf16 eager full", gemma2, model.BF16Mixed, model.EagerAttn, model.FullCheckpointing, 0, 587268},
		{"gemma2 fp32 eager dropout", gemma2, model.FP32, model.EagerAttn, "", 0.1, 1652228},
		{"gemma3 fp32 sdpa", gemma3, model.FP32, model.SDPAAttn, "", 0, 1233668},
		{"gemma3 bf16 sdpa", gemma3, model.BF16Mixed, model.SDPAAttn, "", 0, 1312516},
		{"gemma3 wide bf16-pure sdpa", gemma3Wide, model.BF16Pure, model.SDPAAttn, "", 0, 934660},
		{"gemma3 bf16 eager", gemma3, model.BF16Mixed, model.EagerAttn, "", 0, 1412868},
		{"starcoder2 fp32 eager", starcoder2, model.FP32, model.EagerAttn, "", 0, 804356},
		{"starcoder2 bf16-pure sdpa", starcoder2, model.BF16Pure, model.SDPAAttn, "", 0, 508164},
		{"starcoder2 bf16 eager dropout", starcoder2, model.BF16Mixed, model.EagerAttn, "", 0.1, 1055236},
	} {
		w := model.Workload{Batch: 2, Seq: 32, Precision: c.prec, Backend: model.CPU, Loss: model.HFLoss, AttnImpl: c.impl,
			Checkpointing: c.ckpt, Dropout: c.drop}
		terms, err := SavedActivations(c.a, w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := SavedBytes(terms); got != c.want {
			t.Errorf("%s: %d bytes, measured %d (%+d)", c.name, got, c.want, int64(got)-int64(c.want))
		}
		for _, tm := range terms {
			if tm.Note != noteMeasured {
				t.Errorf("%s: %s: note %q, want %q", c.name, tm.Name, tm.Note, noteMeasured)
				break
			}
		}
	}
	// memval's hand-built program with flash attention or checkpointing
	// is not what train.py builds for these families: derived
	for _, w := range []model.Workload{{Batch: 1, Seq: 8, Backend: model.CPU, Attention: model.FlashAttention},
		{Batch: 1, Seq: 8, Backend: model.CPU, Checkpointing: model.FullCheckpointing}} {
		terms, err := SavedActivations(gemma3, w)
		if err != nil {
			t.Fatal(err)
		}
		if terms[0].Note != noteDerived {
			t.Errorf("gemma3 hand %s ckpt %s: note %q, want %q", w.Attention, w.Checkpointing, terms[0].Note, noteDerived)
		}
	}
	// transformers' Gemma2 refuses sdpa
	var fe *model.FieldError
	if _, err := SavedActivations(gemma2, model.Workload{Batch: 1, Seq: 8, AttnImpl: model.SDPAAttn}); !errors.As(err, &fe) || fe.Field != "attn_impl" {
		t.Errorf("gemma2 sdpa: got %v, want a field error on attn_impl", err)
	}
}
