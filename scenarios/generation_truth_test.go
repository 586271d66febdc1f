package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestGenerationCacheTruth: transformers' generate() on a tiny Llama (and a
// Mistral for the sliding window) on the CPU keeps, in the past_key_values
// it returns, exactly the bytes the breakdown's decode-phase cache term
// (the prefill's with one token generated) says (counted by storage: a sliding layer's slice holds torch.cat's whole
// result), and its first forward computes the logits of the kept
// positions only (logits_to_keep=1). The quantized cache needs quanto or
// HQQ, which the truth environment does not install.
func TestGenerationCacheTruth(t *testing.T) {
	needTorch(t)
	a := model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}
	type tc struct {
		w      model.Workload
		window int
	}
	w := func(prec model.Precision, kv, lengths string, gen int) model.Workload {
		n := strings.Count(lengths, ",") + 1
		return model.Workload{Batch: n, Seq: 1, Inference: true, Backend: model.CPU, Precision: prec,
			Attention: model.FlashAttention, PromptLengths: lengths, Generate: gen, KVCache: kv}
	}
	cases := []tc{
		{w(model.FP32, "", "12,12", 5), 0},
		{w(model.BF16Pure, "", "12,12", 5), 0},
		{w(model.FP32, "static", "12,12", 5), 0},
		{w(model.BF16Pure, "static", "9,9,9", 8), 0},
		{w(model.FP32, "sliding:8", "12,12", 5), 8},
		{w(model.FP32, "sliding:32", "12,12", 5), 32},
		{w(model.FP32, "", "12,7,3", 5), 0},
		{w(model.FP32, "static", "12,7,3", 3), 0},
		// one token: the prefill's cache (kv_cache_prompt)
		{w(model.FP32, "", "12,12", 1), 0},
		{w(model.FP32, "sliding:8", "12,12", 1), 8},
	}
	type pyCase struct {
		Family        string `json:"family"`
		Layers        int    `json:"layers"`
		Hidden        int    `json:"hidden"`
		Heads         int    `json:"heads"`
		KVHeads       int    `json:"kv_heads"`
		FFN           int    `json:"ffn"`
		Vocab         int    `json:"vocab"`
		DType         string `json:"dtype"`
		PromptLengths []int  `json:"prompt_lengths"`
		Generate      int    `json:"generate"`
		Cache         string `json:"cache"`
		Window        int    `json:"window,omitempty"`
	}
	var in []pyCase
	for _, c := range cases {
		var ls []int
		for _, s := range strings.Split(c.w.PromptLengths, ",") {
			n, _ := strconv.Atoi(s)
			ls = append(ls, n)
		}
		dt := map[model.Precision]string{model.FP32: "fp32", model.BF16Pure: "bf16"}[c.w.Precision]
		cache := "dynamic"
		if c.w.KVCache == "static" {
			cache = "static"
		}
		in = append(in, pyCase{a.Family, a.Layers, a.Hidden, a.Heads, a.KVHeads, a.FFN, a.Vocab, dt, ls, c.w.Generate, cache, c.window})
	}
	res := cacheTruth(t, in)
	for i, c := range cases {
		name := fmt.Sprintf("%s %s prompts %s generate %d", c.w.Precision, c.w.KVCache, c.w.PromptLengths, c.w.Generate)
		e, err := analytic.Predict("breakdown", a, c.w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		kv, ok := e.Term("kv_cache")
		if !ok { // no decode step
			kv, _ = e.Term("kv_cache_prompt")
		}
		lg, _ := e.Term("logits")
		t.Logf("%-40s cache: breakdown %6d transformers %6d bytes (%d tokens); prefill logits %g / %d elements",
			name, kv.Bytes, res[i].CacheBytes, res[i].CacheTokens, lg.Feature, res[i].PrefillLogits)
		if kv.Bytes != res[i].CacheBytes {
			t.Errorf("%s: kv_cache %d bytes, transformers keeps %d", name, kv.Bytes, res[i].CacheBytes)
		}
		if int64(lg.Feature) != res[i].PrefillLogits {
			t.Errorf("%s: prefill logits %g elements, transformers computes %d", name, lg.Feature, res[i].PrefillLogits)
		}
	}
}
