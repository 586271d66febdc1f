package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestEveryNthLayer: layers:1 saves what full does, layers:N with N > L
// what none does, and layers:2 of 4 layers half way between; the other
// formulas do not model it.
func TestEveryNthLayer(t *testing.T) {
	a := model.Arch{Family: "llama", Layers: 4, Hidden: 256, Heads: 8, KVHeads: 2, FFN: 688, Vocab: 1000}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	saved := func(ck model.Checkpointing) float64 {
		terms, err := SavedActivations(a, model.Workload{Batch: 2, Seq: 64, Precision: model.BF16Mixed, Checkpointing: ck})
		if err != nil {
			t.Fatal(err)
		}
		return float64(SavedBytes(terms))
	}
	none, full := saved(model.NoCheckpointing), saved(model.FullCheckpointing)
	for _, c := range []struct {
		ck   model.Checkpointing
		want float64
	}{
		{"layers:1", full},
		{"layers:5", none},
		{"layers:2", (none + full) / 2},
	} {
		if got := saved(c.ck); got < c.want-1 || got > c.want+1 {
			t.Errorf("%s: saved %.0f bytes, want %.0f", c.ck, got, c.want)
		}
	}
	_, err := Predict("korthikanti", a, model.Workload{Batch: 2, Seq: 64, Checkpointing: "layers:2"})
	if !errors.Is(err, ErrNotApplicable) {
		t.Errorf("korthikanti with layers:2: %v, want ErrNotApplicable", err)
	}
	if _, err := Predict("breakdown", a, model.Workload{Batch: 2, Seq: 64, Checkpointing: "layers:0"}); err == nil {
		t.Error("layers:0: no error, want one")
	}
}
