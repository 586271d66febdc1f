package analytic

import (
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestAttnImplDelta: transformers' implementations differ from the
// hand-built program by the bytes measured on torch 2.11's CPU with
// transformers 5.24 (scenarios/truth_test.go checks both against torch):
// GPT-2 eager saves no scale tensor and, under autocast, fp32 scores (+4
// bytes a score, +2 with dropout's 16-bit copy already counted); under
// eager full checkpointing the B x 1 x S x S mask once; Llama's sdpa keeps
// k and v with the kv heads only; Llama's full checkpointing no cos/sin.
func TestAttnImplDelta(t *testing.T) {
	gpt2 := model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128}
	llama := model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}
	for _, a := range []*model.Arch{&gpt2, &llama} {
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	const B, S, L, h, kv, d = 2.0, 32.0, 2.0, 4.0, 2.0, 16.0
	for _, tc := range []struct {
		name string
		a    model.Arch
		w    model.Workload
		impl model.AttnImpl
		want float64
	}{
		{"gpt2 fp32 eager", gpt2, model.Workload{}, model.EagerAttn, -4 * L},
		{"gpt2 bf16 eager", gpt2, model.Workload{Precision: model.BF16Mixed}, model.EagerAttn, -2*L + 4*B*h*S*S*L},
		{"gpt2 bf16 eager dropout", gpt2, model.Workload{Precision: model.BF16Mixed, Dropout: 0.1}, model.EagerAttn, -2*L + 2*B*h*S*S*L},
		{"gpt2 bf16-pure eager", gpt2, model.Workload{Precision: model.BF16Pure}, model.EagerAttn, -2 * L},
		{"gpt2 fp32 eager full", gpt2, model.Workload{Checkpointing: model.FullCheckpointing}, model.EagerAttn, 4 * B * S * S},
		{"gpt2 bf16-pure eager full", gpt2, model.Workload{Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing}, model.EagerAttn, 2 * B * S * S},
		{"gpt2 sdpa full", gpt2, model.Workload{Checkpointing: model.FullCheckpointing}, model.SDPAAttn, 0},
		{"gpt2 bf16 sdpa", gpt2, model.Workload{Precision: model.BF16Mixed}, model.SDPAAttn, 0},
		{"llama bf16 eager", llama, model.Workload{Precision: model.BF16Mixed}, model.EagerAttn, 0},
		{"llama fp32 sdpa", llama, model.Workload{}, model.SDPAAttn, -(h - kv) * B * S * d * 2 * 4 * L},
		{"llama bf16 sdpa", llama, model.Workload{Precision: model.BF16Mixed}, model.SDPAAttn, -(h - kv) * B * S * d * 2 * 2 * L},
		{"llama fp32 eager full", llama, model.Workload{Checkpointing: model.FullCheckpointing}, model.EagerAttn, -2 * S * d * 4},
		{"llama bf16-pure sdpa full", llama, model.Workload{Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing}, model.SDPAAttn, -2 * S * d * 2},
		{"llama cuda fa2", llama, model.Workload{Backend: model.CUDA}, model.FlashAttention2, -(h - kv) * B * S * d * 2 * 4 * L},
	} {
		w := tc.w
		w.Batch, w.Seq, w.Loss = B, S, model.HFLoss
		if w.Backend == "" {
			w.Backend = model.CPU
		}
		if tc.impl != model.EagerAttn {
			w.Attention = model.FlashAttention
		}
		hand, err := SavedActivations(tc.a, w)
		if err != nil {
			t.Fatal(err)
		}
		w.AttnImpl = tc.impl
		hf, err := SavedActivations(tc.a, w)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(SavedBytes(hf)) - float64(SavedBytes(hand)); got != tc.want {
			t.Errorf("%s: %s saves %+.0f bytes beside the hand-built program, want %+.0f", tc.name, tc.impl, got, tc.want)
		}
	}
}

// TestEveryNthByLibrary: layers:N checkpoints floor(L/N) layers in
// torchtitan's (the hand-built program's) counting, ceil(L/N) in
// transformers' every_n_layers.
func TestEveryNthByLibrary(t *testing.T) {
	a := model.Arch{Family: "llama", Layers: 7, Hidden: 64, Heads: 4, FFN: 176, Vocab: 1000}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ckpt model.Checkpointing
		impl model.AttnImpl
		want float64
	}{
		{"layers:2", "", 3}, {"layers:2", model.SDPAAttn, 4},
		{"layers:7", "", 1}, {"layers:7", model.EagerAttn, 1},
		{"layers:8", "", 0}, {"layers:8", model.EagerAttn, 1},
		{"layers:1", model.SDPAAttn, 7},
	} {
		var s actShape
		if err := s.init(a, model.Workload{Batch: 1, Seq: 8, Checkpointing: tc.ckpt, AttnImpl: tc.impl}); err != nil {
			t.Fatal(err)
		}
		if got := s.checkpointedLayers(); got != tc.want {
			t.Errorf("%s %q: %v layers checkpointed, want %v", tc.ckpt, tc.impl, got, tc.want)
		}
	}
}
