package analytic

import (
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestLossConventionsBreakdown: each loss convention's logits terms, by
// hand for a Llama-3-like head (V = 128256, H = 4096) at B = 2, S = 4096 in
// pure bf16; the saved bytes themselves are checked against torch in
// scenarios/truth_conventions_test.go.
func TestLossConventionsBreakdown(t *testing.T) {
	a := model.Arch{Family: "llama", Layers: 2, Hidden: 4096, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 128256}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	const B, S, V, H = 2.0, 4096.0, 128256.0, 4096.0
	for _, c := range []struct {
		loss       model.Loss
		free       bool
		logSoftmax float64 // loss.log_softmax bytes
		fp32Copy   float64 // logits.fp32_copy bytes (PhaseLoss)
		grad       float64 // logits_grad bytes
		heldPhase  string  // logits.output's phase; "-" when absent
	}{
		{model.HFLoss, false, 4 * B * S * V, 4 * B * S * V, 8 * B * S * V, ""},
		{model.HFLoss, true, 4 * B * S * V, 4 * B * S * V, 8 * B * S * V, PhaseLoss},
		{model.TorchtitanLoss, true, 4 * B * S * V, 4 * B * S * V, 8 * B * S * V, PhaseLoss},
		{model.NanoGPTLoss, false, 2 * B * S * V, 0, 4 * B * S * V, ""},
		{"chunked:8", true, 4 * B * S * V, 4 * B * S * V / 8, 8 * B * S * V / 8, PhaseLoss},
		{model.FusedLoss, false, 0, 0, 0, "-"},
	} {
		w := model.Workload{Batch: B, Seq: S, Precision: model.BF16Pure, Attention: model.FlashAttention, Loss: c.loss, FreeLogits: c.free}
		e, err := Predict("breakdown", a, w)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Term{}
		for _, term := range e.Terms {
			got[term.Name] = term
		}
		near := func(what string, have uint64, want float64) {
			if d := float64(have) - want; d > 1 || d < -1 {
				t.Errorf("%s free %v: %s %d bytes, want %.0f", c.loss, c.free, what, have, want)
			}
		}
		near("loss.log_softmax", got["loss.log_softmax"].Bytes, c.logSoftmax)
		near("logits.fp32_copy", got["logits.fp32_copy"].Bytes, c.fp32Copy)
		near("logits_grad", got["logits_grad"].Bytes, c.grad)
		lo, ok := got["logits.output"]
		switch {
		case c.heldPhase == "-" && ok:
			t.Errorf("%s: logits.output present, want none", c.loss)
		case c.heldPhase != "-" && (!ok || lo.Phase != c.heldPhase):
			t.Errorf("%s free %v: logits.output phase %q (present %v), want %q", c.loss, c.free, lo.Phase, ok, c.heldPhase)
		}
		if c.loss == model.FusedLoss {
			near("loss.grad_weight", got["loss.grad_weight"].Bytes, 2*V*H)
			if _, ok := got["head_gradient"]; ok {
				t.Errorf("fused: head_gradient present; the fused loss's grad_weight is it")
			}
		}
	}
}
