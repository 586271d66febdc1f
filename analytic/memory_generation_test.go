package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// tinyGen is the tiny Llama of the generation truth test
// (scenarios/generation_truth_test.go): per token of a batch of 2, K (or V)
// holds L*B*kv*hd = 2*2*2*16 = 128 elements.
var tinyGen = model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}

// TestGenerationTerms checks the generation terms against bytes computed by
// hand (prompt 12, generate 5: the cache holds T = 16 tokens at the last
// decode step).
func TestGenerationTerms(t *testing.T) {
	base := model.Workload{Batch: 2, Seq: 12, Inference: true, Backend: model.CPU, Generate: 5}
	with := func(f func(*model.Workload)) model.Workload { w := base; f(&w); return w }
	cases := []struct {
		name string
		w    model.Workload
		want map[string]uint64 // term -> bytes; 0: absent
		peak uint64            // peak - steady - next_token_logits (the larger phase); 0: not checked
	}{
		{"dynamic fp32 eager", base, map[string]uint64{
			"kv_cache_prompt": 12 * 128 * 2 * 4, "kv_cache": 16 * 128 * 2 * 4,
			"logits": 2 * 1000 * 4, "next_token_logits": 2 * 1000 * 4, "decode_logits": 2 * 1000 * 4,
			// per row: 2H*4 + max(attn (2*4*16 + 2*2*16)*4 + 4*12*(4+4), mlp 3*176*4) = 512 + 2112
			"prefill_layer_workspace": 2 * 12 * 2624,
			"attention_mask":          2 * 12 * 12 * 4, // eager: a float mask
			// per row: 512 + max(768 + 4*16*8, 2112) + mask 16*4 + torch.cat's copy 2*(2*16*16)*4
			"decode_layer_workspace": 2 * (2624 + 64 + 4096),
			"input_ids":              2 * 17 * 8,
		}, 12*128*8 + 2*12*2624 + 2*12*12*4 + 8000},
		{"static bf16-pure sdpa", with(func(w *model.Workload) {
			w.KVCache, w.Precision, w.Attention = model.StaticCache, model.BF16Pure, model.FlashAttention
		}), map[string]uint64{
			"kv_cache": 16 * 128 * 2 * 2, "kv_cache_prompt": 0,
			"attention_mask": 2 * 12 * 16, // sdpa, q 12 against 16 keys: a bool mask
			"logits":         2 * 1000 * 2,
		}, 0},
		{"sliding 8", with(func(w *model.Workload) { w.KVCache = "sliding:8" }), map[string]uint64{
			"kv_cache_prompt": 12 * 128 * 8, "kv_cache": 8 * 128 * 8, // the view holds min(T, W) tokens
		}, 0},
		{"quantized 4", with(func(w *model.Workload) { w.KVCache = "quantized:4" }), map[string]uint64{
			// 2 x (4/8 + 2*4/64) = 1.25 bytes per K and V element; residual (5-1) mod 128 = 4 tokens in fp32
			"kv_cache_prompt": 12 * 128 * 5 / 4, "kv_cache": 12 * 128 * 5 / 4, "kv_cache_residual": 4 * 128 * 8,
		}, 0},
		{"logits all", with(func(w *model.Workload) { w.Logits = model.AllLogits }), map[string]uint64{
			"logits": 2 * 12 * 1000 * 4,
		}, 0},
		{"ragged sdpa", with(func(w *model.Workload) {
			w.Batch, w.PromptLengths, w.Attention, w.Seq = 3, "12,7,3", model.FlashAttention, 99
		}), map[string]uint64{
			"kv_cache": 16 * 192 * 8, "attention_mask": 3 * 12 * 12, // padded to 12, bool mask for the padding
		}, 0},
		{"prefill only", with(func(w *model.Workload) { w.Generate = 1 }), map[string]uint64{
			"kv_cache_prompt": 12 * 128 * 8, "kv_cache": 0, "decode_logits": 0, "decode_layer_workspace": 0,
		}, 0},
	}
	for _, c := range cases {
		e, err := Predict("breakdown", tinyGen, c.w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for name, want := range c.want {
			got, ok := e.Term(name)
			switch {
			case want == 0 && ok && got.Bytes > 0:
				t.Errorf("%s: %s = %d bytes, want none", c.name, name, got.Bytes)
			case want > 0 && got.Bytes != want:
				t.Errorf("%s: %s = %d bytes, want %d", c.name, name, got.Bytes, want)
			}
		}
		if c.peak > 0 {
			ntl, _ := e.Term("next_token_logits")
			if got := e.Peak - e.Steady - ntl.Bytes; got != c.peak {
				t.Errorf("%s: peak - steady - next_token_logits = %d, want %d", c.name, got, c.peak)
			}
		}
	}
}

// TestGenerationDecodePeak: with a long generation the decode phase (the
// cache at its longest) sets the peak, with a long prompt the prefill.
func TestGenerationDecodePeak(t *testing.T) {
	a, err := model.Preset("llama-2-7b")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prompt, gen int
		want        string
	}{{4096, 16, PhasePrefill}, {16, 4096, PhaseDecode}} {
		w := model.Workload{Batch: 8, Seq: 1, Prompt: c.prompt, Generate: c.gen, Inference: true,
			Precision: model.BF16Pure, Attention: model.FlashAttention}
		e, err := Predict("breakdown", a, w)
		if err != nil {
			t.Fatal(err)
		}
		var pre, dec uint64
		for _, t := range e.Terms {
			switch t.Phase {
			case PhasePrefill:
				pre += t.Bytes
			case PhaseDecode:
				dec += t.Bytes
			}
		}
		got := PhasePrefill
		if dec > pre {
			got = PhaseDecode
		}
		if got != c.want {
			t.Errorf("prompt %d generate %d: prefill %d decode %d bytes, want %s to decide", c.prompt, c.gen, pre, dec, c.want)
		}
		ntl, _ := e.Term("next_token_logits")
		if e.Peak != e.Steady+ntl.Bytes+max(pre, dec) {
			t.Errorf("prompt %d generate %d: peak %d, want steady %d + %d + max(%d, %d)", c.prompt, c.gen, e.Peak, e.Steady, ntl.Bytes, pre, dec)
		}
		if err := FillDevice(&e, a, w, DeviceOptions{}); err != nil {
			t.Fatal(err)
		}
		if e.Device.AllocatedPeak < e.Peak-DefaultCUDAContext {
			t.Errorf("prompt %d generate %d: device allocated peak %d below the peak %d less the context", c.prompt, c.gen, e.Device.AllocatedPeak, e.Peak)
		}
		// the prompt's cache segments are released before the grown cache
		// (device_generation.go): no prompt-sized segments kept reserved
		if r, a := float64(e.Device.ReservedPeak), float64(e.Device.AllocatedPeak); r > 1.05*a {
			t.Errorf("prompt %d generate %d: reserved peak %g over 1.05 x allocated %g", c.prompt, c.gen, r, a)
		}
	}
}

func TestGenerationErrors(t *testing.T) {
	for _, c := range []struct {
		w     model.Workload
		field string
	}{
		{model.Workload{Batch: 1, Seq: 8, Generate: 4}, "generate"},
		{model.Workload{Batch: 1, Seq: 8, KVCache: "static"}, "kv_cache"},
		{model.Workload{Batch: 1, Seq: 8, Inference: true, KVCache: "paged"}, "kv_cache"},
		{model.Workload{Batch: 1, Seq: 8, Inference: true, KVCache: "quantized:5"}, "kv_cache"},
		{model.Workload{Batch: 1, Seq: 8, Inference: true, KVCache: "sliding:1"}, "kv_cache"},
		{model.Workload{Batch: 2, Seq: 8, Inference: true, PromptLengths: "4,5,6"}, "prompt_lengths"},
		{model.Workload{Batch: 2, Seq: 8, Inference: true, PromptLengths: "4,x"}, "prompt_lengths"},
		{model.Workload{Batch: 2, Seq: 8, Inference: true, PromptLengths: "4,6", Prompt: 5}, "prompt"},
		{model.Workload{Batch: 1, Seq: 8, Inference: true, Logits: "first"}, "logits"},
		{model.Workload{Batch: 1, Seq: 8, Inference: true, Generate: -1}, "generate"},
	} {
		_, err := Predict("breakdown", tinyGen, c.w)
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: error %v, want a field error on %s", c.w, err, c.field)
		}
	}
}
