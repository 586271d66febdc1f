package analytic

import "github.com/memval/memval/analytic/model"

// The ALiBi and multi-query families' own programs: BLOOM (BloomForCausalLM,
// transformers/models/bloom/modeling_bloom.py) and Falcon
// (FalconForCausalLM, transformers/models/falcon/modeling_falcon.py) as
// transformers 5.24 runs them, measured on torch 2.11's CPU
// (scenarios/family_truth_famD_test.go: fp32, bf16 autocast, pure bf16,
// with and without full checkpointing, dropout, eager and sdpa). With r the
// residual dtype, a the matmul dtype, s the norm statistics' dtype:
//
// BLOOM (eager only: the class has no sdpa):
//
//	embed_ln.in, .stats  r*B*S*H, s*2*B*S   word_embeddings_layernorm
//	ln.in, ln.stats      r*2*B*S*H, s*4*B*S per layer (two LayerNorms)
//	attn.qkv_in          a*B*S*H            query_key_value's input
//	attn.qk              a*2*B*S*H          q and k^T as baddbmm keeps them (copies of the fused output)
//	attn.scores          4*B*h*S*S          softmax(dtype=float32): the alibi bias is baddbmm's input, not saved
//	attn.probs           a*B*h*S*S          its cast to the q dtype, with dropout or when a is not 4
//	dropout.attn_mask    a*B*h*S*S          with dropout
//	attn.v, attn.proj_in a*B*S*H each
//	dropout.resid_mask   a*2*B*S*H          with dropout (dropout_add after attention and MLP)
//	mlp.fc_in, mlp.act   a*B*S*H, a*B*S*F   bloom's GeLU is an autograd Function that saves its input
//	mlp.proj_in          a*B*S*F
//
// Falcon, per layer (kv the k/v heads; the MLP's norm is the attention's
// with one norm in parallel):
//
//	ln.in, ln.stats      r*B*S*H per distinct norm input (one in parallel, two in sequence), s*2*B*S per norm
//	attn.qkv_in, mlp.fc_in a*B*S*H each (one shared storage with one parallel norm outside autocast)
//	attn.split_index     8*2                the [-2] and [-1] index tensors of the multi-query and new-architecture splits
//	eager:  q a*B*S*H, k^T a*B*S*H (k and v are expanded to every head: MQA saves no less), softmax in the
//	        hidden states' dtype r*B*h*S*S, its 16-bit copy a*B*h*S*S under autocast, v a*B*S*H; with ALiBi
//	        and dropout, the attention dropout mask r*B*h*S*S and the dropped probabilities
//	sdpa:   multi-query (one k/v head) and ALiBi with dropout fall back to SDPA's math path, in fp32 whatever
//	        the inputs: q, k, v 4*B*S*H each, the probabilities 4*B*h*S*S (with dropout also its mask and the
//	        dropped ones, 4*B*h*S*S each); otherwise the CPU flash kernel: q, k (every head),
//	        v (every head; without new_decoder_architecture a view of the fused output, a*B*S*(h+2kv)*d,
//	        which with ALiBi holds q and k too; copies where autocast casts them), logsumexp 4*B*h*S,
//	        and the mask: the causal mask made a*B*S*S per layer, or the ALiBi bias (B*h*S*S) once
//	        in r, or per layer in a under autocast
//	attn.proj_in, mlp.act, mlp.proj_in as for BLOOM (GELU saves its input)
//	dropout.resid_mask   a*B*S*H per dropout_add (one in parallel, two in sequence)
//
// With Falcon's bias under autocast, FalconLinear adds the fp32 bias to
// the 16-bit matmul, so its outputs are fp32: mlp.act and the residual
// dropout masks take 4 bytes, and SDPA keeps 16-bit casts of q, k and v.
//
// and once rotary's cos and sin (rope.cos_sin, 2*r*S*d; not under full
// checkpointing, whose layers take them as keyword arguments). Neither
// family has an embedding dropout; the final norm, LM head and loss are
// headTerms'. Full checkpointing keeps each layer's input only (the mask
// and ALiBi tensor are keyword arguments too).
type ownLayer struct {
	name     string  // model.BloomLayerName or model.FalconLayerName
	alibi    bool    // ALiBi biases (no rotary tables)
	parallel bool    // attention and MLP read the same hidden states (Falcon's parallel_attn)
	norms    float64 // norms per layer
	newArch  bool    // Falcon's new_decoder_architecture
	mqa      bool    // Falcon's multi_query: one k/v head, not expanded before SDPA
	bias     bool    // Falcon's bias: FalconLinear adds it after the matmul, so under autocast its outputs are fp32
}

// initOwn sets s.own for a family with its own program (nil for the others).
func (s *actShape) initOwn(a *model.Arch, fam *model.Family) {
	s.own = nil
	if fam == nil || fam.Layer.Name != model.BloomLayerName && fam.Layer.Name != model.FalconLayerName {
		return
	}
	o := &ownLayer{name: fam.Layer.Name, alibi: a.Alibi || fam.Positions == model.AlibiPositions,
		parallel: a.ParallelBlock, norms: float64(max(1, a.NormsPerLayer))}
	if o.name == model.FalconLayerName {
		o.newArch, o.mqa = model.FalconLayout(*a)
		o.bias = a.QKVBias || a.MLPBias
	}
	s.own = o
	// not measured: selective checkpointing (transformers has none), CUDA
	// (set in initDefaulted), LoRA, task heads, and gelu_new (written out,
	// it saves more than its input)
	if s.ckpt == model.SelectiveCheckpointing || s.lora != nil || s.head != nil || s.gelunew {
		s.note = noteDerived
	}
}

// ownSDPA reports whether the attention runs torch's SDPA: Falcon under
// transformers' sdpa, or flash attention asked of memval's own path.
// BLOOM has no sdpa.
func (s *actShape) ownSDPA() bool {
	if s.own.name != model.FalconLayerName {
		return false
	}
	return s.impl == model.SDPAAttn || !s.hf() && s.flash
}

// ownMathSDPA reports whether Falcon's SDPA call falls back to torch's
// math path (measured: on the CPU it then computes in fp32 whatever the
// inputs' dtype): one k/v head that is not expanded (multi_query), or
// attention dropout (the ALiBi branch passes it; the rotary one passes 0).
func (s *actShape) ownMathSDPA() bool {
	return s.ownSDPA() && (s.own.mqa || s.own.alibi && s.dropout)
}

// ownTerms is the whole model of s.own: embeddings, L layers, final norm,
// head and loss (savedTerms for BLOOM and Falcon).
func (s *actShape) ownTerms(b *actBuilder) {
	BS := s.B * s.S
	b.addIDs(s)
	if s.own.name == model.BloomLayerName {
		b.add("embed_ln.in", GroupActivations, BS*s.H, "B*S*H", s.r)
		b.add("embed_ln.stats", GroupActivations, 2*BS, "2*B*S", s.stat)
	}
	if !s.own.alibi && !s.allCheckpointed() {
		b.add("rope.cos_sin", GroupActivations, 2*s.S*s.hd, "2*S*d", s.r)
	}
	s.layerTerms(b)
	if !s.allCheckpointed() {
		s.ownMaskOnce(b)
	}
	s.headTerms(b, false)
}

// ownLayerTerms is one layer of s.own times L (layerTerms' hook).
func (s *actShape) ownLayerTerms(b *actBuilder) {
	o, L := s.own, s.L
	BSH := s.B * s.S * s.H * L
	BSq := s.B * s.S * s.h * s.hd * L
	BSF := s.B * s.S * s.F * L
	if o.name == model.BloomLayerName {
		s.bloomLayerTerms(b, BSH, BSq)
	} else {
		s.falconLayerTerms(b, BSH, BSq)
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	b.add("mlp.fc_in", GroupActivations, s.fcIns()*BSH, "B*S*H*L", s.a)
	if s.actSaves {
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.linOut())
	}
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	if s.dropout {
		n := 2.0 // dropout_add after the attention and after the MLP
		if o.name == model.FalconLayerName && o.parallel {
			n = 1 // one dropout_add of the summed outputs
		}
		b.add("dropout.resid_mask", GroupActivations, n*BSH, "B*S*H*L per dropout", s.maskBytes(s.linOut()))
	}
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*L, "linear params", 2)
	}
}

// fcIns is how many storages the MLP's input adds: none where it is the
// attention's (one Falcon norm in parallel, outside autocast, whose casts
// are per linear layer).
func (s *actShape) fcIns() float64 {
	o := s.own
	if o.name == model.FalconLayerName && o.parallel && o.norms == 1 && !s.autocast {
		return 0
	}
	return 1
}

// bloomLayerTerms adds BLOOM's norms and attention.
func (s *actShape) bloomLayerTerms(b *actBuilder, BSH, BSq float64) {
	BhSS := s.B * s.h * s.S * s.S * s.L
	b.add("ln.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.r)
	b.add("ln.stats", GroupActivations, 4*s.B*s.S*s.L, "4*B*S*L", s.stat)
	b.add("attn.qkv_in", GroupActivations, BSH, "B*S*H*L", s.a)
	b.add("attn.qk", GroupActivations, 2*BSq, "2*B*S*h*d*L", s.a)
	b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4)
	if s.dropout || s.a != 4 {
		b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
	}
	if s.dropout {
		b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(s.a))
	}
	b.add("attn.v", GroupActivations, BSq, "B*S*h*d*L", s.a)
}

// falconLayerTerms adds Falcon's norms, query_key_value's input and the
// attention up to the merge of the heads.
func (s *actShape) falconLayerTerms(b *actBuilder, BSH, BSq float64) {
	o, L := s.own, s.L
	BhSS := s.B * s.h * s.S * s.S * L
	inputs := 2.0 // a norm before the attention and one after it
	if o.parallel {
		inputs = 1 // both norms (or the one) read the layer's input
	}
	b.add("ln.in", GroupActivations, inputs*BSH, "B*S*H*L per norm input", s.r)
	b.add("ln.stats", GroupActivations, 2*o.norms*s.B*s.S*L, "2*B*S*L per norm", s.stat)
	b.add("attn.qkv_in", GroupActivations, BSH, "B*S*H*L", s.a)
	if o.newArch || o.mqa {
		b.add("attn.split_index", GroupActivations, 2*L, "2*L", 8)
	}
	switch {
	case !s.ownSDPA():
		b.add("attn.qk", GroupActivations, 2*BSq, "2*B*S*h*d*L", s.a)  // q and k^T, k expanded to every head
		b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", s.r) // softmax in the hidden states' dtype
		drop := o.alibi && s.dropout                                   // only the ALiBi branch has attention dropout
		if drop {
			b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(s.r))
		}
		if drop || s.a != s.r {
			b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
		}
		b.add("attn.v", GroupActivations, BSq, "B*S*h*d*L", s.a)
	case s.ownMathSDPA():
		// SDPA's math fallback, computed in fp32 on the CPU
		b.add("attn.qk", GroupActivations, 2*BSq, "2*B*S*h*d*L", 4)
		b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4)
		if s.dropout && o.alibi {
			b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", 4)
			b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", 4)
		}
		b.add("attn.v", GroupActivations, BSq, "B*S*h*d*L", 4)
	case o.newArch || s.linOut() != s.a:
		// q, k and v copied (flattened heads, broadcast k/v heads, rotary)
		// or cast by autocast
		b.add("attn.qkv_copies", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
	default:
		// v (and without rotary q and k) views of the fused output
		if !o.alibi {
			b.add("attn.qk", GroupActivations, 2*BSq, "2*B*S*h*d*L", s.a)
		}
		b.add("attn.qkv", GroupActivations, BSq+2*s.B*s.S*s.kv*s.hd*L, "B*S*(h+2kv)*d*L", s.a)
	}
	if s.ownSDPA() && !s.ownMathSDPA() {
		b.add("attn.lse", GroupActivations, s.B*s.h*s.S*L, "B*h*S*L", 4)
		switch {
		case !o.alibi:
			b.add("attn.mask", GroupActivations, s.B*s.S*s.S*L, "B*S*S*L", s.a) // the boolean causal mask made float
		case s.a != s.r:
			b.add("attn.mask", GroupActivations, BhSS, "B*h*S*S*L", s.a)
		}
	}
}

// linOut is the dtype of a Falcon linear layer's output: fp32 under
// autocast when FalconLinear adds its fp32 bias to the 16-bit matmul.
func (s *actShape) linOut() float64 {
	if s.own.bias && s.autocast {
		return 4
	}
	return s.a
}

// ownMaskOnce adds the ALiBi mask Falcon's sdpa keeps once for all layers
// (its own dtype is the matmul's).
func (s *actShape) ownMaskOnce(b *actBuilder) {
	o := s.own
	if o.name == model.FalconLayerName && o.alibi && s.ownSDPA() && !s.ownMathSDPA() && s.a == s.r {
		b.add("attn.alibi_mask", GroupActivations, s.B*s.h*s.S*s.S, "B*h*S*S", s.r)
	}
}
