package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestWindowCacheTruth: generate() of the sliding-window families'
// classes (gemma2, gemma3_text with local and global layers, starcoder2;
// built from HFConfig's config.json) keeps in its past_key_values exactly
// the breakdown's KV cache with no --kv-cache given: DynamicCache(config)
// and StaticCache(config) give the local layers a sliding-window layer
// (at most W tokens after a decode step; min(W, max_cache_len) static),
// the global layers every token. Windows of 16 with prompts of 12 and 20
// new tokens put the decode past the window.
func TestWindowCacheTruth(t *testing.T) {
	needTorch(t)
	archs := windowArchs(t)
	type tc struct {
		name string
		w    model.Workload
	}
	var cases []tc
	var in []hfCacheCase
	for _, n := range []string{"gemma2", "gemma3", "starcoder2"} {
		for _, c := range []struct {
			cache string
			gen   int
		}{{"", 20}, {"", 3}, {"static", 20}} {
			w := model.Workload{Batch: 2, Seq: 1, Inference: true, Backend: model.CPU, Precision: model.FP32,
				Attention: model.MathAttention, PromptLengths: "12,12", Generate: c.gen, KVCache: c.cache}
			m, err := HFConfig(archs[n], w)
			if err != nil {
				t.Fatal(err)
			}
			cache := "dynamic"
			if c.cache != "" {
				cache = c.cache
			}
			cases = append(cases, tc{fmt.Sprintf("%s %s generate %d", n, cache, c.gen), w})
			in = append(in, hfCacheCase{m, "fp32", []int{12, 12}, c.gen, cache})
		}
	}
	res := cacheTruth(t, in)
	for i, c := range cases {
		var fam string
		fmt.Sscan(c.name, &fam)
		e, err := analytic.Predict("breakdown", archs[fam], c.w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		kv, ok := e.Term("kv_cache")
		if !ok { // no decode step
			kv, _ = e.Term("kv_cache_prompt")
		}
		t.Logf("%-32s cache: breakdown %6d transformers %6d bytes", c.name, kv.Bytes, res[i].CacheBytes)
		if kv.Bytes != res[i].CacheBytes {
			t.Errorf("%s: kv_cache %d bytes, transformers keeps %d", c.name, kv.Bytes, res[i].CacheBytes)
		}
	}
}

// hfCacheCase is one case of testdata/generation/cache_truth.py on the
// class of a config.json (scenarios.HFConfig's).
type hfCacheCase struct {
	HFConfig      map[string]any `json:"hf_config"`
	DType         string         `json:"dtype"`
	PromptLengths []int          `json:"prompt_lengths"`
	Generate      int            `json:"generate"`
	Cache         string         `json:"cache"`
}

// cacheTruthResult is what testdata/generation/cache_truth.py prints for
// one case.
type cacheTruthResult struct {
	CacheBytes    uint64 `json:"cache_bytes"`
	CacheTokens   int    `json:"cache_tokens"`
	PrefillLogits int64  `json:"prefill_logits"`
}

// cacheTruth runs testdata/generation/cache_truth.py on cases (its JSON
// input, one object per case) and returns one result per case.
func cacheTruth[C any](t *testing.T, cases []C) []cacheTruthResult {
	t.Helper()
	return pyJSON[cacheTruthResult](t, filepath.Join("testdata", "generation", "cache_truth.py"), cases)
}

// pyJSON runs the Python script at path with cases as its JSON input and
// decodes the JSON list it prints, one R per case.
func pyJSON[R, C any](t *testing.T, path string, cases []C) []R {
	t.Helper()
	body, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python(), path)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", filepath.Base(path), err, stderr.String())
	}
	var res []R
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("%s printed %d bytes for %d cases: %v", filepath.Base(path), len(out), len(cases), err)
	}
	return res
}
