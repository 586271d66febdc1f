package analytic

import "github.com/memval/memval/analytic/model"

// The attention implementations (model.AttnImpl): what transformers'
// modeling code saves where it differs from memval's hand-built program
// (measured, torch 2.11 CPU, transformers 5.24; scenarios/truth_test.go).
//
//	impl, family          difference from the hand-built program
//	eager, GPT-2          attn.scale: none (scaled by a Python float);
//	                      attn.scores: fp32 under autocast (the fp32
//	                      additive mask promotes them), attn.probs its
//	                      16-bit copy (models/gpt2/modeling_gpt2.py)
//	sdpa, flash-attn-2,   k and v not repeated to every head: attn.qk and
//	Llama-style GQA       attn.v count the kv heads (use_gqa_in_sdpa;
//	                      integrations/flash_attention.py)
//	full checkpointing    activation_checkpointing_enable (re-entrant and,
//	(or layers:N)         for dense layers, non-reentrant save the same; a
//	                      MoE router aux loss under non-reentrant is not
//	                      modelled): under eager, GPT-2's
//	(transformers)        layers get the B x 1 x S x S float mask as an
//	                      argument, saved once (ckpt.mask, residual dtype;
//	                      sdpa passes no mask); Llama's layers get rotary
//	                      cos/sin as keyword arguments, not saved (no
//	                      rope.cos_sin)
//
// eager Llama saves what the hand-built program does.

// hf reports whether the layers are transformers' modeling code.
func (s *actShape) hf() bool { return s.impl.Transformers() }

// applyAttnImpl adjusts the dtypes of s for its attention implementation
// (initDefaulted's hook, after the precision's dtypes).
func (s *actShape) applyAttnImpl() {
	if s.hf() && s.impl == model.EagerAttn && !s.llama && s.autocast {
		s.score = 4 // scores + fp32 mask: softmax in and out fp32
	}
}

// scaleTensor reports whether eager attention divides by a 0-dim tensor
// (the hand-built GPT-2's torch.full scale); transformers scales by a
// Python float.
func (s *actShape) scaleTensor() bool { return !s.hf() }

// gqaHeads is the heads k and v keep in SDPA or flash attention: the kv
// heads under transformers' sdpa and flash-attention-2, every query head
// (repeat_kv) in the hand-built program.
func (s *actShape) gqaHeads() float64 {
	if s.hf() && s.impl != model.EagerAttn {
		return s.kv
	}
	return s.h
}

// savesRope reports whether rope.cos_sin is saved: not under transformers'
// full checkpointing, whose layers take cos and sin as keyword arguments.
func (s *actShape) savesRope() bool {
	return !(s.hf() && s.allCheckpointed())
}

// allCheckpointed reports whether every layer is checkpointed whole (full,
// or layers:N checkpointing all L).
func (s *actShape) allCheckpointed() bool {
	return s.ckpt == model.FullCheckpointing || s.ckptEvery > 0 && s.checkpointedLayers() >= s.L
}

// ckptMask adds the float mask transformers' eager GPT-2 passes to each
// checkpointed layer (saved once, B x 1 x S x S in the residual dtype).
func (s *actShape) ckptMask(b *actBuilder) {
	if s.impl == model.EagerAttn && !s.llama && (s.ckpt == model.FullCheckpointing || s.checkpointedLayers() > 0) {
		b.add("ckpt.mask", GroupActivations, s.B*s.S*s.S, "B*S*S", s.r)
	}
}
