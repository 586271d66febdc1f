package analytic

import "github.com/memval/memval/analytic/model"

// The GPT-style families whose transformers classes memval writes out for
// the breakdown only (model.Layer.HFOnly: gpt_neox, opt, phi, gpt_neo,
// gptj; analytic/model/family_gptstyle.go). Measured on the transformers
// 5.24 classes, torch 2.11 CPU, without dropout
// (scenarios/family_truth_famC_test.go); with r the residual dtype, a the
// matmul dtype, per layer:
//
//	ln.in          r*B*S*H once per norm input: one with a parallel block
//	               (phi and gptj's single norm; neox's use_parallel_residual,
//	               whose two norms read the layer's input), else two
//	ln.stats       mean and rstd of each norm
//	ln.out         a*B*S*H per norm output; under autocast one 16-bit copy
//	               per linear layer reading it instead (ln.out_copies: the
//	               fused or the three q, k, v, and the MLP's first)
//	rope.repeat    gptj: sin and cos repeated for q and for k, 4*r*S*rd
//	attn (eager)   q and k (fp32 where the class upcasts them and autocast
//	               does not cast back: gpt_neo, gptj), v (with grouped-query
//	               attention, k and v repeated to every head), fp32 softmax
//	               output and its a copy where a is 16-bit (the files'
//	               softmax(dtype=float32) or upcast scores)
//	attn (sdpa)    q, k, v (k and v of the kv heads; neox: v's storage is
//	               the whole fused output, v being its view),
//	               fp32 logsumexp and, where rotary concatenates (neox, phi),
//	               SDPA's own output before the merge of the heads
//	attn.proj_in, mlp.fc_in (in ln.out), the activation (gelu: its input;
//	gelu_new written out: four tensors; relu: none beyond fc2's input),
//	mlp.proj_in, and autocast's weight copies
//
// and once: the ids, learned positions (8*S; OPT's B x S ids 8*B*S),
// rotary cos and sin (2*r*S*rd; neox, phi), OPT's project_in input and
// project_out output, the final norm, head and loss as GPT-2's. Under
// transformers' full checkpointing only the layers' inputs stay: no mask
// and no cos/sin (keyword arguments).
//
// With dropout (masks in their input's dtype on the CPU): the embeddings'
// (but OPT's), the two residual ones per layer, and in eager attention
// the mask on the probabilities, whose dtype is q's after the classes'
// .to(q.dtype) (fp32 under autocast where rotary promoted q: neox, phi),
// and the dropped probabilities matmul keeps. SDPA with dropout runs
// torch's math path, which on the CPU keeps fp32 q, k, v copies, the fp32
// softmax output, mask and dropped probabilities, and no output of its
// own (measured). Selective checkpointing, GQA under SDPA's math path,
// LoRA, task heads and the CUDA backend on these layers are derived, not
// measured.

// gptStyle is what the HFOnly program needs beyond actShape.
type gptStyle struct {
	l                *model.Layer
	inputs, norms    float64 // norm inputs kept and norms per layer
	qkvLinears       float64 // linear layers reading the attention's norm (1 fused, 3 split)
	rot              float64 // rotary width per head (0: no rotary)
	proj             float64 // OPT's word_embed_proj_dim when it differs from H (0: none)
	positions, batch bool    // learned positions, looked up with B x S ids
	noFinalNorm      bool    // no norm after the last layer (OPT's post-norm do_layer_norm_before false)
}

// finalNorm reports whether the model has a norm after its last layer
// (headTerms' hook): every family but an HFOnly one without (OPT with
// do_layer_norm_before false, measured: its layers save what the pre-norm
// ones do, the final norm's input and statistics are gone).
func (s *actShape) finalNorm() bool { return s.gs == nil || !s.gs.noFinalNorm }

// initGPTStyle sets s.gs for a family whose layer is HFOnly: its layers
// are transformers' whatever the workload's attn_impl says, eager or (not
// for an EagerOnly class) sdpa.
func (s *actShape) initGPTStyle(a *model.Arch, w *model.Workload, fam *model.Family) {
	if fam == nil || !fam.Layer.HFOnly || s.moe != nil || s.own != nil { // bloom and falcon: activations_alibi_mqa.go
		return
	}
	l := fam.Layer
	g := &gptStyle{l: l, norms: float64(a.NormsPerLayer), qkvLinears: 1, positions: fam.Positions == model.LearnedPositions,
		batch: l.BatchPositions, noFinalNorm: !a.FinalNorm}
	if g.norms == 0 {
		g.norms = float64(fam.NormsPerLayer)
	}
	g.inputs = g.norms
	if a.ParallelBlock {
		g.inputs = 1
	}
	if l.SplitQKV {
		g.qkvLinears = 3
	}
	if l.HasOp(model.OpRotary) {
		g.rot = float64(model.RotaryDims(*a))
	}
	if a.EmbedProj > 0 && a.EmbedProj != a.Hidden {
		g.proj = float64(a.EmbedProj)
		s.headWeights = g.proj * s.V
	}
	s.gs = g
	if l.EagerOnly {
		s.flash = false
	}
	if !s.impl.Transformers() {
		s.impl = model.EagerAttn
		if w.Attention == model.FlashAttention && !l.EagerOnly {
			s.impl = model.SDPAAttn
		}
	}
	if s.kv != s.h && s.sdpaMath() || s.ckpt == model.SelectiveCheckpointing || s.lora != nil || s.head != nil ||
		l.EagerOnly && w.Attention == model.FlashAttention || s.impl == model.FlashAttention2 {
		s.note = noteDerived
	}
}

// gptStyleTerms is the model of an HFOnly family: embeddings, L layers,
// final norm, head and loss.
func (s *actShape) gptStyleTerms(b *actBuilder) {
	g := s.gs
	BS := s.B * s.S
	b.addIDs(s)
	if g.positions {
		if g.batch {
			b.add("embed.positions", GroupInput, BS, "B*S", 8)
		} else {
			b.add("embed.positions", GroupInput, s.S, "S", 8)
		}
	}
	if g.proj > 0 {
		b.add("embed.proj_in", GroupActivations, BS*g.proj, "B*S*P", s.a) // project_in's input
	}
	if s.dropout && !g.l.NoEmbedDropout {
		b.add("dropout.embed_mask", GroupActivations, BS*s.H, "B*S*H", s.maskBytes(s.r))
	}
	if g.rot > 0 && !g.l.RotaryPerLayer && !s.allCheckpointed() {
		b.add("rope.cos_sin", GroupActivations, 2*s.S*g.rot, "2*S*rd", s.r)
	}
	s.layerTerms(b)
	if g.proj > 0 {
		// project_out's output is the LM head's input (head.in below counts
		// project_out's input, B*S*H)
		b.add("head.proj_out", GroupActivations, BS*g.proj, "B*S*P", s.a)
		if s.autocast {
			b.add("autocast.proj_weight_copy", GroupActivations, 2*s.H*g.proj, "2*H*P", 2)
		}
	}
	s.headTerms(b, false)
}

// gptStyleLayer is one layer of an HFOnly family times L.
func (s *actShape) gptStyleLayer(b *actBuilder) {
	g, L := s.gs, s.L
	BSH := s.B * s.S * s.H * L
	BSq := s.B * s.S * s.h * s.hd * L
	BSF := s.B * s.S * s.F * L
	BhSS := s.B * s.h * s.S * s.S * L
	b.add("ln.in", GroupActivations, g.inputs*BSH, "N*B*S*H*L", s.r)
	b.add("ln.stats", GroupActivations, 2*g.norms*s.B*s.S*L, "2*N*B*S*L", s.stat)
	if s.autocast {
		b.add("ln.out_copies", GroupActivations, (g.qkvLinears+1)*BSH, "C*B*S*H*L", 2)
	} else {
		b.add("ln.out", GroupActivations, g.norms*BSH, "N*B*S*H*L", s.a)
	}
	if g.rot > 0 && g.l.RotaryPerLayer {
		b.add("rope.repeat", GroupActivations, 4*s.S*g.rot*L, "4*S*rd*L", s.r)
	}
	if s.flash {
		// k and v keep their kv heads (grouped-query phi; measured)
		BSk := BSq * s.kv / s.h
		b.add("attn.qk", GroupActivations, BSq+BSk, "B*S*(h+kv)*d*L", s.a)
		if g.l.ValueView {
			b.add("attn.v", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a) // the fused q, k, v output
		} else {
			b.add("attn.v", GroupActivations, BSk, "B*S*kv*d*L", s.a)
		}
		b.add("attn.lse", GroupActivations, s.B*s.h*s.S*L, "B*h*S*L", 4)
		if g.l.RotaryCat {
			b.add("attn.sdpa_out", GroupActivations, BSq, "B*S*h*d*L", s.a)
		}
	} else if s.sdpaMath() {
		b.add("attn.qkv_fp32", GroupActivations, 3*BSq, "3*B*S*h*d*L", 4)
		b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4)
		b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(4))
		b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", 4)
	} else {
		qk := s.a
		if g.l.QKFP32 && !s.autocast {
			qk = 4
		}
		b.add("attn.qk_copies", GroupActivations, 2*BSq, "2*B*S*h*d*L", qk)
		b.add("attn.v_copy", GroupActivations, BSq, "B*S*h*d*L", s.a)
		b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4)
		if s.a != 4 || s.dropout {
			b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
		}
		if s.dropout {
			qdt := s.a // the probabilities are cast to q's dtype before dropout
			if s.autocast && g.l.RotaryCat {
				qdt = 4 // q promoted to fp32 by rotary's fp32 cos and sin
			}
			b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(qdt))
		}
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	if s.dropout {
		b.add("dropout.resid_mask", GroupActivations, 2*BSH, "2*B*S*H*L", s.maskBytes(s.a))
	}
	switch {
	case s.gelunew:
		b.add("mlp.act", GroupActivations, 4*BSF, "4*B*S*F*L", s.a)
	case s.actSaves:
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.a)
	}
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*L, "linear params", 2)
	}
}

// sdpaMath reports whether an HFOnly family's sdpa attention runs torch's
// math path: with dropout on the CPU, which has no flash kernel for it.
func (s *actShape) sdpaMath() bool {
	return s.impl == model.SDPAAttn && !s.flash && s.dropout && !s.cuda
}
