package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

var korthikantiNotes = []string{
	"Korthikanti et al. 2022 assume 16-bit activations and 1-byte dropout masks whatever the precision and dropout asked for, and math attention (5as^2b score bytes)",
	"outside the layers: embedding dropout mask, the output layer's and cross-entropy's inputs (4sbh + 4sbv), as Megatron-LM counts them",
	"no CUDA context, workspaces, allocator rounding or optimizer-step temporaries",
}

// korthikantiLayerCoefs returns the bytes per s*b*h element and per a*s*s*b
// element of one transformer layer's activations (Korthikanti et al. 2022,
// Table 2), for tensor parallelism t, sequence parallelism sp and a
// recomputation strategy:
//
//	none:       sbh(34 + 5as/h)                 (attention 11sbh + 5as^2b, MLP 19sbh, norms 4sbh)
//	TP t:       sbh(10 + 24/t + 5as/(ht))
//	TP t + SP:  sbh(34/t + 5as/(ht))
//	selective:  the 5as^2b/t term dropped
//	full:       2sbh (the layer input; /t with SP)
//
// The return values are the coefficient of s*b*h and of a*s^2*b.
func korthikantiLayerCoefs(t float64, sp bool, ck model.Checkpointing) (linear, scores float64) {
	switch {
	case sp:
		linear = 34 / t
	default:
		linear = 10 + 24/t
	}
	scores = 5 / t
	switch ck {
	case model.SelectiveCheckpointing:
		scores = 0
	case model.FullCheckpointing:
		linear, scores = 2, 0
		if sp {
			linear = 2 / t
		}
	}
	return linear, scores
}

// predictKorthikanti is Korthikanti et al.'s activation model plus model
// states. Per GPU, in bytes (s = S, b = B, h = H, a heads, t = TP, v = V):
//
//	Steady = model states (modelStateTerms: 16 B/param for mixed-precision
//	         or fp32 Adam, by precision and optimizer, sharded by ZeRO/TP)
//	         + 8sb input ids
//	Peak   = Steady + L * layer activations (korthikantiLayerCoefs)
//	         + sbh (embedding dropout mask) + 4sbh + 4sbv (output layer
//	         input and fp32 logits), all / t with SP (the last two / t always)
//	         + with full recomputation, one layer recomputed in full.
//
// Training only: inference is ErrNotApplicable.
func predictKorthikanti(e *Estimate, in *inputs) error {
	if in.w.Inference {
		return fmt.Errorf("korthikanti: %w to inference (activations of training only); use breakdown", ErrNotApplicable)
	}
	if err := in.denseActivations("korthikanti"); err != nil {
		return err
	}
	c := coefsFor(in.w.Precision, in.w.Optimizer)
	in.modelStateTerms(e, c, "", "")
	e.add("input_ids", GroupInput, in.B*in.S, "B*S", 8)
	t, sp := in.t, in.w.SP && in.t > 1
	linear, scores := korthikantiLayerCoefs(t, sp, in.w.Checkpointing)
	sbh := in.S * in.B * in.H
	if in.w.Checkpointing == model.FullCheckpointing {
		e.addPeak("layer_inputs", GroupActivations, in.L*sbh, "B*S*H*L", linear, "").Note = "2sbh per layer kept for recomputation"
		l1, s1 := korthikantiLayerCoefs(t, sp, model.NoCheckpointing)
		e.addPeak("recomputed_layer", GroupActivations, sbh, "B*S*H", l1, "").Note = "one layer's activations rebuilt during backward"
		e.addPeak("recomputed_layer_scores", GroupActivations, in.h*in.S*in.S*in.B, "B*S*S*h", s1, "")
	} else {
		e.addPeak("layer_activations", GroupActivations, in.L*sbh, "B*S*H*L", linear, "")
		if scores > 0 {
			e.addPeak("attention_scores", GroupActivations, in.L*in.h*in.S*in.S*in.B, "B*S*S*h*L", scores, "").Note = "5as^2b: scores, softmax, dropout mask"
		}
	}
	spDiv := 1.0
	if sp {
		spDiv = t
	}
	e.addPeak("embedding_dropout_mask", GroupActivations, sbh, "B*S*H", 1/spDiv, "")
	e.addPeak("output_layer_inputs", GroupLogits, sbh, "B*S*H", 4/t, "")
	e.addPeak("cross_entropy_logits", GroupLogits, in.B*in.S*in.V, "B*S*V", 4/t, "")
	e.notes(korthikantiNotes)
	return nil
}
