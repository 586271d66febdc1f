package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// DefaultCUDAContext is the CUDA context the breakdown formula assumes per
// process and device (term "cuda_context", Feature 1): 500 MiB, the upper
// end of what recent CUDA with lazy module loading takes. Calibrate it.
const DefaultCUDAContext = 500 * MiB

var breakdownNotes = []string{
	"timeline: peak = whole-step terms + max of (a) the forward/backward window: weights, optimizer states, every saved activation, the logits, plus the largest of the loss (the logits' shifted and fp32 copies), the start of backward (the loss and logits gradients, the LM head's first gradient) and, with checkpointing, the recompute of one layer; gradients of the previous step freed by zero_grad(set_to_none=True); (b) optimizer step: weights, states, the logits the loop still holds, all gradients, foreach temporaries",
	"CUDA context 500 MiB by default; allocator rounding and fragmentation is a term with coefficient 0 until calibrated; cuBLAS workspaces and NCCL buffers are left out",
}

var breakdownTPNotes = append(breakdownNotes[:len(breakdownNotes):len(breakdownNotes)],
	"tensor parallelism scales the saved activations by Korthikanti's (10 + 24/t + 5as/(ht)) / (34 + 5as/h), or 1/t with sequence parallelism; logits are vocabulary-parallel (1/t)",
)

var breakdownCPUNotes = append(breakdownNotes[:len(breakdownNotes):len(breakdownNotes)],
	"cpu backend: no CUDA context (coefficient 0)",
)

// predictBreakdown is the per-tensor account of what one PyTorch training
// step keeps alive, per GPU, in bytes. A step, as scenarios/train.py runs
// it (loss, logits = model(ids); loss.backward(); opt.step();
// opt.zero_grad(set_to_none=True); del loss, logits), has four moments:
//
//	Steady (held between steps, Phase ""):
//	    weights + master weights + optimizer states (modelStateTerms, by
//	    precision, optimizer, ZeRO and TP) + 8BS int64 input ids
//	    + CUDA context (DefaultCUDAContext; 0 on the CPU)
//	Whole step, peak only (Phase ""):
//	    logits.output, B*S*V in the logits' dtype / t: the LM head's output,
//	    which the loop holds from the forward pass until after opt.step()
//	Forward/backward window (PhaseForward), on top of the above:
//	    SavedActivations except input.ids (the batch is input_ids above),
//	    scaled for TP/SP; ZeRO-3 gather buffer; allocator effects
//	    (coefficient 0 x saved-activation bytes); plus the largest of
//	    (loss, PhaseLoss)          the end of forward, while the loss is
//	        computed: logits.shifted (B > 1) and, under autocast,
//	        logits.fp32_copy, each B*(S-1)*V / t (Llama: the 16-bit logits
//	        before .float()), freed before backward;
//	    (backward, PhaseBackward)  the start of backward: logits_grad
//	        B*S*V * (8 for fp32 nll and log_softmax gradients; 4 in
//	        bf16-pure) / t and head_gradient V*H*grad bytes / t;
//	    (recompute, PhaseRecompute)  under checkpointing, the saved tensors
//	        of the one layer (full) or attention core (selective) recomputed
//	        at a time during backward, scaled for TP/SP, by which time the
//	        loss's tensors and gradients are freed.
//	Optimizer step (PhaseOptimizer), on top of steady and whole step:
//	    gradients + foreach AdamW temporaries (one state-sized tensor per
//	    parameter whose state this GPU holds); activations are freed.
//	Peak = steady + whole step + max(forward/backward window, optimizer step)
//
// The extras (logits, copies, recompute) are ActivationExtras: autograd
// does not save them, so they are apart from the saved activations, and no
// tensor is counted twice: loss.log_softmax is log_softmax's output, the
// fp32 copy its input, and logits_grad their gradients. Gradients that
// accumulate during backward are counted in the optimizer step only, and
// the saved activations whole throughout the window (the recompute moment
// holds fewer), so the window is an approximation on both sides.
//
// For inference see inferenceTerms. Preconditions: those of Predict;
// SavedActivations must cover the workload.
func predictBreakdown(e *Estimate, in *inputs) error {
	if in.w.Inference {
		return in.inferenceTerms(e)
	}
	var s actShape
	if err := s.initDefaulted(&in.a, in.computeWorkload()); err != nil { // in.w has its defaults
		return fmt.Errorf("breakdown: %w", err)
	}
	c := in.fsdpMPCoefs(in.finetuneCoefs(coefsFor(in.w.Precision, in.w.Optimizer))) // memory_fsdp_mp.go
	op := in.modelStateTerms(e, c, PhaseOptimizer, PhaseForward)
	bf, bu, bc := in.batchInput() // the token ids, or a vision model's pixels (activations_vision.go)
	e.add("input_ids", GroupInput, bf, bu, bc)
	ctx := DefaultCUDAContext
	if in.w.Backend == model.CPU {
		ctx = 0
	}
	e.add("cuda_context", GroupOverhead, 1, "1", float64(ctx))

	layerScale, logitScale := 1.0, 1.0
	if in.t > 1 {
		logitScale = 1 / in.t
		layerScale = 1 / in.t
		if !in.w.SP {
			full, _ := korthikantiLayerCoefs(1, false, model.NoCheckpointing)
			tp, _ := korthikantiLayerCoefs(in.t, false, model.NoCheckpointing)
			r := 5 * in.h * in.S / in.H
			layerScale = (tp + r/in.t) / (full + r)
		}
	}
	// The saved activations and the extras, built straight into e.Terms
	// with their TP scale, phase and Bytes, their sums in b.tally (see
	// actBuilder).
	first := len(e.Terms)
	b := actBuilder{terms: e.Terms, note: s.note, noIDs: true,
		breakdown: true, scaled: in.t > 1, layerScale: layerScale, logitScale: logitScale, sumFeatures: true}
	s.savedTerms(&b)
	b.sumFeatures = false // actBytes: the saved activations only
	if b.err == nil {
		s.extraTerms(&b)
	}
	if b.err != nil {
		return fmt.Errorf("breakdown: %w", b.err)
	}
	e.Terms = b.terms
	activationHost(e, b.host) // checkpoint_offload.go
	actBytes := b.features
	last := len(e.Terms)
	lgF, lgUnit, lg := s.logitsGrad(in.computeWorkload().Precision == model.BF16Pure)
	e.addPeak("logits_grad", GroupLogits, lgF, lgUnit, lg*logitScale, PhaseBackward).Note =
		"nll_loss and log_softmax gradients, live together at the start of backward"
	if !in.a.NoHead && !s.fusedLoss() && !in.w.LoRA() { // LoRA: the frozen head has none // fused: the head's gradient is loss.grad_weight
		hg := c.grad
		if c.computeGrad > 0 {
			hg = c.computeGrad
		}
		e.addPeak("head_gradient", GroupGradients, in.V*in.embedWidth()/in.t, "params", hg, PhaseBackward).Note =
			"the first gradient backward allocates"
	}
	in.optimizerTemporaries(e, c, op) // foreach, fused or for-loop (memory_finetune.go)
	e.addPeak("allocator_fragmentation", GroupOverhead, actBytes, "activation bytes", 0, PhaseForward).Note =
		"rounding and fragmentation of the caching allocator; 0 until calibrated"
	// Steady and Peak without Recompute's pass: the terms added here with
	// Bytes 0 are counted now, the builder's already are.
	b.tally.terms(e.Terms[:first])
	b.tally.terms(e.Terms[last:])
	if steady, peak, ok := b.tally.totals(); ok {
		e.Steady, e.Peak, in.totalled = steady, peak, true
	}
	defer func() {
		if in.par.active { // after the notes: pipeline, cp, offload, engine buffers
			in.parallelTerms(e, c)
		}
	}()
	switch {
	case in.t > 1:
		e.notes(breakdownTPNotes)
	case in.w.Backend == model.CPU:
		e.notes(breakdownCPUNotes)
	default:
		e.notes(breakdownNotes)
	}
	in.finetuneNotes(e) // LoRA, weight formats (memory_finetune.go)
	return nil
}
