package analytic

import (
	"errors"
	"math"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func moeArch(t *testing.T) model.Arch {
	t.Helper()
	a := model.Arch{Family: "mixtral", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 1000, Experts: 8, ExpertsPerToken: 2}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMoEExpertRows: the routed experts' tensors hold k*B*S rows with one
// expert-parallel rank whatever the imbalance, and the busiest rank's R
// rows with ep ranks: the mean with balance, the busiest expert's rows
// alone when each rank holds one expert.
func TestMoEExpertRows(t *testing.T) {
	a := moeArch(t)
	H, F, k, T := 64.0, 96.0, 2.0, 4.0*32
	for _, c := range []struct {
		name string
		w    model.Workload
		rows float64
	}{
		{"ep 1 balanced", model.Workload{Batch: 4, Seq: 32}, k * T},
		{"ep 1 imbalanced", model.Workload{Batch: 4, Seq: 32, MoEImbalance: 3}, k * T},
		{"ep 8 balanced", model.Workload{Batch: 4, Seq: 32, EP: 8, DP: 8}, k * T},
		{"ep 8 one expert a rank", model.Workload{Batch: 4, Seq: 32, EP: 8, DP: 8, MoEImbalance: 3}, 3 * k * T},
		// two experts a rank: the busiest at 3x the mean, its neighbour at the
		// mean of the other seven, (8-3)/7
		{"ep 4", model.Workload{Batch: 4, Seq: 32, EP: 4, DP: 4, MoEImbalance: 3}, k * T * 4 / 8 * (3 + 5.0/7)},
	} {
		c.w.Backend = model.CPU
		terms, err := SavedActivations(a, c.w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := float64(termBytes(&Estimate{Terms: terms}, "moe.expert_in")), 4*c.rows*H*2; math.Abs(got-want) > 1 {
			t.Errorf("%s: moe.expert_in %v bytes, want %v (%v rows)", c.name, got, want, c.rows)
		}
		if got, want := float64(termBytes(&Estimate{Terms: terms}, "moe.expert_act")), 4*4*c.rows*F*2; math.Abs(got-want) > 1 {
			t.Errorf("%s: moe.expert_act %v bytes, want %v", c.name, got, want)
		}
		if got, want := float64(termBytes(&Estimate{Terms: terms}, "moe.expert_out")), 4*k*T*H*2; math.Abs(got-want) > 1 {
			t.Errorf("%s: moe.expert_out %v bytes, want %v", c.name, got, want)
		}
	}
}

// TestMoEExpertParallelStates: with ep ranks a rank keeps its ep-th of the
// experts' weights, gradients and states; ZeRO shards all of them over dp.
func TestMoEExpertParallelStates(t *testing.T) {
	a := moeArch(t)
	n, err := model.TotalParams(a)
	if err != nil {
		t.Fatal(err)
	}
	experts := 2.0 * 8 * 3 * 64 * 96
	for _, c := range []struct {
		zero            int
		weights, states float64
	}{
		{0, float64(n) - experts*3/4, float64(n) - experts*3/4},
		{1, float64(n) - experts*3/4, float64(n) / 8},
		{3, float64(n) / 8, float64(n) / 8},
	} {
		e, err := Predict("breakdown", a, model.Workload{Batch: 1, Seq: 32, EP: 4, DP: 8, ZeRO: c.zero})
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range e.Terms {
			want := -1.0
			switch tm.Name {
			case "weights":
				want = 4 * c.weights
			case "optimizer_states":
				want = 8 * c.states
			}
			if want >= 0 && math.Abs(float64(tm.Bytes)-want) > 1 {
				t.Errorf("zero %d: %s %d bytes, want %.0f", c.zero, tm.Name, tm.Bytes, want)
			}
		}
	}
}

// TestMoEPresets: the MoE presets get a training estimate from the
// default formula; the formulas whose activations are a dense layer's say
// they do not apply, and the model-state ones still answer.
func TestMoEPresets(t *testing.T) {
	w := model.Workload{Batch: 1, Seq: 2048, Precision: model.BF16Mixed}
	for _, name := range []string{"mixtral-8x7b", "qwen1.5-moe-a2.7b", "qwen3-30b-a3b"} {
		a, err := model.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Predict("breakdown", a, w)
		if err != nil {
			t.Fatalf("%s: breakdown: %v", name, err)
		}
		if termBytes(&e, "moe.expert_act") == 0 || e.Peak <= e.Steady {
			t.Errorf("%s: breakdown has no expert activations (peak %d, steady %d)", name, e.Peak, e.Steady)
		}
		for _, f := range []string{"korthikanti", "megatron", "eleuther"} {
			if _, err := Predict(f, a, w); !errors.Is(err, ErrNotApplicable) {
				t.Errorf("%s: %s: got %v, want ErrNotApplicable", name, f, err)
			}
		}
		for _, f := range []string{"deepspeed", "accelerate", "seed"} {
			if _, err := Predict(f, a, w); err != nil {
				t.Errorf("%s: %s: %v", name, f, err)
			}
		}
		inf := w
		inf.Inference = true
		if _, err := Predict("eleuther", a, inf); err != nil {
			t.Errorf("%s: eleuther inference: %v", name, err)
		}
	}
}
