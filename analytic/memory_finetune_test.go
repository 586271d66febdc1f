package analytic

import (
	"errors"
	"math"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func ftTerm(e Estimate, name string) (uint64, string, bool) {
	t, ok := e.Term(name)
	return t.Bytes, t.Phase, ok
}

// TestQLoRABreakdown: Llama-3-8B with NF4 weights and r=8 adapters on
// every linear layer keeps its linear weights at 0.5159 bytes a
// parameter, the rest in bf16, fp32 adapters with fp32 gradients and two
// fp32 AdamW states, no gradient for the frozen head.
func TestQLoRABreakdown(t *testing.T) {
	a, err := model.Preset("llama-3-8b")
	if err != nil {
		t.Fatal(err)
	}
	w := model.Workload{Batch: 1, Seq: 2048, Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing,
		LoRARank: 8, LoRATargets: model.LoRAAllLinear, Weights: model.WeightsNF4}
	e, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	const adapters, linear = 20971520, 32 * (2*4096*4096 + 2*4096*1024 + 3*4096*14336)
	nf4 := 0.5 + 1.0/64 + 4.0/16384 // and 1092 bytes of code books per tensor
	for _, c := range []struct {
		name string
		want float64
	}{
		{"weights_quantized", linear*nf4 + 32*7*1092},
		{"weights", float64(8030261248-linear) * 2},
		{"lora_weights", adapters * 4},
		{"gradients", adapters * 4},
		{"optimizer_states", adapters * 8},
		{"optimizer_step_counters", 2 * 7 * 32 * 4},
		{"dequant_buffer", 4096 * 14336 * 2},
		{"optimizer_step_temporaries", adapters * 4},
	} {
		got, _, ok := ftTerm(e, c.name)
		if !ok || math.Abs(float64(got)-c.want) > 1 {
			t.Errorf("%s: %d bytes (present %v), want %.0f", c.name, got, ok, c.want)
		}
	}
	if _, _, ok := ftTerm(e, "head_gradient"); ok {
		t.Error("a frozen head has no head_gradient term")
	}
	// Fewer saved activations than full fine-tuning: no norm or head
	// inputs kept for frozen weights.
	full := w
	full.LoRARank, full.LoRATargets, full.Weights = 0, "", ""
	ef, err := Predict("breakdown", a, full)
	if err != nil {
		t.Fatal(err)
	}
	if e.Peak >= ef.Peak/2 {
		t.Errorf("qlora peak %d, full fine-tuning %d: want far less", e.Peak, ef.Peak)
	}
}

// TestFinetuneOptimizers: the optimizers' states and temporaries.
func TestFinetuneOptimizers(t *testing.T) {
	a, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	n := 124439808.0
	for _, c := range []struct {
		w         model.Workload
		states    float64 // bytes per parameter, within 1%
		temp      float64 // bytes of the temporaries, within 1%
		heldGrads bool
	}{
		{model.Workload{Optimizer: model.AdamW}, 8, 4 * n, false},
		{model.Workload{Optimizer: model.AdamW, OptimizerImpl: model.ImplFused}, 8, 0, false},
		{model.Workload{Optimizer: model.AdamW, OptimizerImpl: model.ImplForLoop}, 8, 4 * 50257 * 768, false},
		{model.Workload{Optimizer: model.Lion}, 4, 0, false},
		{model.Workload{Optimizer: model.PagedAdamW8bit}, 2, 0, false},
		{model.Workload{Optimizer: model.Adafactor}, 4 * (50257 + 768 + 1024 + 768 + 12*(768+2304+768+768+768+3072+3072+768) + 12*(4*768+2304+768+3072+768) + 2*768) / n, 4 * n, false},
		{model.Workload{GradAccum: 4}, 8, 4 * n, true},
		{model.Workload{ZeroGrad: model.ZeroGradZeros}, 8, 4 * n, true},
	} {
		c.w.Batch, c.w.Seq = 1, 128
		e, err := Predict("breakdown", a, c.w)
		if err != nil {
			t.Fatalf("%+v: %v", c.w, err)
		}
		st, _, _ := ftTerm(e, "optimizer_states")
		if math.Abs(float64(st)/n-c.states) > 0.01*c.states {
			t.Errorf("%s %s: states %.3f bytes a parameter, want %.3f", c.w.Optimizer, c.w.OptimizerImpl, float64(st)/n, c.states)
		}
		tmp, _, _ := ftTerm(e, "optimizer_step_temporaries")
		if math.Abs(float64(tmp)-c.temp) > 0.01*c.temp+1 {
			t.Errorf("%s %s: temporaries %d, want %.0f", c.w.Optimizer, c.w.OptimizerImpl, tmp, c.temp)
		}
		_, phase, _ := ftTerm(e, "gradients")
		if (phase == "") != c.heldGrads {
			t.Errorf("%+v: gradients in phase %q, held %v", c.w, phase, c.heldGrads)
		}
	}
}

// TestFinetuneBreakdownOnly: the other formulas do not model these
// settings and say so.
func TestFinetuneBreakdownOnly(t *testing.T) {
	a, _ := model.Preset("gpt2")
	w := model.Workload{Batch: 1, Seq: 128, LoRARank: 4}
	for _, f := range Formulas() {
		_, err := Predict(f, a, w)
		if f == "breakdown" {
			if err != nil {
				t.Errorf("breakdown: %v", err)
			}
		} else if !errors.Is(err, ErrNotApplicable) {
			t.Errorf("%s: %v, want ErrNotApplicable", f, err)
		}
	}
}

// TestQuantizedInference: an NF4 inference holds the quantized weights
// and the 16-bit copy of one weight.
func TestQuantizedInference(t *testing.T) {
	a, _ := model.Preset("llama-2-7b")
	w := model.Workload{Batch: 1, Seq: 512, Inference: true, Precision: model.BF16Pure, Weights: model.WeightsNF4}
	e, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	q, _, _ := ftTerm(e, "weights_quantized")
	rest, _, _ := ftTerm(e, "weights")
	if total := float64(q + rest); total < 3.5e9 || total > 4.2e9 {
		t.Errorf("nf4 llama-2-7b weights %.2f GB, want about 3.9", total/1e9)
	}
	var d Device
	if err := PredictDevice(&e, "breakdown", a, w, DeviceOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = d
	if e.DevicePeak() < q+rest {
		t.Errorf("device peak %d below the weights %d", e.DevicePeak(), q+rest)
	}
}
