package analytic

import "github.com/memval/memval/analytic/model"

// headShape is a task head in place of the causal LM head (Arch.Head
// seq-cls, token-cls or mlm) and its loss, as transformers 5.x's classes
// run it (measured on torch 2.11's CPU, transformers 5.24, for the decoder
// classifiers of gpt2 and llama; BERT's heads measured by hand, its layers
// are not modelled exactly, so the whole is derived):
//
//	seq-cls, decoders  score (H x N, no bias) over every position, saving
//	                   its input cls.in a*B*S*H; the logits of the last
//	                   non-padding token picked by two int64 index
//	                   tensors of B (cls.pool_index; pad_token_id set, as
//	                   batches above 1 need); cross entropy over B rows
//	                   in the logits' dtype (fp32 under autocast)
//	seq-cls, encoders  the pooler (dense on the first token, tanh; its
//	                   input is a view of the whole B*S*H output, or under
//	                   autocast a B*H copy), dropout with the model's
//	                   dropout, the classifier, cross entropy over B rows;
//	                   RoBERTa's head drops out the first token before its
//	                   dense too (a B*H mask, and the dense keeps the B*H
//	                   dropped-out copy), DistilBERT's pre_classifier and
//	                   relu save as BERT's pooler and tanh do
//	token-cls          dropout before the classifier: transformers'
//	                   default classifier_dropout 0.1 for the decoders
//	                   (their configs have none), the hidden dropout for
//	                   encoders; its mask is the final norm output's dtype
//	                   on the CPU; cross entropy over B*S rows, upcast to
//	                   fp32 by the generic (Llama-style) classes' loss,
//	                   GPT-2's and BERT's in the logits' dtype
//	mlm                BERT's transform (dense, gelu, LayerNorm) and the
//	                   decoder over B*S*V (tied to the embeddings); cross
//	                   entropy in the logits' dtype, labels a tensor of
//	                   their own (-100 where not masked)
//
// Every loss saves log_softmax's output, its int64 targets and a 0-dim
// total weight. One label (seq-cls:1) is transformers' regression: MSE
// saves its input and the float labels (derived). Multi-label problems
// (float labels, BCE) are not modelled. Under LoRA, PEFT's modules_to_save
// trains the classifier (score or classifier), so its input stays saved.
type headShape struct {
	kind    string  // model.HeadSeqCls, HeadTokenCls or HeadMLM
	N       float64 // labels
	encoder bool    // the family is an encoder (BERT-like): pooler, hidden dropout
	dropout bool    // dropout before the classifier
	// dropoutIn: a sequence classifier that drops out the first token's
	// features before its dense layer too (model.Layer.HeadDropoutIn,
	// RoBERTa), with dropout
	dropoutIn bool
	upcast    bool // the loss casts the logits to fp32 first
}

// initHead sets s.head from a's task head (nil for the LM head and none).
func (s *actShape) initHead(a *model.Arch, w *model.Workload) {
	s.head = nil
	fam, known := model.FamilyOf(a.Family)
	encoder := known && fam.NoHead
	switch a.Head {
	case model.HeadSeqCls, model.HeadTokenCls:
		h := &headShape{kind: a.Head, N: float64(a.Labels), encoder: encoder}
		if encoder {
			h.dropout = w.Dropout > 0 // classifier_dropout defaults to hidden_dropout_prob
			h.dropoutIn = h.dropout && a.Head == model.HeadSeqCls && fam.Layer.HeadDropoutIn
		} else {
			h.dropout = a.Head == model.HeadTokenCls // classifier_dropout: transformers' default 0.1
		}
		h.upcast = a.Head == model.HeadTokenCls && s.llama // GenericForTokenClassification's loss_function
		s.head = h
		s.headWeights = s.H * h.N
		if encoder && !s.measured || a.Labels == 1 {
			s.note = noteDerived
		}
	case model.HeadMLM:
		s.head = &headShape{kind: a.Head, N: s.V, encoder: true}
		if !s.measured {
			s.note = noteDerived
		}
	case model.HeadNone:
		s.note = noteDerived
	}
}

// rows is the number of rows the head's loss sees: B for a sequence
// classifier, B*S for the others.
func (s *actShape) headRows() (float64, string) {
	if s.head.kind == model.HeadSeqCls {
		return s.B, "B"
	}
	return s.B * s.S, "B*S"
}

// headLossBytes is the bytes per element of the head loss's log_softmax.
func (s *actShape) headLossBytes() float64 {
	if s.autocast || s.head.upcast {
		return 4
	}
	return s.a
}

// taskHeadTerms adds a task head's saved tensors after the final norm, and
// its loss (headTerms' tail for Arch.Head seq-cls, token-cls and mlm).
func (s *actShape) taskHeadTerms(b *actBuilder) {
	h := s.head
	BS := s.B * s.S
	switch {
	case h.kind == model.HeadMLM:
		b.add("mlm.transform_in", GroupActivations, BS*s.H, "B*S*H", s.a)
		if s.actSaves { // relu's output is the norm's input
			b.add("mlm.act_in", GroupActivations, BS*s.H, "B*S*H", s.a)
		}
		b.add("mlm.ln_in", GroupActivations, BS*s.H, "B*S*H", s.a)
		b.add("mlm.ln_stats", GroupActivations, 2*BS, "2*B*S", s.stat)
		b.add("mlm.decoder_in", GroupActivations, BS*s.H, "B*S*H", s.a)
		if s.autocast {
			b.add("autocast.head_weight_copy", GroupActivations, s.H*s.H+s.V*s.H, "H*H+V*H", 2)
		}
	case h.kind == model.HeadSeqCls && h.encoder:
		if h.dropoutIn {
			b.add("cls.dropout_in_mask", GroupActivations, s.B*s.H, "B*H", s.maskBytes(s.r))
		}
		if s.autocast {
			b.add("pooler.in", GroupActivations, s.B*s.H, "B*H", 2)
			b.add("autocast.pooler_weight_copy", GroupActivations, s.H*s.H, "H*H", 2)
		} else if h.dropoutIn {
			b.add("pooler.in", GroupActivations, s.B*s.H, "B*H", s.a) // the dropped-out first token
		} else {
			b.add("pooler.in", GroupActivations, BS*s.H, "B*S*H", s.a) // a view of the first token keeps the whole output
		}
		b.add("pooler.tanh", GroupActivations, s.B*s.H, "B*H", s.a)
		if h.dropout {
			b.add("cls.dropout_mask", GroupActivations, s.B*s.H, "B*H", s.maskBytes(s.a))
			b.add("cls.in", GroupActivations, s.B*s.H, "B*H", s.a)
		}
	case h.kind == model.HeadSeqCls:
		b.add("cls.in", GroupActivations, BS*s.H, "B*S*H", s.a)
		b.add("cls.pool_index", GroupLogits, 2*s.B, "2*B", 8)
	default: // token-cls
		if h.dropout {
			b.add("cls.dropout_mask", GroupActivations, BS*s.H, "B*S*H", s.maskBytes(s.r))
		}
		b.add("cls.in", GroupActivations, BS*s.H, "B*S*H", s.a)
	}
	if h.kind != model.HeadMLM && s.autocast {
		b.add("autocast.cls_weight_copy", GroupActivations, s.headWeights, "H*N", 2)
	}
	s.taskLossSaved(b)
}

// taskLossSaved adds the head loss's saved tensors.
func (s *actShape) taskLossSaved(b *actBuilder) {
	n, unit := s.headRows()
	ls := s.headLossBytes()
	if s.head.kind == model.HeadSeqCls && s.head.N == 1 { // regression: MSE on the squeezed logits and float labels
		b.add("loss.mse_input", GroupLogits, n, unit, ls)
		b.add("loss.targets", GroupLogits, n, unit, 4)
		return
	}
	b.add("loss.log_softmax", GroupLogits, n*s.head.N, unit+s.headUnit(), ls)
	b.add("loss.targets", GroupLogits, n, unit, 8)
	b.add("loss.total_weight", GroupLogits, 1, "1", ls)
}

// taskLossExtras adds the head's logits (held by the loop) and the loss's
// transient copies (lossExtras for a task head).
func (s *actShape) taskLossExtras(b *actBuilder, held, loss int, heldNote string) {
	n, unit := s.headRows()
	N := s.head.N
	if s.head.kind == model.HeadSeqCls && !s.head.encoder {
		// the logits of every position, freed when forward returns the pooled ones
		b.put("logits.all_positions", GroupLogits, s.B*s.S*N, "B*S*N", s.a, loss, b.note)
	}
	b.put("logits.output", GroupLogits, n*N, unit+s.headUnit(), s.a, held, heldNote)
	if s.headLossBytes() == 4 && s.a != 4 {
		b.put("logits.fp32_copy", GroupLogits, n*N, unit+s.headUnit(), 4, loss, b.note)
	}
}

// taskLogitsGrad is logitsGrad for a task head.
func (s *actShape) taskLogitsGrad() (float64, string, float64) {
	n, unit := s.headRows()
	return n * s.head.N, unit + s.headUnit(), 2 * s.headLossBytes()
}

// headUnit names the logits' last dimension: N labels, or V for mlm.
func (s *actShape) headUnit() string {
	if s.head.kind == model.HeadMLM {
		return "*V"
	}
	return "*N"
}
