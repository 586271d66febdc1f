package scenarios

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestAutocastCacheTruth: under bf16 autocast with transformers' gradient
// checkpointing (reentrant or not), the 16-bit casts of the decoder
// layers' linear weights that are still alive after the loss, inside the
// autocast region, are the breakdown's autocast.weight_cache to the byte:
// autocast caches them although the checkpointed forward saves nothing.
// Under LoRA only the adapters' weights are cached (the frozen base is
// not). Once the region exits nothing of the cache is left.
func TestAutocastCacheTruth(t *testing.T) {
	needTorch(t)
	archs := []model.Arch{
		normalized(t, model.Arch{Family: "llama", Layers: 3, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}),
		normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000, ContextLength: 64}),
		famAArchs(t)["qwen3"],
	}
	type pyCase struct {
		HFConfig  map[string]any `json:"hf_config"`
		Batch     int            `json:"batch"`
		Seq       int            `json:"seq"`
		Reentrant bool           `json:"reentrant"`
		LoRARank  int            `json:"lora_rank"`
	}
	type tc struct {
		name string
		a    model.Arch
		w    model.Workload
	}
	var cases []tc
	var in []pyCase
	for _, a := range archs {
		for _, lora := range []int{0, 8} {
			for _, re := range []bool{true, false} {
				if lora > 0 && (a.Family != "llama" || !re) {
					continue
				}
				w := model.Workload{Batch: 2, Seq: 32, Backend: model.CPU, Precision: model.BF16Mixed,
					Checkpointing: model.FullCheckpointing, Loss: model.HFLoss, AttnImpl: model.SDPAAttn}
				if lora > 0 {
					w.LoRARank, w.LoRAAlpha, w.LoRATargets = lora, 16, model.LoRAAllLinear
				}
				m, err := HFConfig(a, w)
				if err != nil {
					t.Fatal(err)
				}
				cases = append(cases, tc{fmt.Sprintf("%s lora %d reentrant %v", a.Family, lora, re), a, w})
				in = append(in, pyCase{m, w.Batch, w.Seq, re, lora})
			}
		}
	}
	type result struct {
		Weights uint64 `json:"layer_weight_cache_bytes"`
		Biases  uint64 `json:"layer_bias_cache_bytes"`
		After   uint64 `json:"after_exit_bytes"`
	}
	res := pyJSON[result](t, filepath.Join("testdata", "autocast", "cache_truth.py"), in)
	for i, c := range cases {
		e, err := analytic.Predict("breakdown", c.a, c.w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cache, _ := e.Term("autocast.weight_cache")
		t.Logf("%-28s cache: breakdown %7d torch %7d bytes (biases %d, left out; after the region %d)",
			c.name, cache.Bytes, res[i].Weights, res[i].Biases, res[i].After)
		if res[i].Weights == 0 || cache.Bytes != res[i].Weights {
			t.Errorf("%s: autocast.weight_cache %d bytes, torch keeps %d of the layers' weight casts", c.name, cache.Bytes, res[i].Weights)
		}
		if cache.Phase != analytic.PhaseLoss {
			t.Errorf("%s: autocast.weight_cache in phase %q, want %q (freed when autocast exits, before backward)", c.name, cache.Phase, analytic.PhaseLoss)
		}
		if res[i].After != 0 {
			t.Errorf("%s: %d bytes of the cache outlive the autocast region", c.name, res[i].After)
		}
	}
}
