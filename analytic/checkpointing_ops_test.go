package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestOpsCheckpointingTerms: ops:torchtitan keeps full checkpointing's
// terms plus the odd-numbered aten.mm outputs per layer (worked by hand
// below) and, on CUDA with flash attention, the SDPA output and
// logsumexp; MoE and LoRA are refused and the other formulas do not model
// it.
func TestOpsCheckpointingTerms(t *testing.T) {
	norm := func(a model.Arch) model.Arch {
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		return a
	}
	llama := norm(model.Arch{Family: "llama", Layers: 4, Hidden: 256, Heads: 8, KVHeads: 2, FFN: 688, Vocab: 1000})
	qwen2 := norm(model.Arch{Family: "qwen2", Layers: 4, Hidden: 256, Heads: 8, KVHeads: 2, FFN: 688, Vocab: 1000})
	gpt2 := norm(model.Arch{Family: "gpt2", Layers: 4, Hidden: 256, Heads: 8, Vocab: 1000, MaxPositions: 128})
	const B, S, L = 2, 64, 4
	for _, c := range []struct {
		name string
		a    model.Arch
		w    model.Workload
		want float64 // bytes beyond full checkpointing
	}{
		// Llama: q, k, v, o, gate, up, down all mm: q, v, gate, down saved
		{"llama fp32", llama, model.Workload{Backend: model.CPU}, 4 * B * S * L * (256 + 64 + 688 + 256)},
		{"llama bf16", llama, model.Workload{Backend: model.CPU, Precision: model.BF16Mixed}, 2 * B * S * L * (256 + 64 + 688 + 256)},
		// CUDA flash: plus the SDPA output (bf16) and the fp32 logsumexp
		{"llama bf16 cuda flash", llama, model.Workload{Precision: model.BF16Mixed, Attention: model.FlashAttention},
			2*B*S*L*(256+64+688+256) + 2*B*S*L*256 + 4*B*8*S*L},
		// Qwen2: q, k, v have biases (addmm); o, gate, up, down: o and up saved
		{"qwen2 fp32", qwen2, model.Workload{Backend: model.CPU}, 4 * B * S * L * (256 + 688)},
		// GPT-2's Conv1D runs addmm: nothing beyond full on the CPU
		{"gpt2 fp32", gpt2, model.Workload{Backend: model.CPU}, 0},
		{"gpt2 bf16 cuda flash", gpt2, model.Workload{Precision: model.BF16Mixed, Attention: model.FlashAttention}, 2*B*S*L*256 + 4*B*8*S*L},
	} {
		saved := func(ck model.Checkpointing) float64 {
			w := c.w
			w.Batch, w.Seq, w.Checkpointing = B, S, ck
			terms, err := SavedActivations(c.a, w)
			if err != nil {
				t.Fatal(err)
			}
			return float64(SavedBytes(terms))
		}
		if got := saved("ops:torchtitan") - saved(model.FullCheckpointing); got != c.want {
			t.Errorf("%s: ops:torchtitan saves %.0f bytes beyond full, want %.0f", c.name, got, c.want)
		}
	}
	w := model.Workload{Batch: B, Seq: S, Checkpointing: "ops:torchtitan"}
	if _, err := Predict("korthikanti", llama, w); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("korthikanti with ops:torchtitan: %v, want ErrNotApplicable", err)
	}
	moe := norm(model.Arch{Family: "mixtral", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 128, Vocab: 1000})
	var fe *model.FieldError
	if _, err := SavedActivations(moe, w); !errors.As(err, &fe) || fe.Field != "checkpointing" {
		t.Errorf("mixtral with ops:torchtitan: %v, want a checkpointing field error", err)
	}
	if _, err := Predict("breakdown", llama, model.Workload{Batch: B, Seq: S, Checkpointing: "ops:megatron"}); err == nil {
		t.Error("ops:megatron: no error, want one")
	}
}
