package analytic

import (
	"errors"
	"math"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// FuzzTermBytes holds TermBytes to its definition, ceil(feature*coef) with
// math.Ceil, and ErrOverflow outside [0, MaxBytes].
func FuzzTermBytes(f *testing.F) {
	for _, x := range []float64{0, -0.5, -1, 0.25, 1, 1.5, 1 << 52, 1<<52 + 1, 1 << 53, 1<<62 - 512, 1 << 62, 1 << 63, math.Inf(1), math.NaN()} {
		f.Add(x, 1.0)
		f.Add(x, 2.5)
	}
	f.Fuzz(func(t *testing.T, feature, coef float64) {
		got, err := TermBytes(feature, coef)
		x := math.Ceil(feature * coef)
		if !(x >= 0) || x > float64(MaxBytes) {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("TermBytes(%v, %v): got %d %v, want ErrOverflow", feature, coef, got, err)
			}
			return
		}
		if err != nil || got != uint64(x) {
			t.Fatalf("TermBytes(%v, %v): got %d %v, want %d", feature, coef, got, err, uint64(x))
		}
	})
}

// TestBreakdownCountsExtrasOnce checks that the breakdown holds every saved
// activation but input.ids and every ActivationExtras term exactly once, in
// the phase of the step where it is live, and that the forward/backward
// window is the saved activations plus the largest of its three moments.
func TestBreakdownCountsExtrasOnce(t *testing.T) {
	wantPhase := map[string]string{
		"logits.output": "", "logits.output16": PhaseLoss, "logits.shifted": PhaseLoss, "logits.fp32_copy": PhaseLoss,
		"ckpt.recompute_layer": PhaseRecompute, "ckpt.recompute_attn": PhaseRecompute,
		"logits_grad": PhaseBackward, "head_gradient": PhaseBackward, "autocast.weight_cache": PhaseLoss,
	}
	cases := []struct {
		model string
		w     model.Workload
		dom   string // the moment that must be the largest of the window
	}{
		{"gpt2", model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: 0.1}, PhaseBackward},
		{"gpt2", model.Workload{Batch: 1, Seq: 64}, PhaseBackward},
		{"gpt2", model.Workload{Batch: 4, Seq: 512, Precision: model.BF16Pure, Checkpointing: model.SelectiveCheckpointing}, PhaseBackward},
		// autocast's cache of the 16-bit weight copies (12.3 GiB) outweighs
		// one layer's recompute
		{"llama-2-7b", model.Workload{Batch: 1, Seq: 4096, Precision: model.BF16Mixed, Checkpointing: model.FullCheckpointing}, PhaseLoss},
		{"llama-2-7b", model.Workload{Batch: 1, Seq: 4096, Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing}, PhaseRecompute},
		{"llama-2-7b", model.Workload{Batch: 8, Seq: 2048, Precision: model.BF16Pure}, PhaseLoss},
		{"gpt2-medium", model.Workload{Batch: 4, Seq: 1024, Precision: model.BF16Mixed, TP: 2}, PhaseBackward},
	}
	for _, c := range cases {
		a := memPreset(t, c.model)
		e, err := Predict("breakdown", a, c.w)
		if err != nil {
			t.Fatalf("%s %+v: %v", c.model, c.w, err)
		}
		seen := map[string]int{}
		var moment = map[string]uint64{}
		var window, whole uint64
		for _, tm := range e.Terms {
			seen[tm.Name]++
			if p, ok := wantPhase[tm.Name]; ok && tm.Phase != p {
				t.Errorf("%s %s: got phase %q, want %q", c.model, tm.Name, tm.Phase, p)
			}
			switch tm.Phase {
			case PhaseLoss, PhaseBackward, PhaseRecompute:
				moment[tm.Phase] += tm.Bytes
			case PhaseForward:
				window += tm.Bytes
			case "":
				whole += tm.Bytes
			}
		}
		for name, n := range seen {
			if n != 1 {
				t.Errorf("%s: term %s appears %d times", c.model, name, n)
			}
		}
		saved, _ := SavedActivations(a, c.w)
		extras, _ := ActivationExtras(a, c.w)
		for _, tm := range append(saved, extras...) {
			if tm.Name == "input.ids" {
				if seen[tm.Name] != 0 {
					t.Errorf("%s: input.ids counted beside input_ids", c.model)
				}
				continue
			}
			if seen[tm.Name] != 1 {
				t.Errorf("%s: %s missing", c.model, tm.Name)
			}
		}
		big := max(moment[PhaseLoss], moment[PhaseBackward], moment[PhaseRecompute])
		if moment[c.dom] != big {
			t.Errorf("%s %+v: got moments %v, want %s the largest", c.model, c.w, moment, c.dom)
		}
		var opt uint64
		for _, tm := range e.Terms {
			if tm.Phase == PhaseOptimizer {
				opt += tm.Bytes
			}
		}
		if want := whole + max(window+big, opt); e.Peak != want {
			t.Errorf("%s %+v: got peak %d, want whole step %d + max(window %d + moment %d, optimizer %d) = %d",
				c.model, c.w, e.Peak, whole, window, big, opt, want)
		}
	}
}

func TestTotalsMoments(t *testing.T) {
	e := Estimate{Terms: []Term{
		{Name: "w", Bytes: 100},
		{Name: "act", Bytes: 50, Peak: true, Phase: PhaseForward},
		{Name: "copy", Bytes: 30, Peak: true, Phase: PhaseLoss},
		{Name: "grad", Bytes: 20, Peak: true, Phase: PhaseBackward},
		{Name: "grad2", Bytes: 15, Peak: true, Phase: PhaseBackward},
		{Name: "layer", Bytes: 10, Peak: true, Phase: PhaseRecompute},
		{Name: "g", Bytes: 60, Phase: PhaseOptimizer},
	}}
	s, p, err := e.Totals()
	if err != nil || s != 160 || p != 100+50+35 {
		t.Errorf("got steady %d peak %d %v, want 160 and 185 (backward the largest moment)", s, p, err)
	}
	e.Terms[5].Bytes = 40
	if _, p, _ = e.Totals(); p != 190 {
		t.Errorf("recompute the largest: got peak %d, want 190", p)
	}
	e.Terms[6].Bytes = 100
	if _, p, _ = e.Totals(); p != 200 {
		t.Errorf("optimizer the largest: got peak %d, want 200", p)
	}
}

// BenchmarkBreakdownArchMiss alternates two models, so that the cache of
// normalized Archs misses: Normalize and paramTotal on every call.
func BenchmarkBreakdownArchMiss(b *testing.B) {
	a1, a2 := memPreset(b, "gpt2"), memPreset(b, "gpt2-medium")
	w := model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: 0.1}
	var e Estimate
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := a1
		if i&1 == 1 {
			a = a2
		}
		i++
		if err := PredictInto(&e, "breakdown", a, w); err != nil {
			b.Fatal(err)
		}
	}
}
