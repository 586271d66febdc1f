package sim

import (
	"math"
	"testing"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestSimFinetune plays issue 15's setups on the simulated H100 and holds
// their allocated peaks to the breakdown's device-level figure within 5%
// (the simulator keeps full fine-tuning's saved activations under LoRA,
// an upper bound), and each setup's effect on the peak to its direction.
func TestSimFinetune(t *testing.T) {
	a, err := model.Preset("llama-2-7b")
	if err != nil {
		t.Fatal(err)
	}
	base := model.Workload{Batch: 1, Seq: 512, Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing}
	peak := func(w model.Workload) (sim, est uint64) {
		t.Helper()
		d, err := New(Config{Arch: a, Workload: w, Steps: 2, StepDuration: time.Millisecond})
		if err != nil {
			t.Fatalf("%+v: %v", w, err)
		}
		sim, _ = d.Peaks()
		var e analytic.Estimate
		if err := analytic.PredictDevice(&e, "breakdown", a, w, analytic.DeviceOptions{}); err != nil {
			t.Fatal(err)
		}
		return sim, e.Device.AllocatedPeak
	}
	qlora := base
	qlora.LoRARank, qlora.LoRATargets, qlora.Weights = 16, model.LoRAAllLinear, model.WeightsNF4
	lora := qlora
	lora.Weights = ""
	ada := base
	ada.Optimizer = model.Adafactor
	accum := lora
	accum.GradAccum = 4
	full, _ := peak(base)
	for _, c := range []struct {
		name string
		w    model.Workload
		less bool
	}{{"qlora", qlora, true}, {"lora", lora, true}, {"adafactor", ada, true}, {"lora accum 4", accum, true}} {
		s, e := peak(c.w)
		t.Logf("%-14s sim %6.2f GiB breakdown %6.2f GiB (full fine-tuning sim %6.2f GiB)", c.name, float64(s)/(1<<30), float64(e)/(1<<30), float64(full)/(1<<30))
		if math.Abs(float64(s)/float64(e)-1) > 0.05 {
			t.Errorf("%s: sim peak %d, breakdown %d", c.name, s, e)
		}
		if (s < full) != c.less {
			t.Errorf("%s: sim peak %d vs full fine-tuning %d", c.name, s, full)
		}
	}
}

// TestSimHeads: a classifier head in place of Llama's LM head plays no
// B*S*V logits, so its peak is below the LM head's and within 5% of the
// breakdown's device-level figure.
func TestSimHeads(t *testing.T) {
	w := model.Workload{Batch: 2, Seq: 512, Precision: model.BF16Mixed}
	peak := func(a model.Arch) (sim, est uint64) {
		t.Helper()
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Arch: a, Workload: w, Steps: 2, StepDuration: time.Millisecond})
		if err != nil {
			t.Fatalf("%s: %v", a.Head, err)
		}
		sim, _ = d.Peaks()
		var e analytic.Estimate
		if err := analytic.PredictDevice(&e, "breakdown", a, w, analytic.DeviceOptions{}); err != nil {
			t.Fatal(err)
		}
		return sim, e.Device.AllocatedPeak
	}
	base := model.Arch{Family: "llama", Layers: 4, Hidden: 1024, Heads: 8, FFN: 2816, Vocab: 32000}
	lm, _ := peak(base)
	for _, h := range []struct {
		head   string
		labels int
	}{{model.HeadSeqCls, 3}, {model.HeadTokenCls, 9}} {
		a := base
		a.Head, a.Labels = h.head, h.labels
		s, e := peak(a)
		t.Logf("%-10s sim %8.1f MiB breakdown %8.1f MiB (lm head sim %8.1f MiB)", h.head, float64(s)/(1<<20), float64(e)/(1<<20), float64(lm)/(1<<20))
		if math.Abs(float64(s)/float64(e)-1) > 0.05 {
			t.Errorf("%s: sim peak %d, breakdown %d", h.head, s, e)
		}
		if s >= lm {
			t.Errorf("%s: sim peak %d, not below the lm head's %d", h.head, s, lm)
		}
	}
}
