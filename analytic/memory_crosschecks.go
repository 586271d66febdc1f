package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

var megatronNotes = []string{
	"Megatron-LM theoretical_memory_usage.py: weights and optimizer 18 B/param (6 + 12/DP with the distributed optimizer, taken as ZeRO >= 1) on the most loaded shard, N/t here with memval's parameter count",
	"activations from Table 2 of Korthikanti et al. assuming sequence parallelism and selective recomputation (Megatron's own preconditions): sbh(18 + 4 d_ff/h) per layer, 8sb + sbh for the embedding, 4sbh(1 + v/h) for the output layer and loss, all / t",
	"the 1.05 overhead factor FORMULAS.md cites is a separate term (5% of the rest); the current script itself has no such factor",
}

// predictMegatron reproduces Megatron-LM's theoretical_memory_usage.py
// (pipeline size 1), per GPU, in bytes:
//
//	weights+optimizer = N/t * (18, or 6 + 12/DP with the distributed optimizer)
//	activations       = [L*sbh(18 + 4 d_ff/h) + 8sb + sbh + 4sbh(1 + v/h)] / t
//	Peak              = 1.05 * (weights+optimizer + activations)
//
// Training only.
func predictMegatron(e *Estimate, in *inputs) error {
	if in.w.Inference {
		return fmt.Errorf("megatron: %w to inference", ErrNotApplicable)
	}
	if err := in.denseActivations("megatron"); err != nil {
		return err
	}
	per := 18.0
	if in.w.ZeRO >= 1 {
		per = 6 + 12/in.dp
	}
	n := float64(in.n) / in.t
	e.add("weights_and_optimizer", GroupOptimizer, n, "params", per)
	sbh := in.S * in.B * in.H
	var act float64
	add := func(name string, g Group, f float64, unit string, c float64) {
		e.addPeak(name, g, f, unit, c, "")
		act += f * c
	}
	add("layer_activations", GroupActivations, in.L*sbh, "B*S*H*L", (18+4*in.ffn/in.H)/in.t)
	add("embedding_input", GroupInput, in.S*in.B, "B*S", 8/in.t)
	add("embedding_dropout", GroupActivations, sbh, "B*S*H", 1/in.t)
	add("output_layer_input", GroupLogits, sbh, "B*S*H", 4/in.t)
	add("cross_entropy_logits", GroupLogits, in.S*in.B*in.V, "B*S*V", 4/in.t)
	e.addPeak("overhead_5pct", GroupOverhead, n*per+act, "bytes", 0.05, "").Note = "the 1.05 factor"
	e.notes(megatronNotes)
	return nil
}

var deepspeedNotes = []string{
	"DeepSpeed's estimators count model states only (no activations, no CUDA context) and exist for ZeRO-2 and ZeRO-3; ZeRO-0 and 1 use the ZeRO-2 one",
	"ZeRO-2 follows DeepSpeed's code (stage_1_and_2.py, no offload): 4N + 16N/G; FORMULAS.md states 2N + 18N/G, equal only for G = 1",
	"G is the data-parallel degree; tensor parallelism divides N",
}

// predictDeepSpeed reproduces DeepSpeed's model-state estimators without
// CPU offload (G = DP GPUs, N parameters, per GPU, in bytes):
//
//	ZeRO-3: 4 * largest_layer + 18N/G   (estimate_zero3_model_states_mem_needs)
//	ZeRO-2: 4N + 16N/G                  (estimate_zero2_model_states_mem_needs)
//
// largest_layer is largestModuleParams. Steady = Peak. Training only.
func predictDeepSpeed(e *Estimate, in *inputs) error {
	if in.w.Inference {
		return fmt.Errorf("deepspeed: %w to inference", ErrNotApplicable)
	}
	n := float64(in.n) / in.t
	if in.w.ZeRO == 3 {
		e.add("largest_layer", GroupWeights, in.largestModuleParams()/in.t, "params", 4)
		e.add("model_states", GroupOptimizer, n/in.dp, "params/G", 18)
	} else {
		e.add("fp16_params_and_grads", GroupWeights, n, "params", 4)
		e.add("optimizer_states", GroupOptimizer, n/in.dp, "params/G", 16)
	}
	e.notes(deepspeedNotes)
	return nil
}

var eleutherNotes = []string{
	"EleutherAI Transformer Math 101: weights 4 (fp32) or 2 B/param; optimizer AdamW 12 (fp32 copy + momentum + variance), 8-bit Adam 6, SGD+momentum 8, SGD 4 (copy only; not in the article); gradients 4 or 2",
	"activations sbhL(10 + 24/t + 5as/(ht)), selective sbhL(10 + 24/t), full 2sbhL; ZeRO shards as the article describes",
}

var eleutherInferenceNotes = []string{
	"EleutherAI Transformer Math 101: inference ~ 1.2 x weights (20% overhead), no KV cache term",
}

// predictEleuther is EleutherAI's "Transformer Math 101", per GPU, in bytes:
//
//	training:  weights + optimizer + gradients + activations
//	           (bytes per parameter in eleutherNotes, / t, sharded by ZeRO;
//	           activations sbhL(10 + 24/t + 5as/(ht)) or its recomputation variants)
//	inference: 1.2 x weights
func predictEleuther(e *Estimate, in *inputs) error {
	w := 2.0
	if in.w.Precision == model.FP32 {
		w = 4
	}
	n := float64(in.n) / in.t
	if in.w.Inference {
		e.add("weights", GroupWeights, n, "params", w)
		e.addPeak("inference_overhead", GroupOverhead, n, "params", 0.2*w, "").Note = "the 20% rule"
		e.notes(eleutherInferenceNotes)
		return nil
	}
	if err := in.denseActivations("eleuther"); err != nil {
		return err
	}
	var opt float64
	switch in.w.Optimizer {
	case model.AdamW:
		opt = 12
	case model.Adam8bit:
		opt = 6
	case model.SGDMomentum:
		opt = 8
	case model.SGD:
		opt = 4
	}
	wp, gp, op := n, n, n
	if in.w.ZeRO >= 1 {
		op /= in.dp
	}
	if in.w.ZeRO >= 2 {
		gp /= in.dp
	}
	if in.w.ZeRO >= 3 {
		wp /= in.dp
	}
	e.add("weights", GroupWeights, wp, "params", w)
	e.add("optimizer_states", GroupOptimizer, op, "params", opt)
	e.add("gradients", GroupGradients, gp, "params", w)
	linear, scores := korthikantiLayerCoefs(in.t, false, in.w.Checkpointing)
	sbh := in.S * in.B * in.H
	e.addPeak("layer_activations", GroupActivations, in.L*sbh, "B*S*H*L", linear, "")
	if scores > 0 {
		e.addPeak("attention_scores", GroupActivations, in.L*in.h*in.S*in.S*in.B, "B*S*S*h*L", scores, "")
	}
	e.notes(eleutherNotes)
	return nil
}

var accelerateNotes = []string{
	"accelerate estimate-memory: weights at the precision's size; training with Adam ~ 4x weights whatever the optimizer; batch size 1, no activations, no CUDA context, no parallelism",
}

// predictAccelerate is Hugging Face accelerate's estimate-memory, in bytes:
//
//	inference: N x (4 for fp32, 2 otherwise)
//	training:  4 x that ("training using Adam")
//
// It does not depend on batch or sequence. Steady = Peak.
func predictAccelerate(e *Estimate, in *inputs) error {
	w := SeedBytesPerParam(in.w.Precision)
	n := float64(in.n)
	e.add("weights", GroupWeights, n, "params", w)
	if !in.w.Inference {
		e.add("adam_training", GroupOptimizer, n, "params", 3*w).Note = "gradients and Adam states: 4x weights in all"
	}
	e.notes(accelerateNotes)
	return nil
}
