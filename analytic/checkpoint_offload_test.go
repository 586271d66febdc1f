package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestOffloadActivations: offloading moves the checkpointed layers' inputs
// (B*S*H*L residual bytes under full) from the GPU's saved activations to
// Estimate.Host and adds one layer's reload to the recompute; it needs
// checkpointing full or layers:N.
func TestOffloadActivations(t *testing.T) {
	a := model.Arch{Family: "gpt2", Layers: 4, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	const B, S, H, L = 2, 32, 64, 4
	for _, tc := range []struct {
		ckpt model.Checkpointing
		impl model.AttnImpl
		host float64
	}{
		{model.FullCheckpointing, "", 4 * B * S * H * L},
		{model.FullCheckpointing, model.EagerAttn, 4*B*S*H*L + 4*B*S*S}, // and the mask
		{"layers:2", "", 4 * B * S * H * 2},
		{"layers:3", model.SDPAAttn, 4 * B * S * H * 2}, // ceil(4/3)
	} {
		w := model.Workload{Batch: B, Seq: S, Precision: model.BF16Mixed, Checkpointing: tc.ckpt, AttnImpl: tc.impl}
		on := w
		on.OffloadActivations = true
		before, err := SavedActivations(a, w)
		if err != nil {
			t.Fatal(err)
		}
		after, err := SavedActivations(a, on)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(SavedBytes(before)) - float64(SavedBytes(after)); got != tc.host {
			t.Errorf("%s %q: %0.f bytes left the GPU's saved activations, want %.0f", tc.ckpt, tc.impl, got, tc.host)
		}
		e, err := Predict("breakdown", a, on)
		if err != nil {
			t.Fatal(err)
		}
		if e.Host == nil || float64(e.Host.Bytes) != tc.host {
			t.Errorf("%s %q: host %+v, want %.0f bytes", tc.ckpt, tc.impl, e.Host, tc.host)
		}
		reload := false
		for _, term := range e.Terms {
			reload = reload || term.Name == "ckpt.reload" && term.Bytes == 4*B*S*H && term.Phase == PhaseRecompute
		}
		if !reload {
			t.Errorf("%s %q: no ckpt.reload of one layer's input in the recompute", tc.ckpt, tc.impl)
		}
	}
	var fe *model.FieldError
	if _, err := Predict("breakdown", a, model.Workload{Batch: 1, Seq: 8, OffloadActivations: true}); !errors.As(err, &fe) || fe.Field != "offload_activations" {
		t.Errorf("offload without checkpointing: err %v, want a FieldError on offload_activations", err)
	}
}
