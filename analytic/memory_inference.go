package analytic

import "github.com/memval/memval/analytic/model"

var inferenceNotes = []string{
	"inference: weights + KV cache for S tokens (prompt and generated) + fp32 logits for every position + CUDA context",
	"one layer's transient activations, cuBLAS workspaces and allocator rounding are left out",
}

// inferenceTerms appends the memory of an inference run (w.Inference), per
// GPU, in bytes:
//
//	Steady = weights (N_tp x 4 for fp32 and autocast, 2 for bf16-pure and
//	         bf16-master) + 8BS input ids + CUDA context
//	Peak   = Steady + KV cache + logits
//	KV cache = 2 * L * B * S * n_kv * head_dim * bytes   (K and V; n_kv the
//	         key/value heads on this rank: kv/t, or 1 when t > kv; bytes 4
//	         for fp32, 2 otherwise)
//	logits = 4 * B * S * V / t  (fp32, as Hugging Face models return them)
func (in *inputs) inferenceTerms(e *Estimate) error {
	if in.w.Generating() {
		return in.generationTerms(e) // memory_generation.go
	}
	c := coefsFor(in.w.Precision, in.w.Optimizer)
	if in.w.Weights != "" || in.w.LoRA() {
		in.loraStateTerms(e, c, "") // quantized weights (memory_finetune.go)
	} else {
		e.add("weights", GroupWeights, in.epLocalParams(in.tpParams()), "params", c.weight)
	}
	bf, bu, bc := in.batchInput() // the token ids, or a vision model's pixels (activations_vision.go)
	e.add("input_ids", GroupInput, bf, bu, bc)
	ctx := DefaultCUDAContext
	if in.w.Backend == model.CPU {
		ctx = 0
	}
	e.add("cuda_context", GroupOverhead, 1, "1", float64(ctx))
	kv := in.cacheKVHeads() / in.t // kvcache_alibi_mqa.go
	if kv < 1 {
		kv = 1
	}
	e.addPeak("kv_cache", GroupKVCache, in.L*in.B*in.S*kv*in.hd, "L*B*S*kv_heads*head_dim", 2*c.act, "").Note =
		"2 (K and V) x L x B x S x kv heads x head dim x bytes"
	e.addPeak("logits", GroupLogits, in.B*in.S*in.V, "B*S*V", 4/in.t, "")
	e.notes(inferenceNotes)
	return nil
}
