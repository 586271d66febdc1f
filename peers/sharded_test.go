package peers

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestMemTrackerSharded runs peers.py's memtracker on a tiny Llama sharded
// over a fake world of two ranks (FSDP2 fully_shard, FSDPMemTracker, fake
// CPU tensors): under ZeRO 3 and ZeRO 2 rank 0 holds half the fp32
// weights and gradients and half the AdamW states (under ZeRO 3 the model
// states memval's breakdown gives); ZeRO 2 keeps the unsharded parameters from forward to backward, so
// its peak is above ZeRO 3's; ZeRO 1 is a case fully_shard cannot express.
func TestMemTrackerSharded(t *testing.T) {
	py := needPeers(t)
	dir := t.TempDir()
	a := model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	var cases []Case
	for _, z := range []int{3, 2, 1} {
		w, err := model.Workload{Batch: 2, Seq: 32, Precision: model.FP32, Backend: model.CPU, ZeRO: z, DP: 2}.WithDefaults()
		if err != nil {
			t.Fatal(err)
		}
		mv, params, err := MemvalTruth(a, w)
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "configs", "llama")
		if err := writeConfig(cfg, a, w); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, Case{Name: "zero" + string(rune('0'+z)), Set: SetTruth, Arch: a, Workload: w, Params: params, ConfigDir: cfg, Memval: mv})
	}
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "cases.json"), filepath.Join(dir, "peers.json")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("..", "scripts", "peers", "peers.py"), "--cases", in, "--out", out, "--peers", "memtracker")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("peers.py: %v\n%s", err, tail(string(b), 2000))
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseResults(raw)
	if err != nil || len(rs) != len(cases) {
		t.Fatalf("%d results for %d cases: %v", len(rs), len(cases), err)
	}
	got := map[string]Result{}
	for _, r := range rs {
		got[r.Case] = r
	}
	for _, c := range cases[:2] {
		r := got[c.Name]
		if r.Error != "" || r.Cannot != "" {
			t.Fatalf("%s: error %q cannot %q", c.Name, r.Error, r.Cannot)
		}
		half := 4 * float64(c.Params) / 2
		for _, tc := range []struct {
			q    string
			want float64
			tol  float64
		}{
			{Weights, half, 0},
			{Gradients, half, 0},
			{Optimizer, 2 * half, 0.001}, // exp_avg and exp_avg_sq; the step counts are a few bytes
		} {
			if g := r.Quantities[tc.q]; math.Abs(g-tc.want) > tc.tol*tc.want {
				t.Errorf("%s: memtracker's %s %.0f, want %.0f (within %.1f %%)", c.Name, tc.q, g, tc.want, 100*tc.tol)
			}
		}
		if ms := r.Quantities[ModelStates]; c.Workload.ZeRO == 3 && math.Abs(ms-c.Memval[ModelStates]) > 0.001*ms {
			t.Errorf("%s: memtracker's model states %.0f, memval's %.0f", c.Name, ms, c.Memval[ModelStates])
		}
		if r.Quantities[Peak] <= r.Quantities[ModelStates] {
			t.Errorf("%s: peak %.0f not above the model states %.0f", c.Name, r.Quantities[Peak], r.Quantities[ModelStates])
		}
	}
	if z3, z2 := got["zero3"].Quantities[Peak], got["zero2"].Quantities[Peak]; z2 <= z3 {
		t.Errorf("ZeRO 2's peak %.0f not above ZeRO 3's %.0f", z2, z3)
	}
	if c := got["zero1"].Cannot; !strings.Contains(c, "ZeRO 1") {
		t.Errorf("ZeRO 1: cannot %q, want the reason fully_shard cannot express it", c)
	}
}
