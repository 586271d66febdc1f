// Package peers runs memval beside the estimators users pick instead
// (llm-analysis, Accelerate's estimate-memory, DeepSpeed's ZeRO
// estimators, torch's MemTracker and the EleutherAI rules, all driven by
// scripts/peers/peers.py) on the same models and workloads, and compares
// each with the CPU truth (scenarios/train.py on transformers' classes:
// parameters, gradients, optimizer states and saved activations, measured)
// and with the published corpus (scenarios/published: peak bytes on their
// own basis). A peer that has no figure for a quantity is listed as not
// expressing it, never scored.
package peers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/fit"
	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/scenarios"
)

// The quantities compared, in bytes. Sum is weights + gradients +
// optimizer + activations, the "training memory" llm-analysis and the
// EleutherAI rules add up; Peak is a figure for the whole step's (or the
// inference's) memory per GPU, compared with published peaks.
const (
	Weights     = "weights"
	Gradients   = "gradients"
	Optimizer   = "optimizer"
	Activations = "activations"
	ModelStates = "model_states"
	Sum         = "sum"
	Peak        = "peak"
)

// Sets of cases.
const (
	SetTruth     = "truth"
	SetPublished = "published"
)

// Quantities maps a quantity name to bytes.
type Quantities map[string]float64

// Case is one model and workload, with what was measured and what memval
// predicts. It is what peers.py reads (cases.json).
type Case struct {
	Name      string         `json:"name"`
	Set       string         `json:"set"`
	Source    string         `json:"source,omitempty"` // published: the source's name
	Basis     string         `json:"basis,omitempty"`  // published: the counter the figure was read from
	Arch      model.Arch     `json:"arch"`
	Workload  model.Workload `json:"workload"`
	Params    int64          `json:"params"`     // model.Params' total
	ConfigDir string         `json:"config_dir"` // a folder with the config.json peers build from; empty when none
	Measured  Quantities     `json:"measured"`
	Memval    Quantities     `json:"memval"`
}

// TruthSpec is one CPU-truth configuration.
type TruthSpec struct {
	Name     string
	Arch     model.Arch
	Workload model.Workload
}

// TruthSpecs are the tiny models train.py measures on the CPU: GPT-2 and
// Llama (GQA) in fp32, bf16 autocast and pure bf16, with and without full
// checkpointing and SDPA. small keeps four of them (the CI set).
func TruthSpecs(small bool) []TruthSpec {
	gpt2 := model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128}
	llama := model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000}
	var out []TruthSpec
	add := func(a model.Arch, p model.Precision, ck model.Checkpointing, at model.Attention) {
		name := fmt.Sprintf("%s-tiny-b2-s32-%s", a.Family, p)
		if ck != model.NoCheckpointing {
			name += "-ckpt-" + string(ck)
		}
		if at == model.FlashAttention {
			name += "-sdpa"
		}
		// train.py runs transformers' classes: eager attention, or sdpa for
		// flash (memval's attn_impl for them, as the scenarios truth tests set it),
		// and their own loss (transformers' ForCausalLMLoss, loss hf)
		impl := model.EagerAttn
		if at == model.FlashAttention {
			impl = model.SDPAAttn
		}
		out = append(out, TruthSpec{name, a, model.Workload{Batch: 2, Seq: 32, Precision: p, Checkpointing: ck, Attention: at,
			AttnImpl: impl, Loss: model.HFLoss, Backend: model.CPU}})
	}
	if small {
		add(gpt2, model.FP32, model.NoCheckpointing, model.MathAttention)
		add(llama, model.FP32, model.NoCheckpointing, model.MathAttention)
		add(llama, model.BF16Pure, model.NoCheckpointing, model.FlashAttention)
		add(gpt2, model.BF16Mixed, model.FullCheckpointing, model.MathAttention)
		return out
	}
	for _, a := range []model.Arch{gpt2, llama} {
		for _, p := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
			add(a, p, model.NoCheckpointing, model.MathAttention)
			add(a, p, model.FullCheckpointing, model.MathAttention)
			add(a, p, model.NoCheckpointing, model.FlashAttention)
		}
	}
	return out
}

// truthLine is what train.py prints for a job.
type truthLine struct {
	Params     int64    `json:"params"`
	Trainable  int64    `json:"trainable"`
	OptimBytes uint64   `json:"optimizer_state_bytes"`
	SavedBytes []uint64 `json:"saved_bytes"`
	Impl       string   `json:"impl"`
	Error      string   `json:"error"`
}

// TruthCases measures specs with train.py (transformers' classes, CPU) in
// one Python process (python, or scenarios.Python() when empty), writes
// each model's config.json under dir/configs, and fills memval's
// prediction. Parameters and gradients are counted at the precision's
// parameter size (fp32, or bf16 for pure bf16): torch keeps a gradient in
// its parameter's dtype.
func TruthCases(specs []TruthSpec, dir, python string) ([]Case, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	jobs := make([]scenarios.TrainJob, len(specs))
	for i, s := range specs {
		a := s.Arch
		if err := a.Normalize(); err != nil {
			return nil, fmt.Errorf("truth case %s: %w", s.Name, err)
		}
		specs[i].Arch = a
		w, err := s.Workload.WithDefaults()
		if err != nil {
			return nil, fmt.Errorf("truth case %s: %w", s.Name, err)
		}
		specs[i].Workload = w
		s = specs[i]
		jobs[i] = scenarios.TrainJob{Arch: a, Workload: s.Workload, Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: true, Impl: "transformers"}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "truth-jobs.json")
	if err := scenarios.WriteJobs(path, jobs); err != nil {
		return nil, err
	}
	argv, err := scenarios.TrainJobsCommand(path)
	if err != nil {
		return nil, err
	}
	if python != "" {
		argv[0] = python
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "MEMVAL_EVENTS="+filepath.Join(dir, "truth-events.jsonl"))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("train.py (%s): %w\n%s", argv[0], err, tail(stderr.String(), 2000))
	}
	var lines []truthLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var l truthLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("train.py printed %q: %w", tail(sc.Text(), 200), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != len(specs) {
		return nil, fmt.Errorf("train.py printed %d results for %d jobs\n%s", len(lines), len(specs), tail(stderr.String(), 2000))
	}
	cases := make([]Case, len(specs))
	for i, s := range specs {
		l := lines[i]
		if l.Error != "" || len(l.SavedBytes) == 0 {
			return nil, fmt.Errorf("truth case %s: train.py: %s (no saved bytes)", s.Name, l.Error)
		}
		if l.Impl != "transformers" {
			return nil, fmt.Errorf("truth case %s: train.py built the model by %q, want transformers (is transformers importable with %s?)", s.Name, l.Impl, argv[0])
		}
		pb := 4.0
		if s.Workload.Precision == model.BF16Pure {
			pb = 2
		}
		m := Quantities{
			Weights:     pb * float64(l.Params),
			Gradients:   pb * float64(l.Trainable),
			Optimizer:   float64(l.OptimBytes),
			Activations: float64(l.SavedBytes[0]),
		}
		complete(m)
		cfgDir := filepath.Join(dir, "configs", s.Name)
		if err := writeConfig(cfgDir, s.Arch, s.Workload); err != nil {
			return nil, fmt.Errorf("truth case %s: %w", s.Name, err)
		}
		mv, params, err := MemvalTruth(s.Arch, s.Workload)
		if err != nil {
			return nil, fmt.Errorf("truth case %s: %w", s.Name, err)
		}
		cases[i] = Case{Name: s.Name, Set: SetTruth, Arch: s.Arch, Workload: s.Workload, Params: params, ConfigDir: cfgDir, Measured: m, Memval: mv}
	}
	return cases, nil
}

// complete adds model_states and sum where their parts are there.
func complete(q Quantities) {
	w, okW := q[Weights]
	g, okG := q[Gradients]
	o, okO := q[Optimizer]
	if _, ok := q[ModelStates]; !ok && okW && okG && okO {
		q[ModelStates] = w + g + o
	}
	if ms, ok := q[ModelStates]; ok {
		if a, ok := q[Activations]; ok {
			q[Sum] = ms + a
		}
	}
}

// MemvalTruth is memval's breakdown in the truth's quantities: its
// weights, gradient and optimizer terms held through the step, and the
// bytes it predicts autograd saves (analytic.SavedActivations).
func MemvalTruth(a model.Arch, w model.Workload) (Quantities, int64, error) {
	e, err := analytic.Predict("breakdown", a, w)
	if err != nil {
		return nil, 0, err
	}
	q := Quantities{Weights: 0, Gradients: 0, Optimizer: 0}
	for _, t := range e.Terms {
		if t.Peak {
			continue
		}
		switch t.Group {
		case analytic.GroupWeights:
			q[Weights] += float64(t.Bytes)
		case analytic.GroupGradients:
			q[Gradients] += float64(t.Bytes)
		case analytic.GroupOptimizer:
			q[Optimizer] += float64(t.Bytes)
		}
	}
	terms, err := analytic.SavedActivations(a, w)
	if err != nil {
		return nil, 0, err
	}
	q[Activations] = float64(analytic.SavedBytes(terms))
	complete(q)
	return q, e.Params, nil
}

func writeConfig(dir string, a model.Arch, w model.Workload) error {
	m, err := scenarios.HFConfig(a, w)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644)
}

// PublishedCases reads the published measurements under root that memval
// evaluates (neither not_evaluated, out of memory nor inconsistent with its
// stated setup: fit.Inconsistent), with memval's
// breakdown figure on each one's basis (fit.PredictPublished and
// fit.PredictedOn). A measurement named by a preset gets a config.json
// written under dir/configs when scenarios.HFConfig can write one. only,
// when not empty, keeps the cases whose names it lists.
func PublishedCases(root, dir string, only []string) ([]Case, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == fit.ResultFile {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("published corpus %s: %w", root, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("published corpus %s: no %s found", root, fit.ResultFile)
	}
	sort.Strings(paths)
	var cases []Case
	for _, p := range paths {
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		name := filepath.ToSlash(rel)
		if len(only) > 0 && !contains(only, name) {
			continue
		}
		res, err := schema.ReadResult(p)
		if err != nil {
			return nil, err
		}
		pub := res.Published
		if pub == nil || pub.NotEvaluated != "" || res.Summary.OOM || pub.PeakBytes == 0 {
			continue
		}
		a, preds, err := fit.PredictPublished(p, res)
		if err != nil {
			return nil, err
		}
		if fit.Inconsistent(res, preds) != "" {
			continue // no estimator is scored on a figure its stated setup cannot give
		}
		var sc fit.PublishedScenario
		if err := json.Unmarshal(res.Scenario, &sc); err != nil {
			return nil, fmt.Errorf("%s: field scenario: %w", p, err)
		}
		var bd *analytic.Estimate
		for i := range preds {
			if preds[i].Formula == "breakdown" {
				bd = &preds[i]
			}
		}
		if bd == nil || a == nil {
			continue
		}
		w, err := sc.Workload.WithDefaults()
		if err != nil {
			return nil, fmt.Errorf("%s: field scenario.workload: %w", p, err)
		}
		c := Case{Name: name, Set: SetPublished, Source: pub.Source.Name, Basis: pub.Basis, Arch: *a, Workload: w, Params: bd.Params,
			Measured: Quantities{Peak: float64(pub.PeakBytes)}, Memval: Quantities{Peak: float64(fit.PredictedOn(bd, pub.Basis))}}
		if sc.Model.Config != "" {
			c.ConfigDir, _ = filepath.Abs(filepath.Dir(filepath.Join(filepath.Dir(p), sc.Model.Config)))
		} else if d := filepath.Join(dir, "configs", strings.ReplaceAll(name, "/", "_")); writeConfig(d, *a, *sc.Workload) == nil {
			c.ConfigDir = d
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("published corpus %s: no measurement memval evaluates (of %d files)", root, len(paths))
	}
	return cases, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// ErrNoPeers is returned when peers.py cannot run.
var ErrNoPeers = errors.New("peers.py did not run")
