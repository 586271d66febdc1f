package analytic

import (
	"math"

	"github.com/memval/memval/analytic/model"
)

// The loss conventions (model.Loss): what the loss saves for backward, what
// it holds for a moment at the end of the forward pass, and the logits'
// gradients at the start of backward. Each follows the library file named
// on model.Loss's constants; ShiftLoss is memval's hand-built program and
// keeps the terms the breakdown always had.
//
//	convention   saved                                  transient (PhaseLoss)
//	shift        log_softmax B*(S-1)*V (fp32, or the    logits.shifted B*(S-1)*V (B > 1),
//	             logits' dtype in pure 16 bits),        logits.fp32_copy under autocast
//	             targets 8*B*(S-1) (B > 1)
//	hf           log_softmax 4*B*S*V, targets 8*B*S     logits.fp32_copy 4*B*S*V (16-bit
//	                                                    logits), labels.padded 8*B*(S+1)
//	torchtitan   log_softmax 4*B*S*V, targets 8*B*S     logits.fp32_copy 4*B*S*V (16-bit)
//	nanogpt      log_softmax B*S*V (fp32 under          logits.fp32_copy under autocast
//	             autocast, else the logits' dtype),
//	             targets 8*B*S
//	chunked:N    log_softmax 4*B*S*V (N chunks),        logits.fp32_copy 4*B*S*V/N (one
//	             targets 8*B*S, N total weights, the    chunk at a time)
//	             int64 count of labels
//	fused        loss.grad_input r*B*S*H, loss.grad_-   logits.chunk a*C*V and its
//	             weight V*H (weight dtype); no head.in  grad_input product a*C*H, C rows
//
// Except under shift, the model returns its logits in the compute dtype
// (transformers 4.45+ no longer upcasts Llama's); with Workload.FreeLogits
// the loop drops them before backward (logits.output in PhaseLoss instead
// of the whole step). fused has no whole logits at all.

// lossKind is the convention of s.
func (s *actShape) lossKind() model.Loss { return s.loss.Kind() }

// fusedLoss reports whether the LM head and the loss are one fused op.
func (s *actShape) fusedLoss() bool { return s.lossKind() == model.FusedLoss }

// lossSaved adds the loss's saved tensors (the tail of headTerms).
func (s *actShape) lossSaved(b *actBuilder) {
	BS := s.B * s.S
	switch s.lossKind() {
	case model.ShiftLoss:
		ls := float64(4)
		if !s.autocast && s.a == 2 && !s.llama {
			ls = 2 // pure 16-bit logits go into log_softmax as they are
		}
		b.add("loss.log_softmax", GroupLogits, s.B*(s.S-1)*s.V, "B*(S-1)*V", ls)
		if s.B > 1 { // with B = 1 the shifted labels are a view of the ids
			b.add("loss.targets", GroupLogits, s.B*(s.S-1), "B*(S-1)", 8)
		}
		b.add("loss.total_weight", GroupLogits, 1, "1", ls)
	case model.FusedLoss:
		b.add("loss.grad_input", GroupLogits, BS*s.H, "B*S*H", s.r) // the final norm's output dtype
		b.add("loss.grad_weight", GroupLogits, s.headWeights, "V*H", s.wbytes)
	default:
		ls := s.lossBytes()
		b.add("loss.log_softmax", GroupLogits, BS*s.V, "B*S*V", ls)
		if s.lossKind() == model.HFLoss && s.B == 1 {
			// with B = 1 the shifted padded labels are a view of the padded storage
			b.add("loss.targets", GroupLogits, s.S+1, "S+1", 8)
		} else {
			b.add("loss.targets", GroupLogits, BS, "B*S", 8)
		}
		n := float64(s.loss.Chunks())
		unit := "1"
		if n > 1 {
			unit = "chunks"
		}
		b.add("loss.total_weight", GroupLogits, n, unit, ls)
		if n > 1 || s.lossKind() == model.ChunkedLoss {
			b.add("loss.count", GroupLogits, 1, "1", 8) // torchtune divides the summed loss by the int64 count of labels
		}
	}
}

// lossBytes is the bytes per element of log_softmax's output for the
// conventions other than shift and fused.
func (s *actShape) lossBytes() float64 {
	if s.lossKind() == model.NanoGPTLoss && !s.autocast {
		return s.a
	}
	return 4
}

// logitsDType is the dtype (bytes) of the logits the model returns.
func (s *actShape) logitsDType() float64 {
	if s.lossKind() == model.ShiftLoss && s.llama {
		return 4 // the hand-built Llama (HF before 4.45) upcasts with .float()
	}
	return s.a
}

// lossExtras adds the logits and the loss's transient copies (the first
// part of extraTerms); held, loss and heldNote as there.
func (s *actShape) lossExtras(b *actBuilder, held, loss int, heldNote string) {
	if s.freeLogits {
		held, heldNote = loss, b.note
	}
	if s.head != nil {
		s.taskLossExtras(b, held, loss, heldNote)
		return
	}
	if s.vis != nil {
		s.visLossExtras(b, held, loss, heldNote) // activations_vision.go
		return
	}
	BSV := s.B * s.S * s.V
	dt := s.logitsDType()
	kind := s.lossKind()
	if kind == model.FusedLoss {
		c := s.fusedChunkRows()
		b.put("logits.chunk", GroupLogits, c*s.V, "C*V", s.a, loss, b.note)
		b.put("loss.grad_input_chunk", GroupLogits, c*s.H, "C*H", s.a, loss, b.note)
		return
	}
	if kind == model.ShiftLoss {
		bsv := s.B * (s.S - 1) * s.V
		if s.llama && s.a != 4 {
			b.put("logits.output16", GroupLogits, BSV, "B*S*V", s.a, loss, b.note)
		}
		b.put("logits.output", GroupLogits, BSV, "B*S*V", dt, held, heldNote)
		if s.B > 1 {
			b.put("logits.shifted", GroupLogits, bsv, "B*(S-1)*V", dt, loss, b.note)
		}
		if s.autocast && dt != 4 {
			b.put("logits.fp32_copy", GroupLogits, bsv, "B*(S-1)*V", 4, loss, b.note)
		}
		return
	}
	b.put("logits.output", GroupLogits, BSV, "B*S*V", dt, held, heldNote)
	if s.lossBytes() == 4 && dt != 4 {
		n := float64(s.loss.Chunks())
		unit := "B*S*V"
		if n > 1 {
			unit = "B*S*V/chunks"
		}
		b.put("logits.fp32_copy", GroupLogits, BSV/n, unit, 4, loss, b.note)
	}
	if kind == model.HFLoss {
		b.put("labels.padded", GroupLogits, s.B*(s.S+1), "B*(S+1)", 8, loss, b.note)
	}
}

// fusedChunkRows is Liger's chunk of rows: next_power_of_2(ceil(B*S /
// ceil(V/H))), at most B*S.
func (s *actShape) fusedChunkRows() float64 {
	BS := s.B * s.S
	inc := math.Ceil(s.V / s.H)
	c := math.Exp2(math.Ceil(math.Log2(math.Ceil(BS / inc))))
	return math.Min(c, BS)
}

// logitsGrad is the feature, unit and bytes per element of the logits'
// gradients live at the start of backward (logits_grad): the loss's and
// log_softmax's gradients of the rows of one chunk (all rows but for a
// chunked loss), none for a fused loss. pure is bf16-pure.
func (s *actShape) logitsGrad(pure bool) (float64, string, float64) {
	if s.head != nil {
		return s.taskLogitsGrad()
	}
	if s.vis != nil {
		return s.visLogitsGrad() // activations_vision.go
	}
	BSV := s.B * s.S * s.V
	switch s.lossKind() {
	case model.ShiftLoss:
		if pure {
			return BSV, "B*S*V", 4
		}
		return BSV, "B*S*V", 8
	case model.FusedLoss:
		return 0, "B*S*V", 0
	case model.ChunkedLoss:
		return BSV / float64(s.loss.Chunks()), "B*S*V/chunks", 8
	}
	return BSV, "B*S*V", 2 * s.lossBytes()
}
