package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// The Llama variants (gemma, qwen3, qwen3_moe, phi3, olmo2): what their
// transformers 5.24 classes save beyond or instead of LlamaDecoderLayer's,
// each rule from the model.Layer flag or op named, measured on the CPU
// (torch 2.11 saved_tensors_hooks, scenarios/family_truth_famA_test.go:
// fp32, bf16 autocast and pure bf16, eager and sdpa, with and without
// full checkpointing). Per layer, with a the matmul dtype and r the
// residual dtype:
//
//	NormWeightFP32 (gemma, olmo2)  each RMSNorm multiplies by its weight
//	    in fp32 before the cast back, so where llama keeps the 16-bit
//	    normalized x (ln.normed16, pure bf16) these keep it in fp32
//	    (ln.normed_fp32, 4 bytes); in fp32 and under autocast it is
//	    ln.fp32's storage, as in llama (models/gemma/modeling_gemma.py
//	    GemmaRMSNorm, models/olmo2/modeling_olmo2.py Olmo2RMSNorm)
//	NormPlusOne (gemma)            1 + weight.float(), 4*H bytes per norm
//	    (ln.weight_plus_one, lnf.weight_plus_one)
//	EmbedScale (gemma)             the embeddings times a buffer: nothing
//	RopeFP32 (olmo2)               cos and sin kept in fp32 (rope.cos_sin
//	    4 bytes), the rotated q and k cast back to q's dtype
//	OpQKNorm (qwen3, qwen3_moe,    q_norm and k_norm on the projections'
//	    olmo2)                     outputs: their fp32 input (4), rsqrt (4
//	    per head and token with Arch.QKNorm head, per token with full)
//	    and normalized output, in a (llama's RMSNorm: .to(dtype) before
//	    the weight) or fp32 (NormWeightFP32) (attn.qk_norm_in,
//	    attn.qk_norm_stats, attn.qk_norm_out); rotary then reads the
//	    normed q and k, so nothing else changes
//	FusedQKVProj (phi3)            one autocast copy of the norm's output
//	    for qkv_proj instead of three; under sdpa, v is a slice of the
//	    qkv_proj output, which SDPA keeps whole (attn.qkv_out,
//	    a*B*S*(h+2*kv)*d, for attn.v), and q after rotary is laid out
//	    (B, h, S, d), so the merge of the heads copies SDPA's output and
//	    both are kept (attn.sdpa_out beside attn.proj_in)
//	FusedGateUp (phi3)             one autocast copy for gate_up_proj
//	    instead of two; gate and up are chunks of one output whose
//	    storage the activation and the product keep, 3*B*S*F as llama's
//	ResidDropout (phi3)            with dropout, the masks of
//	    resid_attn_dropout and resid_mlp_dropout, 2*B*S*H in a
//	    (dropout.resid_mask); with RopeFP32 the attention's dropout mask
//	    is in a, not r, as q is cast back (dropout.attn_mask)
//
// Under full checkpointing only the final norm's terms stay. Under LoRA
// (PEFT, measured) the frozen norms keep neither their normalized x
// (ln.normed_fp32, attn.qk_norm_out) nor anything else only the weight's
// gradient needs; gemma's 1 + weight stays, the product's other side
// needing it. memval's own attention (attn_impl hand) under flash or
// checkpointing on these layers is derived, not measured.
type variantShape struct {
	normFP32W, plusOne, ropeFP32 bool
	fusedQKV, fusedGateUp        bool
	residDropout                 bool
	qkNorm                       string // model.QKNormHead or QKNormFull with OpQKNorm, else ""
}

// initLlamaVariant sets s.vr from the family's layer and a's q/k norms.
func (s *actShape) initLlamaVariant(a *model.Arch, l *model.Layer) {
	s.vr = variantShape{}
	if l == nil {
		return
	}
	s.vr = variantShape{normFP32W: l.NormWeightFP32, plusOne: l.NormPlusOne, ropeFP32: l.RopeFP32,
		fusedQKV: l.FusedQKVProj, fusedGateUp: l.FusedGateUp, residDropout: l.ResidDropout}
	if l.HasOp(model.OpQKNorm) {
		s.vr.qkNorm = a.QKNorm
	}
}

// variant reports whether the layer is one of the variants.
func (v *variantShape) variant() bool {
	return v.normFP32W || v.plusOne || v.ropeFP32 || v.fusedQKV || v.fusedGateUp || v.residDropout || v.qkNorm != ""
}

// variantNote marks what the truth tests did not measure on the variants
// derived: memval's own attention (attn_impl hand, which train.py does not
// build for them) where it differs from transformers' eager, under flash
// attention or checkpointing.
func (s *actShape) variantNote(w *model.Workload) {
	hand := !s.hf() && (s.flash || s.ckpt != model.NoCheckpointing)
	if s.vr.variant() && hand {
		s.note = noteDerived
	}
}

// normedTerm adds, for a 16-bit residual stream, the normalized x that n
// RMSNorms keep for their weight: 16-bit (llama) or fp32
// (NormWeightFP32). prefix is "ln" or "lnf".
func (s *actShape) normedTerm(b *actBuilder, prefix string, feature float64, unit string) {
	if s.r == 4 {
		return // the fp32 x*rsqrt, counted as prefix.fp32
	}
	if s.vr.normFP32W {
		b.add(prefix+".normed_fp32", GroupActivations, feature, unit, 4)
		return
	}
	b.add(prefix+".normed16", GroupActivations, feature, unit, s.r)
}

// normPlusOneTerm adds Gemma's 1 + weight of n norms of width H.
func (s *actShape) normPlusOneTerm(b *actBuilder, prefix string, n float64, unit string) {
	if s.vr.plusOne {
		b.add(prefix+".weight_plus_one", GroupActivations, n*s.H, unit, 4)
	}
}

// normCopies is the autocast copies of the two norms' outputs the linear
// layers of a dense layer make: q, k, v and gate, up (5), one for each
// fused projection.
func (s *actShape) normCopies() float64 {
	n := 5.0
	if s.vr.fusedQKV {
		n -= 2
	}
	if s.vr.fusedGateUp {
		n--
	}
	return n
}

// ropeBytes is the bytes per element of rotary's saved cos and sin.
func (s *actShape) ropeBytes() float64 {
	if s.vr.ropeFP32 {
		return 4
	}
	return s.r
}

// qkNormTerms adds the q and k norms' saved tensors, L layers.
func (s *actShape) qkNormTerms(b *actBuilder) {
	if s.vr.qkNorm == "" {
		return
	}
	BS, L := s.B*s.S, s.L
	n := (s.h + s.kv) * s.hd // q and k widths
	b.add("attn.qk_norm_in", GroupActivations, BS*n*L, "B*S*(h+kv)*d*L", 4)
	rows, unit := 2.0, "2*B*S*L" // one rsqrt per token for each of q and k
	if s.vr.qkNorm == model.QKNormHead {
		rows, unit = s.h+s.kv, "B*S*(h+kv)*L"
	}
	b.add("attn.qk_norm_stats", GroupActivations, BS*rows*L, unit, 4)
	out := s.a
	if s.vr.normFP32W {
		out = 4
	}
	b.add("attn.qk_norm_out", GroupActivations, BS*n*L, "B*S*(h+kv)*d*L", out)
}

// sdpaV adds what SDPA keeps of v: v itself (attn.v), or with
// FusedQKVProj the whole qkv_proj output it slices.
func (s *actShape) sdpaV(b *actBuilder, BSk float64, vUnit string) {
	if !s.vr.fusedQKV {
		b.add("attn.v", GroupActivations, BSk, vUnit, s.a)
		return
	}
	b.add("attn.qkv_out", GroupActivations, s.B*s.S*(s.h+2*s.kv)*s.hd*s.L, "B*S*(h+2*kv)*d*L", s.a)
}

// sdpaOutCopy reports whether SDPA's output is a storage of its own
// beside the output projection's input (see sdpaOut).
func (s *actShape) sdpaOutCopy() bool { return s.cuda || s.vr.fusedQKV && s.flash }

// queryBytes is the bytes per element of q as the attention core reads
// it: promoted by cos and sin to the residual stream's dtype (llama), or
// cast back to the projection's (RopeFP32). The eager attention's dropout
// mask has that dtype on the CPU (softmax(...).to(query.dtype)).
func (s *actShape) queryBytes() float64 {
	if s.vr.ropeFP32 {
		return s.a
	}
	return s.r
}

// residDropoutTerm adds ResidDropout's masks: two a layer, in the dtype
// of the attention's and the MLP's outputs (a) on the CPU.
func (s *actShape) residDropoutTerm(b *actBuilder) {
	if s.vr.residDropout && s.dropout {
		b.add("dropout.resid_mask", GroupActivations, 2*s.B*s.S*s.H*s.L, "2*B*S*H*L", s.maskBytes(s.a))
	}
}

// variantUnit names n copies of B*S*H*L.
func variantUnit(n float64) string { return fmt.Sprintf("%g*B*S*H*L", n) }
