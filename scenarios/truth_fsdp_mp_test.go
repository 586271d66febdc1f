package scenarios

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// fsdpMPScript is scenarios/fsdp_mp.py: FSDP2 with MixedPrecisionPolicy on
// the CPU (gloo), measured.
//
//go:embed fsdp_mp.py
var fsdpMPScript []byte

// fsdpMPJob is one job of fsdp_mp.py.
type fsdpMPJob struct {
	Job     TrainJob `json:"job"`
	FSDPMP  string   `json:"fsdp_mp"`
	Reshard bool     `json:"reshard"`
}

// fsdpMPResult is what fsdp_mp.py measured of one job.
type fsdpMPResult struct {
	GatheredDTypes    []string `json:"gathered_dtypes"`
	LayerGathered     float64  `json:"layer_gathered_bytes"`
	MaxGathered       float64  `json:"max_gathered_bytes"`
	MaxGatheredLayers int      `json:"max_gathered_layers"`
	AfterForward      float64  `json:"after_forward_gathered_bytes"`
	Saved             float64  `json:"saved_bytes"`
	ShardParams       float64  `json:"shard_param_bytes"`
	ShardParamDTypes  []string `json:"shard_param_dtypes"`
	ShardGrads        float64  `json:"shard_grad_bytes"`
	ShardGradDTypes   []string `json:"shard_grad_dtypes"`
	OptimStates       float64  `json:"optim_state_bytes"`
	OptimStateDTypes  []string `json:"optim_state_dtypes"`
	World             int      `json:"world"`
}

// runFSDPMP runs fsdp_mp.py on jobs with world ranks.
func runFSDPMP(t *testing.T, world int, jobs []fsdpMPJob) []fsdpMPResult {
	t.Helper()
	dir := t.TempDir()
	for i := range jobs {
		jobs[i].Job = jobs[i].Job.withDefaults()
	}
	spec, err := json.Marshal(map[string]any{"world": world, "jobs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"train.py": TrainScript(), "fsdp_mp.py": fsdpMPScript, "job.json": spec}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(Python(), filepath.Join(dir, "fsdp_mp.py"), "--train", filepath.Join(dir, "train.py"), "--job", filepath.Join(dir, "job.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fsdp_mp.py: %v\n%s", err, stderr.String())
	}
	var res []fsdpMPResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r fsdpMPResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("fsdp_mp.py printed %s: %v", sc.Bytes(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(jobs) {
		t.Fatalf("fsdp_mp.py: %d results for %d jobs\n%s", len(res), len(jobs), stderr.String())
	}
	return res
}

// TestFSDPMixedTruth: torch 2.11's FSDP2 (fully_shard on every layer and
// the root, MixedPrecisionPolicy) on the CPU with gloo, two ranks,
// keeps per rank what --fsdp-mp's breakdown says, within 0.1%: fp32 shards
// of the parameters (weights), of the gradients (gradients, with reduce
// dtype bf16 or fp32) and AdamW's states (optimizer_states); the layers
// compute with bf16 copies of their parameters, and save the activations
// of a pure bf16 model (SavedActivations of bf16-pure). With zero 2
// (reshard_after_forward=False) every unit's bf16 copy stays gathered after
// the forward (fsdp_unsharded_params); with zero 3 none does, and a layer's
// copy is its parameters in bf16. Under zero 3 the root unit (embeddings,
// head, final norm) stays gathered while the layers run, one layer at a
// time on the CPU (no prefetch): memval's zero3_gather_buffer.
func TestFSDPMixedTruth(t *testing.T) {
	needTorch(t)
	gpt2 := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		a       model.Arch
		mp      string
		reshard bool
		world   int
	}
	// two ranks in one launch (a world of one runs the same code)
	cases := []tc{{llama, "bf16:fp32", true, 2}, {llama, "bf16", false, 2}, {gpt2, "bf16:fp32", true, 2}, {gpt2, "bf16", true, 2}}
	for _, world := range []int{2} {
		var jobs []fsdpMPJob
		var cs []tc
		for _, c := range cases {
			if c.world == world {
				w := model.Workload{Batch: 2, Seq: 32, Precision: model.FP32, Backend: model.CPU}
				jobs = append(jobs, fsdpMPJob{Job: TrainJob{Arch: c.a, Workload: w, Seed: 1, Device: "cpu", Impl: "hand"}, FSDPMP: c.mp, Reshard: c.reshard})
				cs = append(cs, c)
			}
		}
		res := runFSDPMP(t, world, jobs)
		for i, c := range cs {
			checkFSDPMixed(t, c.a, c.mp, c.reshard, world, res[i])
		}
	}
}

// checkFSDPMixed compares one measured FSDP2 run with the breakdown.
func checkFSDPMixed(t *testing.T, a model.Arch, mp string, reshard bool, world int, r fsdpMPResult) {
	t.Helper()
	zero := 3
	if !reshard {
		zero = 2
	}
	name := fmt.Sprintf("%s fsdp_mp %s zero %d world %d", a.Family, mp, zero, world)
	w := model.Workload{Batch: 2, Seq: 32, Precision: model.FP32, Backend: model.CPU, Engine: model.FSDP2, ZeRO: zero, DP: world, FSDPMixed: mp}
	e, err := analytic.Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	term := map[string]float64{}
	for _, x := range e.Terms {
		term[x.Name] += float64(x.Bytes)
	}
	pure := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Pure, Backend: model.CPU}
	acts, err := analytic.SavedActivations(a, pure)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := model.Params(a)
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want float64) {
		t.Logf("%-36s %-24s measured %9.0f memval %9.0f", name, what, got, want)
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: %s measured %.0f bytes, memval %.0f", name, what, got, want)
		}
	}
	near("weights (fp32 shard)", r.ShardParams, term["weights"])
	near("gradients (fp32 shard)", r.ShardGrads, term["gradients"])
	near("optimizer_states", r.OptimStates, term["optimizer_states"])
	near("activations (bf16-pure)", r.Saved, float64(analytic.SavedBytes(acts)))
	near("one layer's bf16 copy", r.LayerGathered, 2*float64(pb.PerLayer))
	for what, dts := range map[string][]string{"shards": r.ShardParamDTypes, "gradient shards": r.ShardGradDTypes, "optimizer states": r.OptimStateDTypes} {
		if len(dts) != 1 || dts[0] != "float32" {
			t.Errorf("%s: %s in %v, want float32", name, what, dts)
		}
	}
	if len(r.GatheredDTypes) != 1 || r.GatheredDTypes[0] != "bfloat16" {
		t.Errorf("%s: layers computed with %v parameters, want bfloat16", name, r.GatheredDTypes)
	}
	if zero == 2 {
		near("gathered after forward", r.AfterForward, term["fsdp_unsharded_params"])
		return
	}
	if r.AfterForward != 0 {
		t.Errorf("%s: %.0f bytes still gathered after the forward, want 0 (reshard_after_forward)", name, r.AfterForward)
	}
	root := 2 * float64(pb.Total-int64(a.Layers)*pb.PerLayer)
	t.Logf("%-36s gathered at once in forward: %.0f bytes (root unit %.0f + %d layer(s)); memval's zero3_gather_buffer %.0f",
		name, r.MaxGathered, root, r.MaxGatheredLayers, term["zero3_gather_buffer"])
	if want := root + float64(r.MaxGatheredLayers)*r.LayerGathered; r.MaxGathered != want || r.MaxGatheredLayers != 1 {
		t.Errorf("%s: %.0f bytes in %d layers gathered at once, want the root unit and one layer (%.0f) on the CPU", name, r.MaxGathered, r.MaxGatheredLayers, want)
	}
	near("zero-3 gathered at once (root unit and one layer)", r.MaxGathered, term["zero3_gather_buffer"])
}
