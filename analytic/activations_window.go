package analytic

import "github.com/memval/memval/analytic/model"

// llamaVariant is what a family on the Llama program (actShape.llama)
// saves besides or instead of LlamaDecoderLayer's tensors: Gemma 2 and 3
// (transformers/models/gemma2/modeling_gemma2.py,
// models/gemma3/modeling_gemma3.py) and Starcoder2
// (models/starcoder2/modeling_starcoder2.py), measured on torch 2.11's CPU
// with transformers 5.24 (scenarios/family_truth_famB_test.go):
//
//	Gemma RMSNorm (four a layer and the final one), each: its input in
//	  fp32 (the residual itself, else x.float()'s copy), x*rsqrt in fp32
//	  (the product with 1 + weight keeps it, in every precision), rsqrt
//	  (4*B*S) and the fp32 1 + weight (4*H, not a parameter);
//	gemma3's q_norm and k_norm likewise per head over head_dim;
//	attention soft-capping (gemma2; Gemma3Attention does not pass it on):
//	  tanh's output, B*h*S*S in the scores' dtype, per layer (eager; sdpa
//	  refuses a soft-cap);
//	final logit soft-capping: tanh's output, B*S*V in the logits' dtype;
//	the embeddings' sqrt(hidden) scale is a buffer: nothing;
//	gemma3's local and global rotary tables: one cos/sin pair per kind
//	  of layer the model has;
//	Starcoder2: torch layer_norm (input, mean, rstd), a c_fc/act/c_proj
//	  MLP (act's input and c_proj's input), biases (addmm saves no more),
//	  dropout after the embeddings (mask in the residual's dtype) and after
//	  o_proj and c_proj (in the matmuls' dtype);
//	sliding-window attention: eager adds its float mask to the scores,
//	  which saves nothing; sdpa (transformers' sdpa_mask) materializes a
//	  boolean B x 1 x S x S mask for the local layers once S reaches the
//	  window, which torch's CPU flash kernel converts to the query's dtype
//	  and saves per layer (attn.window_mask), and with a mask k and v are
//	  expanded to every query head (use_gqa_in_sdpa wants no mask).
type llamaVariant struct {
	plusOne   bool    // Gemma RMSNorm (Layer.NormPlusOne)
	layerNorm bool    // torch layer_norm instead of the fp32 RMSNorm (Layer.FP32Norm false)
	norms     float64 // norms per layer (the layer's OpNorm ops)
	plainMLP  bool    // c_fc, act, c_proj (Arch.GatedMLP false)
	qkNorm    bool    // per-head q and k norms (Arch.QKNorm head)
	dropout   bool    // embedding and residual dropout (Layer.Dropout, with workload dropout)
	attnCap   bool    // attention scores soft-capped (Arch.AttnSoftcap)
	logitCap  bool    // logits soft-capped (Arch.LogitSoftcap)
	// unmeasured: memval's hand-built program (workload attn_impl hand),
	// which train.py refuses to build for Gemma's norms and for windows,
	// with terms that torch did not check (flash attention, full
	// checkpointing); transformers' eager runs the same terms as hand math.
	unmeasured bool
	// masked is the fraction of the layers whose sdpa gets the window mask;
	// ropePairs the cos/sin pairs saved (2 with local and global layers
	// under gemma3's two rotary embeddings).
	masked, ropePairs float64
}

// initVariant sets s.variant for a family whose layer differs from
// Llama's (nil for the others) and corrects linearWeights for a plain MLP.
// Gemma2's class has no sdpa attention (Gemma2PreTrainedModel's
// _supports_sdpa is False, as sdpa cannot soft-cap): attn_impl sdpa is a
// *model.FieldError.
func (s *actShape) initVariant(a *model.Arch, fam *model.Family) error {
	s.variant = nil
	// Gemma (1)'s two-norm layer is activations_variants.go's: this
	// program is Gemma 2's and 3's four-norm layer and starcoder2's.
	if !s.llama || fam == nil || fam.Layer.FP32Norm && (!fam.Layer.NormPlusOne || fam.Layer.NormCount() < 4) {
		return nil
	}
	ly := fam.Layer
	if ly.AttnSoftcap && s.impl == model.SDPAAttn {
		return &model.FieldError{Field: "attn_impl", Value: string(s.impl),
			Reason: "transformers' " + a.Family + " class has no sdpa attention (it soft-caps the scores); use eager or flash-attention-2"}
	}
	v := &llamaVariant{plusOne: ly.NormPlusOne, layerNorm: !ly.FP32Norm, norms: float64(ly.NormCount()),
		plainMLP: !a.GatedMLP, qkNorm: a.QKNorm == model.QKNormHead, dropout: ly.Dropout && s.dropout, ropePairs: 1}
	v.attnCap = ly.AttnSoftcap && a.AttnSoftcap > 0
	v.logitCap = ly.Softcap && a.LogitSoftcap > 0
	local := float64(a.LocalLayers())
	if local > 0 && s.S >= float64(a.SlidingWindow) {
		v.masked = local / s.L
	}
	if v.qkNorm && local > 0 && local < s.L { // gemma3: one rotary table per layer type
		v.ropePairs = 2
	}
	if v.plainMLP && s.moe == nil {
		s.linearWeights -= s.H * s.F // initDefaulted counted a gate
	}
	v.unmeasured = !s.hf() && (ly.NormPlusOne || a.SlidingWindow > 0) && (s.flash || s.ckpt != model.NoCheckpointing)
	s.variant = v
	return nil
}

// variantNorms adds the layer's norms and the copies its linear layers
// keep of their outputs (llamaLayer's hook).
func (s *actShape) variantNorms(b *actBuilder, BSH float64) {
	v := s.variant
	BS := s.B * s.S * s.L
	if v.layerNorm {
		b.add("ln.in", GroupActivations, v.norms*BSH, "2*B*S*H*L", s.r)
		b.add("ln.stats", GroupActivations, 2*v.norms*BS, "4*B*S*L", s.stat)
	} else {
		b.add("ln.in", GroupActivations, v.norms*BSH, "4*B*S*H*L", 4)         // the input or x.float()
		b.add("ln.normed", GroupActivations, v.norms*BSH, "4*B*S*H*L", 4)     // x*rsqrt
		b.add("ln.stats", GroupActivations, v.norms*BS, "4*B*S*L", 4)         // rsqrt
		b.add("ln.one_plus_w", GroupActivations, v.norms*s.H*s.L, "4*H*L", 4) // 1 + weight.float()
	}
	// The outputs the q, k, v and the MLP's first projections read: one
	// storage each in fp32 or pure bf16, one autocast copy per linear.
	copies := 5.0
	if v.plainMLP {
		copies = 4
	}
	if s.autocast {
		b.add("ln.out_copies", GroupActivations, copies*BSH, "(3+mlp)*B*S*H*L", 2)
	} else {
		b.add("ln.out", GroupActivations, 2*BSH, "2*B*S*H*L", s.a)
	}
	if v.dropout { // after o_proj and after c_proj, in their output dtype
		b.add("dropout.resid_mask", GroupActivations, 2*BSH, "2*B*S*H*L", s.maskBytes(s.a))
	}
	if v.qkNorm {
		BSqk := s.B * s.S * (s.h + s.kv) * s.hd * s.L
		b.add("attn.qk_norm", GroupActivations, 2*BSqk, "2*B*S*(h+kv)*d*L", 4)
		b.add("attn.qk_norm_stats", GroupActivations, s.B*s.S*(s.h+s.kv)*s.L, "B*S*(h+kv)*L", 4)
		b.add("attn.qk_norm_w", GroupActivations, 2*s.hd*s.L, "2*d*L", 4)
	}
}

// variantEmbed adds the embedding dropout's mask (llamaTerms' hook).
func (s *actShape) variantEmbed(b *actBuilder) {
	if s.variant != nil && s.variant.dropout {
		b.add("dropout.embed_mask", GroupActivations, s.B*s.S*s.H, "B*S*H", s.maskBytes(s.r))
	}
}

// kvSaved is the elements of k (or v) SDPA keeps over the layers, given
// BSq = B*S*h*d*L: its kv heads (or every head, gqaHeads) and, in the
// layers with a window mask, every query head.
func (s *actShape) kvSaved(BSq float64) float64 {
	g := s.gqaHeads()
	if v := s.variant; v != nil && v.masked > 0 && s.hf() {
		return BSq / s.h * (g*(1-v.masked) + s.h*v.masked)
	}
	return BSq * g / s.h
}

// variantAttn adds the attention tensors of the variant: the window mask
// (sdpa) or the scores' soft-cap (eager).
func (s *actShape) variantAttn(b *actBuilder, sdpa bool) {
	v := s.variant
	if v == nil {
		return
	}
	if sdpa && v.masked > 0 && s.hf() {
		b.add("attn.window_mask", GroupActivations, v.masked*s.B*s.S*s.S*s.L, "B*S*S*local", s.a)
	}
	if !sdpa && v.attnCap {
		b.add("attn.softcap", GroupActivations, s.B*s.h*s.S*s.S*s.L, "B*h*S*S*L", s.a)
	}
}

// variantMLP adds a plain MLP's tensors (act's input, c_proj's input);
// false for a gated MLP, which llamaLayer adds.
func (s *actShape) variantMLP(b *actBuilder, BSF float64) bool {
	if s.variant == nil || !s.variant.plainMLP {
		return false
	}
	if s.actSaves {
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.a)
	}
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	return true
}

// variantFinalNorm adds the final norm of the variant (headTerms' hook).
func (s *actShape) variantFinalNorm(b *actBuilder) {
	BS := s.B * s.S
	if s.variant.layerNorm {
		b.add("lnf.in", GroupActivations, BS*s.H, "B*S*H", s.r)
		b.add("lnf.stats", GroupActivations, 2*BS, "2*B*S", s.stat)
		return
	}
	b.add("lnf.in", GroupActivations, BS*s.H, "B*S*H", 4)
	b.add("lnf.normed", GroupActivations, BS*s.H, "B*S*H", 4)
	b.add("lnf.stats", GroupActivations, BS, "B*S", 4)
	b.add("lnf.one_plus_w", GroupActivations, s.H, "H", 4)
}

// variantLogitCap adds the logits' soft-cap (tanh's output).
func (s *actShape) variantLogitCap(b *actBuilder) {
	if s.variant != nil && s.variant.logitCap {
		b.add("head.softcap", GroupLogits, s.B*s.S*s.V, "B*S*V", s.a)
	}
}
