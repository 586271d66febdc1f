package analytic

import (
	"fmt"
	"slices"
)

// DefaultCUDAContext is the CUDA context the breakdown formula assumes per
// process and device (term "cuda_context", Feature 1): 500 MiB, the upper
// end of what recent CUDA with lazy module loading takes. Calibrate it.
const DefaultCUDAContext = 500 * MiB

var breakdownNotes = []string{
	"timeline: peak = max of (a) end of forward / start of backward: weights, optimizer states, every saved activation, logits, the logits' gradient and the LM head's first gradient, gradients of the previous step freed by zero_grad(set_to_none=True); (b) optimizer step: weights, states, all gradients, foreach temporaries",
	"CUDA context 500 MiB by default; allocator rounding and fragmentation is a term with coefficient 0 until calibrated; cuBLAS workspaces and NCCL buffers are left out",
}

var breakdownTPNotes = append(breakdownNotes[:len(breakdownNotes):len(breakdownNotes)],
	"tensor parallelism scales the saved activations by Korthikanti's (10 + 24/t + 5as/(ht)) / (34 + 5as/h), or 1/t with sequence parallelism; logits are vocabulary-parallel (1/t)",
)

var breakdownCPUNotes = append(breakdownNotes[:len(breakdownNotes):len(breakdownNotes)],
	"cpu backend: no CUDA context (coefficient 0)",
)

// predictBreakdown is the per-tensor account of what one PyTorch training
// step keeps alive, per GPU, in bytes:
//
//	Steady = weights + master weights + gradients + optimizer states
//	         (modelStateTerms, by precision, optimizer, ZeRO and TP)
//	         + 8BS int64 input ids + CUDA context (DefaultCUDAContext)
//	Forward phase (end of forward, start of backward):
//	         Steady - gradients + SavedActivations (per tensor, scaled for TP/SP)
//	         + logits gradient BSV * (8 fp32 nll and log_softmax gradients; 4 in bf16-pure) / t
//	         + the LM head's gradient V*H*grad bytes / t
//	         + allocator effects (coefficient 0 x activation bytes)
//	         + ZeRO-3 gather buffer
//	Optimizer phase: Steady + foreach AdamW temporaries (one state-sized
//	         tensor per parameter whose state this GPU holds)
//	Peak   = max(forward phase, optimizer phase)
//
// For inference see inferenceTerms. Preconditions: those of Predict;
// SavedActivations must cover the workload.
func predictBreakdown(e *Estimate, in *inputs) error {
	if in.w.Inference {
		return in.inferenceTerms(e)
	}
	acts, err := SavedActivations(in.a, in.w)
	if err != nil {
		return fmt.Errorf("breakdown: %w", err)
	}
	e.Terms = slices.Grow(e.Terms, len(acts)+10)
	c := coefsFor(in.w.Precision, in.w.Optimizer)
	op := in.modelStateTerms(e, c, PhaseOptimizer, PhaseForward)
	e.add("input_ids", GroupInput, in.B*in.S, "B*S", 8)
	ctx := DefaultCUDAContext
	if in.w.Backend == CPU {
		ctx = 0
	}
	e.add("cuda_context", GroupOverhead, 1, "1", float64(ctx))

	layerScale, logitScale := 1.0, 1.0
	if in.t > 1 {
		logitScale = 1 / in.t
		layerScale = 1 / in.t
		if !in.w.SP {
			full, _ := korthikantiLayerCoefs(1, false, NoCheckpointing)
			tp, _ := korthikantiLayerCoefs(in.t, false, NoCheckpointing)
			r := 5 * in.h * in.S / in.H
			layerScale = (tp + r/in.t) / (full + r)
		}
	}
	var actBytes float64
	for _, t := range acts {
		if t.Name == "input.ids" {
			continue // the batch itself: input_ids above
		}
		t.Peak, t.Phase = true, PhaseForward
		if t.Group == GroupLogits {
			t.Coef *= logitScale
		} else {
			t.Coef *= layerScale
		}
		actBytes += t.Feature * t.Coef
		e.Terms = append(e.Terms, t)
	}
	lg := 8.0
	if in.w.Precision == BF16Pure {
		lg = 4
	}
	e.addPeak("logits_grad", GroupLogits, in.B*in.S*in.V, "B*S*V", lg*logitScale, PhaseForward).Note =
		"nll_loss and log_softmax gradients, live together at the start of backward"
	if !in.a.NoHead {
		e.addPeak("head_gradient", GroupGradients, in.V*in.embedWidth()/in.t, "params", c.grad, PhaseForward).Note =
			"the first gradient backward allocates"
	}
	if c.temp > 0 {
		e.addPeak("optimizer_step_temporaries", GroupOptimizer, op, "params", c.temp, PhaseOptimizer).Note =
			"foreach AdamW: sqrt(exp_avg_sq) for every parameter at once"
	}
	e.addPeak("allocator_fragmentation", GroupOverhead, actBytes, "activation bytes", 0, PhaseForward).Note =
		"rounding and fragmentation of the caching allocator; 0 until calibrated"
	switch {
	case in.t > 1:
		e.notes(breakdownTPNotes)
	case in.w.Backend == CPU:
		e.notes(breakdownCPUNotes)
	default:
		e.notes(breakdownNotes)
	}
	return nil
}
