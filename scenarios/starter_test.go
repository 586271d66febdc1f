package scenarios

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// starterSpecs loads every starter spec (scenarios/*.yaml).
func starterSpecs(t testing.TB) []*Spec {
	t.Helper()
	paths, err := filepath.Glob("*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no starter specs found (%v)", err)
	}
	specs := make([]*Spec, 0, len(paths))
	for _, p := range paths {
		s, err := LoadSpec(p)
		if err != nil {
			t.Fatalf("starter spec: %v", err)
		}
		specs = append(specs, s)
	}
	return specs
}

func TestStarterSpecsParseAndResolve(t *testing.T) {
	specs := starterSpecs(t)
	if n := len(specs); n < 12 || n > 20 {
		t.Errorf("got %d starter specs, want 12 to 20", n)
	}
	presets := map[string]bool{}
	precisions := map[model.Precision]bool{}
	var flash, ckpt bool
	for _, s := range specs {
		if want := strings.TrimSuffix(filepath.Base(s.File), ".yaml"); s.Name != want {
			t.Errorf("%s: name %q, want the file's name %q", s.File, s.Name, want)
		}
		a, w, err := s.Resolve()
		if err != nil {
			t.Errorf("%s: Resolve: %v", s.File, err)
			continue
		}
		if _, err := model.Params(a); err != nil {
			t.Errorf("%s: Params: %v", s.File, err)
		}
		presets[s.Model.Preset] = true
		precisions[w.Precision] = true
		flash = flash || w.Attention == model.FlashAttention
		ckpt = ckpt || w.Checkpointing != model.NoCheckpointing
	}
	for _, p := range []string{"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"} {
		if !presets[p] {
			t.Errorf("no starter spec uses preset %s", p)
		}
	}
	if !precisions[model.FP32] || !precisions[model.BF16Mixed] || !flash || !ckpt {
		t.Errorf("starter set lacks fp32, bf16, flash attention or checkpointing: precisions %v, flash %v, checkpointing %v", precisions, flash, ckpt)
	}
}

// TestStarterSpecsSpanH100 checks, with the breakdown formula, that the
// starter set spans small to near-full use of an 80 GB H100 and that the
// spec meant to run out of memory would not fit.
func TestStarterSpecsSpanH100(t *testing.T) {
	h100, err := analytic.GPUByName("h100-80gb")
	if err != nil {
		t.Fatal(err)
	}
	const eighty = 80 << 30
	minPeak, maxFit, ooms := breakdownSpan(t, starterSpecs(t), h100, 95)
	if ooms != 1 {
		t.Errorf("got %d specs with expect: oom, want 1", ooms)
	}
	if minPeak > eighty/10 {
		t.Errorf("smallest starter peak: got %.1f GiB, want under 10%% of 80 GiB", float64(minPeak)/(1<<30))
	}
	if maxFit < eighty*7/10 {
		t.Errorf("largest starter peak that fits: got %.1f GiB, want over 70%% of 80 GiB", float64(maxFit)/(1<<30))
	}
}

func TestStarterGrids(t *testing.T) {
	starter, err := LoadGrid(filepath.Join("grids", "starter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := starter.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(specs), len(starterSpecs(t)); got < want {
		t.Errorf("starter grid: got %d scenarios, want at least the %d starter specs", got, want)
	}
	ci, err := LoadGrid(filepath.Join("grids", "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	specs, err = ci.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 4 || len(specs) > 12 {
		t.Errorf("ci grid: got %d scenarios, want a small grid of 4 to 12", len(specs))
	}
	for _, s := range specs {
		if _, _, err := s.Resolve(); err != nil {
			t.Errorf("ci grid %s: %v", s.Name, err)
		}
	}
}

// breakdownSpan predicts each spec's peak with the breakdown formula and
// returns the smallest peak and the largest that fits among the specs meant
// to fit, and how many are meant to run out of memory. A spec meant to run
// out of memory must not fit gpu; one meant to fit must stay within
// fitPct percent of it.
func breakdownSpan(t *testing.T, specs []*Spec, gpu analytic.GPU, fitPct uint64) (minPeak, maxFit uint64, ooms int) {
	t.Helper()
	minPeak = ^uint64(0)
	for _, s := range specs {
		a, w, err := s.Resolve()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		e, err := analytic.Predict("breakdown", a, w)
		if err != nil {
			t.Fatalf("%s: Predict: %v", s.Name, err)
		}
		t.Logf("%-45s breakdown peak %6.1f GiB (%3.0f%% of %s)", s.Name, float64(e.Peak)/(1<<30), 100*float64(e.Peak)/float64(gpu.Bytes), gpu.Name)
		if s.Expect == ExpectOOM {
			ooms++
			if e.Peak <= gpu.Bytes {
				t.Errorf("%s is meant to run out of memory, but breakdown predicts %d bytes, within the %s's %d", s.Name, e.Peak, gpu.Name, gpu.Bytes)
			}
			continue
		}
		if e.Peak > gpu.Bytes*fitPct/100 {
			t.Errorf("%s is meant to fit, but breakdown predicts %d bytes, over %d%% of the %s's %d", s.Name, e.Peak, fitPct, gpu.Name, gpu.Bytes)
		}
		minPeak, maxFit = min(minPeak, e.Peak), max(maxFit, e.Peak)
	}
	return minPeak, maxFit, ooms
}
