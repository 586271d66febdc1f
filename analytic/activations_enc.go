package analytic

import "github.com/memval/memval/analytic/model"

// encShape is what the BERT-style encoders' program (model.EncoderLayerName:
// bert, roberta, xlm-roberta, distilbert) needs beyond actShape: which
// int64 index tensors the embeddings save.
//
// Measured on torch 2.11's CPU against transformers 5.24's own classes
// (scenarios/family_truth_enc_test.go; modeling_bert.py, modeling_roberta.py,
// modeling_distilbert.py). Per layer, with r, a and the masks as in
// SavedActivations:
//
//	attn.qkv_in        a*B*S*H        the layer's input, read by q, k and v
//	                   (under autocast each keeps its own 16-bit copy: 3*2*B*S*H)
//	attn.qkv_copies    a*3*B*S*h*d    q, k^T and v made contiguous by matmul (eager)
//	attn.scores        a*B*h*S*S      softmax in the scores' dtype (no mask is passed)
//	attn.probs, dropout.attn_mask     with attention dropout
//	attn.qkv, attn.lse                instead of the core under sdpa (CPU flash)
//	attn.proj_in       a*B*S*H        the merged heads, the output dense's input
//	dropout.resid_mask a*2*B*S*H      with dropout (after the attention and the output dense;
//	                                  DistilBERT only after the FFN: a*B*S*H)
//	ln.in, ln.stats    r*2*B*S*H, 4*B*S  the two post-norms' inputs (the residual sums) and statistics
//	mlp.fc_in          a*B*S*H        the intermediate dense's input (the first norm's output)
//	mlp.act            a*B*S*F        gelu's input (relu: none beyond its output)
//	mlp.proj_in        a*B*S*F        the output dense's input
//
// and once: the ids 8*B*S; BERT's token type ids gathered from its buffer
// (8*S; its position ids are a slice of a buffer, not counted), RoBERTa's
// position ids counted from the ids and the token type ids gathered by
// them (8*B*S each), DistilBERT's none; the embeddings' LayerNorm input
// and statistics and dropout mask; then the task head (activations_heads.go).
// There is no final norm: the last layer's second norm is the output.
type encShape struct {
	posFromIDs, tokenTypes bool
	residDropouts          float64 // dropouts on the residual branches of a layer (DistilBERT: 1)
}

// initEncoder sets s.enc for a family that runs the encoders' program.
func (s *actShape) initEncoder(fam *model.Family, known bool) {
	s.enc = nil
	if !known || fam.Layer.Name != model.EncoderLayerName {
		return
	}
	s.enc = &encShape{posFromIDs: fam.Layer.PositionIDsFromInput, tokenTypes: fam.TokenTypes > 0,
		residDropouts: float64(fam.Layer.Dropouts())}
}

// encTerms is an encoder model: embeddings, L layers and the head.
func (s *actShape) encTerms(b *actBuilder) {
	BS := s.B * s.S
	b.addIDs(s)
	switch {
	case s.enc.posFromIDs:
		b.add("embed.position_ids", GroupInput, BS, "B*S", 8)
		if s.enc.tokenTypes {
			b.add("embed.token_type_ids", GroupInput, BS, "B*S", 8)
		}
	case s.enc.tokenTypes:
		b.add("embed.token_type_ids", GroupInput, s.S, "S", 8)
	}
	b.add("embed.ln_in", GroupActivations, BS*s.H, "B*S*H", s.r)
	b.add("embed.ln_stats", GroupActivations, 2*BS, "2*B*S", s.stat)
	if s.dropout {
		b.add("dropout.embed_mask", GroupActivations, BS*s.H, "B*S*H", s.maskBytes(s.r))
	}
	s.layerTerms(b)
	if s.head != nil {
		s.taskHeadTerms(b)
		return
	}
	// the bare encoder (head none) has no loss of its own: taken as an
	// LM head over its output (derived, not measured)
	b.add("head.in", GroupActivations, BS*s.H, "B*S*H", s.a)
	if s.autocast {
		b.add("autocast.head_weight_copy", GroupActivations, s.headWeights, "V*H", 2)
	}
	s.lossSaved(b)
}

// encLayer is one encoder layer times L.
func (s *actShape) encLayer(b *actBuilder) {
	L := s.L
	BSH := s.B * s.S * s.H * L
	BSq := s.B * s.S * s.h * s.hd * L
	BSF := s.B * s.S * s.F * L
	if eager := s.splitQKVAttn(b, BSH, BSq); eager {
		s.castCore(b, s.B*s.h*s.S*s.S*L)
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	if s.dropout {
		u := "2*B*S*H*L"
		if s.enc.residDropouts == 1 {
			u = "B*S*H*L"
		}
		b.add("dropout.resid_mask", GroupActivations, s.enc.residDropouts*BSH, u, s.maskBytes(s.a))
	}
	b.add("ln.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.r)
	b.add("ln.stats", GroupActivations, 4*s.B*s.S*L, "4*B*S*L", s.stat)
	b.add("mlp.fc_in", GroupActivations, BSH, "B*S*H*L", s.a)
	if s.actSaves {
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.a)
	}
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*L, "linear params", 2)
	}
}

// splitQKVAttn adds what three separate q, k and v linears (the encoders',
// the vision transformers') and the attention up to its softmax keep: the
// linears' input (each its own 16-bit copy under autocast), then SDPA's q,
// k, v, output and log-sum-exp, or the eager matmuls' copies of q, k and
// v. It reports whether the attention is eager, whose softmax the caller
// adds.
func (s *actShape) splitQKVAttn(b *actBuilder, BSH, BSq float64) (eager bool) {
	if s.autocast {
		b.add("attn.qkv_in", GroupActivations, 3*BSH, "3*B*S*H*L", 2) // q, k and v each cast the input
	} else {
		b.add("attn.qkv_in", GroupActivations, BSH, "B*S*H*L", s.a)
	}
	if s.flash || s.ckpt == model.SelectiveCheckpointing {
		b.add("attn.qkv", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
		if s.flash {
			s.sdpaOut(b, BSq)
			b.add("attn.lse", GroupActivations, s.B*s.h*s.S*s.L, "B*h*S*L", 4)
		}
		return false
	}
	b.add("attn.qkv_copies", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
	return true
}

// castCore adds an eager softmax in the scores' dtype (the encoders',
// DINOv2's): its output, and with dropout the mask and the dropped
// probabilities the matmul with v keeps. Under CUDA autocast softmax runs
// in fp32 and the matmul keeps its own 16-bit cast (derived, not
// measured).
func (s *actShape) castCore(b *actBuilder, BhSS float64) {
	score := s.a
	if s.autocast && s.cuda {
		score = 4
	}
	b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", score)
	if s.dropout {
		b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(score))
	}
	if s.dropout || score != s.a {
		b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
	}
}
