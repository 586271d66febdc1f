package analytic

import (
	"fmt"
	"math"

	"github.com/memval/memval/analytic/model"
)

var generationNotes = []string{
	"generation (transformers 5.24 generate()): peak = max(prefill, decode); prefill: the forward over the prompt with its cache, one layer's working set and the kept logits; decode: the last token's forward with the cache at its longest",
	"the layer working sets are derived (hidden states, Q/K/V, MLP intermediates, eager scores), not measured; sampling's probabilities, cuBLAS workspaces and allocator rounding are left out",
}

// genShape is a generation's sizes, as float64.
type genShape struct {
	P, G, T  float64 // padded prompt, generated tokens, cache length at the last decode step (P+G-1)
	kind     string  // dynamic, static, sliding, quantized
	n        float64 // sliding window W or quantized bits
	ragged   bool    // prompts of different lengths: padded, with an attention mask
	decoding bool    // at least one decode step (G >= 2; the first token comes from the prefill)
}

func (in *inputs) genShape() (genShape, error) {
	w := &in.w
	kind, n, err := model.ParseKVCache(w.KVCache)
	if err != nil {
		return genShape{}, &model.FieldError{Field: "kv_cache", Value: w.KVCache, Reason: err.Error()}
	}
	ls, _ := model.ParsePromptLengths(w.PromptLengths)
	g := genShape{P: float64(w.GenPrompt()), G: float64(w.Generate), kind: kind, n: float64(n)}
	for _, l := range ls {
		if l != ls[0] {
			g.ragged = true
		}
	}
	g.T = max(g.P+g.G-1, g.P)
	if m := in.a.MaxPositions; m > 0 && g.P+g.G > float64(m) {
		return g, &model.FieldError{Field: "generate", Value: w.Generate,
			Reason: fmt.Sprintf("prompt %d + generate is longer than the model's learned position table of %d rows", int(g.P), m)}
	}
	g.decoding = w.Generate >= 2
	return g, nil
}

// generationTerms appends the memory of a generation (w.Generating()), per
// GPU, in bytes. With k the tokens a cache holds and
// kvTok = 2 * L * B * kv_heads * head_dim * bytes (K and V of one token):
//
//	whole run: weights, input_ids 8B(P+G), CUDA context, next-token logits
//	           4BV (generate's fp32 copy of the last position,
//	           transformers/generation/utils.py: outputs.logits[:, -1].to(
//	           copy=True, dtype=torch.float32)), and a static cache
//	prefill:   cache of the prompt, one layer's working set over P tokens,
//	           the attention mask where one is built, logits B*K*V*bytes
//	           (K = 1 with logits last, P with all)
//	decode:    cache at T = P+G-1 tokens, one layer's working set for one
//	           token with the cache's update copies, logits B*V*bytes
//
// Caches (transformers/cache_utils.py): dynamic holds k = P, then T
// (DynamicLayer, torch.cat: one layer's old and new K/V live together);
// static holds max_cache_len = P+G-1 from the prefill on (StaticLayer,
// torch.zeros at lazy_initialization; generation/utils.py sizes it
// max_length - 1); sliding:W keeps the last W-1
// tokens as a slice of torch.cat's result (DynamicSlidingWindowLayer), a
// view holding the whole result: P after the prefill, min(T, W) after a
// decode step;; quantized:BITS holds k tokens at
// BITS/8 bytes plus a scale and zero point in the model's dtype per
// QuantGroup values, and the newest (G-1) mod QuantResidual tokens in the
// model's dtype (QuantizedLayer: the residual is requantized with the rest
// once it reaches residual_length), and dequantizes a layer's whole cache
// to attend (two K/V copies of that layer live).
func (in *inputs) generationTerms(e *Estimate) error {
	g, err := in.genShape()
	if err != nil {
		return err
	}
	c := coefsFor(in.w.Precision, in.w.Optimizer)
	if in.w.Weights != "" || in.w.LoRA() {
		in.loraStateTerms(e, c, "") // quantized weights (memory_finetune.go)
	} else {
		e.add("weights", GroupWeights, in.epLocalParams(in.tpParams()), "params", c.weight)
	}
	e.add("input_ids", GroupInput, in.B*(g.P+g.G), "B*(P+G)", 8)
	ctx := DefaultCUDAContext
	if in.w.Backend == model.CPU {
		ctx = 0
	}
	e.add("cuda_context", GroupOverhead, 1, "1", float64(ctx))
	act := c.act
	kvr := max(in.cacheKVHeads()/in.t, 1)
	tok := in.L * in.B * kvr * in.hd // elements of K (or V) per token, all layers
	e.addPeak("next_token_logits", GroupLogits, in.B*in.V, "B*V", 4/in.t, "").Note =
		"generate's fp32 copy of the last position's logits"

	// The cache at the prefill (kp tokens) and at the last decode step (kd),
	// averaged over the layers: a config with sliding-window layers
	// (Arch.SlidingWindow; gemma2, gemma3, starcoder2) gets, from
	// DynamicCache(config=...) and StaticCache(config=...), a
	// DynamicSlidingWindowLayer (min(T, W) tokens after a decode step) or a
	// StaticSlidingWindowLayer (min(W, max_cache_len)) for those layers.
	kp, kd := g.P, g.T
	attP, attD := g.P, g.T // keys each query attends to
	local, W := 0.0, float64(in.a.SlidingWindow)
	if W > 0 && (g.kind == model.DynamicCache || g.kind == model.StaticCache) {
		local = float64(in.a.LocalLayers())
	}
	mix := func(full, window float64) float64 { return ((in.L-local)*full + local*window) / in.L }
	switch g.kind {
	case model.StaticCache:
		kp, attP = mix(g.T, min(g.T, W)), g.T
	case model.DynamicCache:
		kd = mix(g.T, min(g.T, W))
	case "sliding":
		// The layer keeps a slice of torch.cat's result, a view that
		// holds the whole result: the prompt's P tokens after the
		// prefill, min(T, W) after a decode step.
		kd = min(g.T, g.n)
		attD = kd
	}
	switch g.kind {
	case model.StaticCache:
		e.addPeak("kv_cache", GroupKVCache, tok*kp, "L*B*T*kv_heads*head_dim", 2*act, "").Note =
			"static: 2 (K and V) x L x B x max_cache_len (P+G-1; sliding layers min(W, P+G-1)) x kv heads x head dim x bytes, allocated at the prefill"
	case "quantized":
		q := 2 * (g.n/8 + 2*act/model.QuantGroup) // K and V bytes per element
		e.addPeak("kv_cache_prompt", GroupKVCache, tok*g.P, "L*B*P*kv_heads*head_dim", q, PhasePrefill).Note =
			fmt.Sprintf("quantized to %g bits with a scale and zero point per %d values", g.n, model.QuantGroup)
		if g.decoding {
			r := math.Mod(g.G-1, model.QuantResidual)
			e.addPeak("kv_cache", GroupKVCache, tok*(g.T-r), "L*B*(T-r)*kv_heads*head_dim", q, PhaseDecode).Note =
				"quantized tokens at the last decode step"
			e.addPeak("kv_cache_residual", GroupKVCache, tok*r, "L*B*r*kv_heads*head_dim", 2*act, PhaseDecode).Note =
				"the newest (G-1) mod residual_length tokens in the model's dtype"
		}
	default:
		e.addPeak("kv_cache_prompt", GroupKVCache, tok*kp, "L*B*P*kv_heads*head_dim", 2*act, PhasePrefill).Note =
			"2 (K and V) x L x B x cached prompt tokens x kv heads x head dim x bytes"
		if g.decoding {
			e.addPeak("kv_cache", GroupKVCache, tok*kd, "L*B*T*kv_heads*head_dim", 2*act, PhaseDecode).Note =
				"2 (K and V) x L x B x cached tokens at the last step x kv heads x head dim x bytes"
		}
	}

	// Prefill: one layer's working set over the prompt, the mask, the
	// kept logits.
	e.addPeak("prefill_layer_workspace", GroupActivations, in.B*g.P, "B*P", in.layerWork(attP, act), PhasePrefill).Note =
		"one layer's transient tensors over the prompt (no autograd: freed layer by layer)"
	if m := in.maskBytes(g, g.P, attP, act); m > 0 {
		e.addPeak("attention_mask", GroupActivations, in.B*g.P*attP, "B*P*keys", m, PhasePrefill).Note =
			"the 4D mask masking_utils builds (bool for sdpa with padding or a static cache; the model's dtype for eager)"
	}
	keep := 1.0
	if in.w.Logits == model.AllLogits {
		keep = g.P
	}
	e.addPeak("logits", GroupLogits, in.B*keep*in.V, "B*K*V", act/in.t, PhasePrefill).Note =
		"the prefill's logits for the kept positions (logits_to_keep), in the model's dtype"
	if !g.decoding {
		e.notes(generationNotes)
		return nil
	}
	// Decode: one token's working set against the cache, the cache's
	// update copies, the token's logits.
	work := in.layerWork(attD, act) + in.maskBytes(g, 1, attD, act)*attD
	var cp float64 // the cache update's copies of one layer, elements of K per batch row
	switch g.kind {
	case model.DynamicCache:
		cp = kvr * in.hd * g.T // torch.cat: old and new live (a full-attention layer's)
	case "sliding":
		cp = kvr * in.hd * kd
	case "quantized":
		cp = 2 * kvr * in.hd * g.T // dequantized copy and the concatenation
	}
	work += 2 * cp * act
	e.addPeak("decode_layer_workspace", GroupActivations, in.B, "B", work, PhaseDecode).Note =
		"one layer's transient tensors for one token, with the cache update's copies of that layer's K and V"
	e.addPeak("decode_logits", GroupLogits, in.B*in.V, "B*V", act/in.t, PhaseDecode)
	e.notes(generationNotes)
	return nil
}

// layerWork is the bytes per batch row and query token of one layer's
// largest transient set in a no-grad forward of q tokens attending to k
// keys (per query token): the residual stream and its normed copy (2H), then the larger of
// the attention block (Q and the attention output h*hd each, this
// forward's K and V, and under eager attention the scores and their fp32
// softmax per head and key) and the MLP (up and activation, and gate with
// a gated MLP).
func (in *inputs) layerWork(k, act float64) float64 {
	attn := (2*in.h/in.t*in.hd + 2*max(in.kv/in.t, 1)*in.hd) * act
	if in.w.Attention == model.MathAttention {
		attn += in.h / in.t * k * (act + 4)
	}
	ffn := 2.0
	if in.a.GatedMLP {
		ffn = 3
	}
	mlp := in.ffn / in.t * ffn * act
	return 2*in.H*act + max(attn, mlp)
}

// maskBytes is the bytes per mask element (B x q x k) of the attention mask
// transformers builds (masking_utils.py), 0 where none is: eager always
// builds one in the model's dtype; sdpa only where it cannot use is_causal
// (_ignore_causal_mask_sdpa: padding, q > 1 attending to more keys than
// queries, as a static cache's max_cache_len, or a sliding window no
// longer than the keys), as bool; flash-attention-2
// none.
func (in *inputs) maskBytes(g genShape, q, k, act float64) float64 {
	switch {
	case in.w.AttnImpl == model.FlashAttention2:
		return 0
	case in.w.Attention == model.MathAttention:
		return act
	case g.ragged || (q > 1 && k != q) || (g.kind == "sliding" && k >= g.n):
		return 1
	}
	return 0
}
