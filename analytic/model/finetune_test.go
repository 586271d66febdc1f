package model

import (
	"errors"
	"strings"
	"testing"
)

// TestLoRAParamsLlama3 holds the adapters of Llama-3-8B, r=8 on every
// linear layer, to PEFT's printed count ("trainable params: 20,971,520").
func TestLoRAParamsLlama3(t *testing.T) {
	a, err := Preset("llama-3-8b")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		targets string
		want    int64
	}{
		{LoRAAllLinear, 20971520},
		{"", 3407872}, // q_proj, v_proj: PEFT's default for llama
		{"q_proj,v_proj", 3407872},
		{" q_proj , k_proj ", 32 * 8 * (4096 + 4096 + 4096 + 1024)},
	} {
		n, err := LoRAParams(a, Workload{Batch: 1, Seq: 1, LoRARank: 8, LoRATargets: c.targets})
		if err != nil || n != c.want {
			t.Errorf("targets %q: %d, %v; want %d", c.targets, n, err, c.want)
		}
	}
}

// TestLinearModulesCoverLayers: every dense family's linear modules hold
// exactly the weights Params counts for a layer's attention and MLP
// matrices.
func TestLinearModulesCoverLayers(t *testing.T) {
	for _, fam := range Families() {
		a := Arch{Family: fam, Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 100}
		if f, _ := FamilyOf(fam); f.MoE {
			continue
		} else if f.Vision != nil {
			a.Vocab = 0 // images have no vocabulary
		}
		if err := a.Normalize(); err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		ms, err := LinearModules(a)
		if err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		var got int64
		for _, m := range ms {
			if m.Name == "" || m.In <= 0 || m.Out <= 0 {
				t.Errorf("%s: module %+v", fam, m)
			}
			got += int64(m.In) * int64(m.Out)
		}
		pb, _ := Params(a)
		var want int64
		for _, c := range pb.Components {
			if c.PerLayer && strings.HasSuffix(c.Name, ".weight") && (c.Group == ParamAttention || c.Group == ParamMLP) {
				want += c.Count
			}
		}
		if got != want {
			t.Errorf("%s: linear modules hold %d weights, Params %d", fam, got, want)
		}
	}
}

func TestLoRATargetErrors(t *testing.T) {
	a, _ := Preset("gpt2")
	for _, c := range []struct {
		w    Workload
		want []string
	}{
		{Workload{LoRARank: 8, LoRATargets: "q_proj"}, []string{"lora_targets", "c_attn, c_fc, c_proj", "all-linear"}},
		{Workload{LoRARank: 800, LoRATargets: "c_attn"}, []string{"lora_rank", "at most 768"}},
	} {
		_, err := LoRATargets(a, c.w)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%+v: %v, want a FieldError", c.w, err)
		}
		for _, s := range c.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%+v: %v lacks %q", c.w, err, s)
			}
		}
	}
}

// TestHeadParams holds the task heads to transformers 5.24's counts
// (from_config on the meta device of the configs in testdata).
func TestHeadParams(t *testing.T) {
	for _, c := range []struct {
		preset, head string
		labels       int
		want         int64
	}{
		{"bert-base-uncased", HeadSeqCls, 3, 109484547},
		{"bert-base-uncased", HeadTokenCls, 5, 108895493},
		{"bert-base-uncased", HeadMLM, 0, 109514298},
		{"bert-base-uncased", HeadNone, 0, 109482240},
		{"llama-3-8b", HeadSeqCls, 3, 7504936960},
		{"llama-3-8b", HeadTokenCls, 5, 7504945157},
		{"llama-3-8b", HeadNone, 0, 7504924672},
		{"gpt2", HeadSeqCls, 3, 124442112},
		{"gpt2", HeadTokenCls, 5, 124443653},
		{"gpt2", HeadNone, 0, 124439808},
	} {
		a, err := Preset(c.preset)
		if err != nil {
			t.Fatal(err)
		}
		a.Head, a.Labels = c.head, c.labels
		pb, err := Params(a)
		if err != nil {
			t.Fatalf("%s %s: %v", c.preset, c.head, err)
		}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		n, _ := TotalParams(a)
		if pb.Total != c.want || n != c.want {
			t.Errorf("%s %s:%d: Params %d, TotalParams %d, want %d", c.preset, c.head, c.labels, pb.Total, n, c.want)
		}
	}
}

func TestHeadErrors(t *testing.T) {
	for _, c := range []struct {
		preset, head string
		labels       int
		want         string
	}{
		{"gpt2", HeadMLM, 0, "decoder"},
		{"bert-base-uncased", HeadLM, 0, "encoder"},
		{"gpt2", HeadSeqCls, 0, "at least 1 label"},
		{"gpt2", "classifier", 0, "unknown head"},
	} {
		a, _ := Preset(c.preset)
		a.Head, a.Labels = c.head, c.labels
		if err := a.Normalize(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want an error with %q", c.preset, c.head, err, c.want)
		}
	}
}

func TestParseHeadAndWeights(t *testing.T) {
	for _, c := range []struct {
		in     string
		head   string
		labels int
		ok     bool
	}{
		{"lm", HeadLM, 0, true}, {"seq-cls:2", HeadSeqCls, 2, true}, {"token-cls:9", HeadTokenCls, 9, true},
		{"mlm", HeadMLM, 0, true}, {"none", HeadNone, 0, true}, {"seq-cls", "", 0, false}, {"seq-cls:0", "", 0, false},
		{"lm:2", "", 0, false}, {"", "", 0, false},
	} {
		h, n, err := ParseHead(c.in)
		if (err == nil) != c.ok || h != c.head || n != c.labels {
			t.Errorf("ParseHead(%q) = %q %d %v", c.in, h, n, err)
		}
	}
	for _, c := range []struct {
		in    string
		bytes float64 // per parameter of a 4096 x 4096 layer
		ok    bool
	}{
		{"", 0, true}, {"fp32", 4, true}, {"bf16", 2, true}, {"fp16", 2, true},
		{"int8", 1 + 4.0/4096, true}, {"nf4", 0.5 + 1.0/64 + 4.0/16384 + 1092.0/(4096*4096), true}, {"fp4", 0.5 + 1.0/64 + 4.0/16384 + 1092.0/(4096*4096), true},
		{"int4:128", 0.5 + 2.5/128 + 4.0/4096, true}, {"int4", 0, false}, {"int4:0", 0, false}, {"nf4:64", 0, false}, {"int3", 0, false},
	} {
		f, err := ParseWeights(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseWeights(%q): %v", c.in, err)
			continue
		}
		if got := f.BytesPerParam(4096, 4096); c.ok && got != c.bytes {
			t.Errorf("ParseWeights(%q).BytesPerParam = %v, want %v", c.in, got, c.bytes)
		}
	}
}

func TestFinetuneWorkloadErrors(t *testing.T) {
	for _, c := range []struct {
		w     Workload
		field string
	}{
		{Workload{LoRATargets: "q_proj"}, "lora_targets"},
		{Workload{LoRARank: -1}, "lora_rank"},
		{Workload{LoRARank: 8, LoRADropout: 1}, "lora_dropout"},
		{Workload{Weights: "nf4"}, "weights"},
		{Workload{Weights: "bf16"}, "weights"},
		{Workload{OptimizerImpl: "vectorized"}, "optimizer_impl"},
		{Workload{Optimizer: Lion, OptimizerImpl: ImplFused}, "optimizer_impl"},
		{Workload{GradAccum: -2}, "grad_accum"},
		{Workload{ZeroGrad: "maybe"}, "zero_grad"},
	} {
		c.w.Batch, c.w.Seq = 1, 1
		_, err := c.w.WithDefaults()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.w, err, c.field)
		}
	}
	w := Workload{Batch: 1, Seq: 1, Weights: "nf4", LoRARank: 8}
	if _, err := w.WithDefaults(); err != nil {
		t.Errorf("qlora: %v", err)
	}
}

func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{"nf4", "int4:128", "int4:", "int8", ":", "int4:-1", "int4:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		wf, err := ParseWeights(s)
		if err != nil {
			return
		}
		if b := wf.BytesPerParam(64, 64); s != "" && !(b > 0 && b <= 4.1) {
			t.Errorf("ParseWeights(%q): %v bytes per parameter", s, b)
		}
	})
}

func FuzzParseHead(f *testing.F) {
	for _, s := range []string{"lm", "seq-cls:3", "token-cls:", "mlm", "none", "seq-cls:-4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, n, err := ParseHead(s)
		if err != nil {
			return
		}
		if (h == HeadSeqCls || h == HeadTokenCls) != (n > 0) {
			t.Errorf("ParseHead(%q) = %q, %d", s, h, n)
		}
	})
}
