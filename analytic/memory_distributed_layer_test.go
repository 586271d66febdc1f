package analytic

import (
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestLayerParamsMatchModel holds the FSDP wrapping unit (layerParams) to
// the model package's exact per-layer count for every preset, the new
// families' q/k norms and shared experts included.
func TestLayerParamsMatchModel(t *testing.T) {
	for _, name := range model.Presets() {
		a, err := model.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := model.Params(a)
		if err != nil {
			t.Fatal(err)
		}
		var in inputs
		seq := 8
		if n := model.ImageTokens(a); n > 0 {
			seq = n // a vision model's tokens per image
		}
		if err := in.prepare(a, model.Workload{Batch: 1, Seq: seq}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := in.layerParams(); got != float64(b.PerLayer) {
			t.Errorf("%s: layerParams %.0f, model's per-layer count %d", name, got, b.PerLayer)
		}
	}
}
