package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// seedNotes are the seed article's known errors (FORMULAS.md section 1).
var seedNotes = []string{
	"as written in the seed article: fp32 weights and Adam whatever the precision and optimizer asked for; no parallelism",
	"errata: the listed per-layer components (layer norm 4E, QKV 2E, attention output 2E, MLP 2E+8E+2E) add up to 20E, not the 14E used",
	"errata: the attention-matrix term 4*B*S*S has no head count; PyTorch keeps one S*S score matrix per head",
	"D, the input size per sample, is taken as S int64 token ids (8*B*S bytes)",
	"measured saved activations on a small GPT were 1.5x to 3.1x the seed's M_act; CUDA context and allocator are left out",
}

var seedInferenceNotes = []string{
	"seed rule of thumb: inference working memory ~ 2x model memory (weights at the precision's bytes per parameter)",
	"no KV cache, activations or CUDA context are counted",
}

// predictSeed is the seed article's model, exactly as written.
//
// Training (fp32 weights, Adam; bytes, N parameters, E = B*S*H, D = S):
//
//	M_steady = 16N + 8BD                       (weights 4N, Adam 8N, gradients 4N, int64 input)
//	M_act    = L(14E + 4BSS) + 6BSV
//	M_peak   = M_steady + M_act + 4BSV         (a logits-sized buffer at the start of backward)
//
// Inference: 2 x model memory, model memory = N x bytes per parameter of
// the precision (SeedBytesPerParam). Known errors in seedNotes.
func predictSeed(e *Estimate, in *inputs) error {
	n := float64(in.n)
	if in.w.Inference {
		b := SeedBytesPerParam(in.w.Precision)
		e.add("weights", GroupWeights, n, "params", b)
		e.addPeak("working_memory", GroupOverhead, n, "params", b, "").Note = "the 2x inference rule"
		e.notes(seedInferenceNotes)
		return nil
	}
	e.add("weights", GroupWeights, n, "params", 4)
	e.add("gradients", GroupGradients, n, "params", 4)
	e.add("adam_states", GroupOptimizer, n, "params", 8)
	e.add("input_ids", GroupInput, in.B*in.S, "B*S", 8)
	e.addPeak("layer_activations", GroupActivations, in.L*in.B*in.S*in.H, "B*S*H*L", 14, "").Note = "14E per layer (the components listed add to 20E)"
	e.addPeak("attention_matrix", GroupActivations, in.L*in.B*in.S*in.S, "B*S*S*L", 4, "").Note = "no head count"
	e.addPeak("logits", GroupLogits, in.B*in.S*in.V, "B*S*V", 6, "")
	e.addPeak("backward_logits_buffer", GroupLogits, in.B*in.S*in.V, "B*S*V", 4, "")
	e.notes(seedNotes)
	return nil
}

// SeedBytesPerParam is the seed's bytes per parameter for a precision:
// fp32 4; fp16, bf16 and their variants 2. (The seed also gives int8 1 and
// int4 0.5; see DTypeBytes.)
func SeedBytesPerParam(p model.Precision) float64 {
	if p == model.FP32 || p == "" {
		return 4
	}
	return 2
}

// DTypeBytes is the storage size of one parameter of a dtype: fp32 4,
// fp16/bf16 2, int8 1, int4 0.5 bytes.
func DTypeBytes(dtype string) (float64, error) {
	switch dtype {
	case "fp32", "float32":
		return 4, nil
	case "fp16", "float16", "bf16", "bfloat16":
		return 2, nil
	case "int8":
		return 1, nil
	case "int4":
		return 0.5, nil
	}
	return 0, fmt.Errorf("unknown dtype %q; use fp32, fp16, bf16, int8 or int4", dtype)
}

// ModelMemory is the seed's model memory, N x bytes per parameter, in
// bytes (rounded up), and its rules of thumb: inference ~ 2x, training ~ 4x.
// The seed's example: 123,383,808 parameters in fp32 take 493,535,232 B.
func ModelMemory(params int64, bytesPerParam float64) (modelBytes, inference, training uint64, err error) {
	if params < 0 || !(bytesPerParam >= 0) {
		return 0, 0, 0, fmt.Errorf("params %d and bytes per parameter %g must not be negative", params, bytesPerParam)
	}
	modelBytes, err = TermBytes(float64(params), bytesPerParam)
	if err != nil {
		return 0, 0, 0, err
	}
	if modelBytes > MaxBytes/4 {
		return 0, 0, 0, ErrOverflow
	}
	return modelBytes, 2 * modelBytes, 4 * modelBytes, nil
}
