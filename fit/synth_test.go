package fit

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// synthModel is a toy model shape for synthetic runs.
type synthModel struct {
	name             string
	layers, hidden   int
	heads, vocab     int
	params           int64
	precision        model.Precision
	attention        model.Attention
	checkpointing    model.Checkpointing
	weightsCoefByRun bool // weights coefficient depends on precision (breakdown-like)
}

// truthCoefs are the "real" bytes per unit the synthetic GPU uses.
type truthCoefs struct {
	perParam, input, act, scores, logits float64
	constant                             float64
}

// seedTerms returns seed-like terms: weights 4N, gradients 4N, Adam 8N,
// input 8*B*S, activations 14*L*B*S*H, scores 4*L*B*S*S, logits 6*B*S*V and
// a 4*B*S*V backward buffer (peak only).
func seedTerms(m synthModel, b, s int) []analytic.Term {
	bs := float64(b * s)
	n := float64(m.params)
	wcoef := 4.0
	if m.weightsCoefByRun && m.precision == model.BF16Pure {
		wcoef = 2
	}
	mk := func(name string, g analytic.Group, feat float64, unit string, coef float64, peak bool) analytic.Term {
		return analytic.Term{Name: name, Group: g, Feature: feat, Unit: unit, Coef: coef, Bytes: uint64(math.Ceil(feat * coef)), Peak: peak}
	}
	return []analytic.Term{
		mk("weights", analytic.GroupWeights, n, "params", wcoef, false),
		mk("gradients", analytic.GroupGradients, n, "params", 4, false),
		mk("adam states", analytic.GroupOptimizer, n, "params", 8, false),
		mk("input ids", analytic.GroupInput, bs, "B*S", 8, false),
		mk("activations", analytic.GroupActivations, bs*float64(m.hidden*m.layers), "B*S*H*L", 14, true),
		mk("attention scores", analytic.GroupActivations, bs*float64(s*m.layers), "B*S*S*L", 4, true),
		mk("logits", analytic.GroupLogits, bs*float64(m.vocab), "B*S*V", 6, true),
		mk("logits grad", analytic.GroupLogits, bs*float64(m.vocab), "B*S*V", 4, true),
	}
}

func estimateOf(formula string, m synthModel, terms []analytic.Term) analytic.Estimate {
	e := analytic.Estimate{Formula: formula, Params: m.params, Terms: terms}
	for _, t := range terms {
		e.Peak += t.Bytes
		if !t.Peak {
			e.Steady += t.Bytes
		}
	}
	return e
}

// measure applies the truth coefficients to a run's features, with
// multiplicative noise of relative size noise.
func measure(m synthModel, b, s int, tc truthCoefs, rng *rand.Rand, noise float64) (steady, peak uint64) {
	bs := float64(b * s)
	st := tc.perParam*float64(m.params) + tc.input*bs + tc.constant
	pk := st + tc.act*bs*float64(m.hidden*m.layers) + tc.scores*bs*float64(s*m.layers) + tc.logits*bs*float64(m.vocab)
	return uint64(st * (1 + noise*rng.NormFloat64())), uint64(pk * (1 + noise*rng.NormFloat64()))
}

var synthModels = []synthModel{
	{name: "tiny", layers: 4, hidden: 256, heads: 4, vocab: 8000, params: 5_300_000},
	{name: "small", layers: 12, hidden: 768, heads: 12, vocab: 50257, params: 124_439_808},
	{name: "medium", layers: 24, hidden: 1024, heads: 16, vocab: 50257, params: 354_823_168, attention: model.FlashAttention},
	{name: "wide", layers: 6, hidden: 2048, heads: 16, vocab: 32000, params: 370_000_000, precision: model.BF16Mixed, checkpointing: model.FullCheckpointing},
}

// synthRuns builds runs of every model for the batches and sequences, with
// the truth coefficients and noise, on one simulated H100.
func synthRuns(seed uint64, tc truthCoefs, noise float64, batches, seqs []int) []Run {
	rng := rand.New(rand.NewPCG(seed, 1))
	var runs []Run
	for _, m := range synthModels {
		for _, b := range batches {
			for _, s := range seqs {
				runs = append(runs, synthRun(m, b, s, tc, rng, noise))
			}
		}
	}
	return runs
}

func synthRun(m synthModel, b, s int, tc truthCoefs, rng *rand.Rand, noise float64) Run {
	steady, peak := measure(m, b, s, tc, rng, noise)
	w := &model.Workload{Batch: b, Seq: s, Precision: m.precision, Attention: m.attention, Checkpointing: m.checkpointing}
	a := &model.Arch{Name: m.name, Family: "gpt2", Layers: m.layers, Hidden: m.hidden, Heads: m.heads, Vocab: m.vocab}
	scen, _ := json.Marshal(map[string]any{"arch": a, "workload": w})
	terms := seedTerms(m, b, s)
	res := &schema.Result{
		Schema: schema.ResultSchema, Tool: "memval test", Device: "sim", Simulated: true,
		Env: schema.Environment{
			GPUs:     []profiler.GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", TotalBytes: 80 << 30}},
			Versions: profiler.Versions{Driver: "550.54.15", CUDA: "12.4"}, Torch: "2.3.1",
		},
		Summary: schema.Summary{
			Samples: 100, BaselineBytes: 0, PeakDeviceBytes: peak, SteadyBytes: steady,
			PeakProcessBytes: peak, Status: "ok",
		},
		Framework: &schema.Framework{Params: m.params, MaxReserved: peak, SteadyReserved: steady},
		Scenario:  scen,
	}
	preds := []analytic.Estimate{estimateOf("seed", m, terms), estimateOf("toy", m, toyTerms(m, b, s))}
	raw, err := analytic.EncodeEstimates(preds)
	if err != nil {
		panic(err) // the synthetic estimates always encode
	}
	res.Predictions = raw
	path := fmt.Sprintf("results/%s-b%d-s%d/result.json", m.name, b, s)
	return Run{Path: path, Result: res, Predictions: preds, Arch: a, Workload: w, TotalBytes: 80 << 30,
		Group: Group{GPU: "NVIDIA H100 80GB HBM3", Driver: "550.54.15", CUDA: "12.4", Torch: "2.3.1", Simulated: true}}
}

// toyTerms is a second formula: 16 bytes per parameter, 34 bytes per
// B*S*H*L of activations, 4 bytes per logit and a fixed 400 MiB context
// (constant in every run: folded into the fit's constant).
func toyTerms(m synthModel, b, s int) []analytic.Term {
	bs := float64(b * s)
	mk := func(name string, g analytic.Group, feat float64, unit string, coef float64, peak bool) analytic.Term {
		return analytic.Term{Name: name, Group: g, Feature: feat, Unit: unit, Coef: coef, Bytes: uint64(math.Ceil(feat * coef)), Peak: peak}
	}
	return []analytic.Term{
		mk("model states", analytic.GroupWeights, float64(m.params), "params", 16, false),
		mk("cuda context", analytic.GroupOverhead, 1, "1", 400<<20, false),
		mk("activations", analytic.GroupActivations, bs*float64(m.hidden*m.layers), "B*S*H*L", 34, true),
		mk("logits", analytic.GroupLogits, bs*float64(m.vocab), "B*S*V", 4, true),
	}
}

// oomRun is a run that ran out of memory on the 80 GiB GPU.
func oomRun() Run {
	r := synthRun(synthModels[2], 64, 2048, defaultTruth, rand.New(rand.NewPCG(9, 9)), 0)
	r.Path = "results/medium-b64-s2048/result.json"
	r.Result.Summary.Status, r.Result.Summary.OOM = "oom", true
	r.Result.Summary.PeakDeviceBytes = 80 << 30
	return r
}

// failedRun is a run that crashed.
func failedRun() Run {
	r := synthRun(synthModels[0], 1, 64, defaultTruth, rand.New(rand.NewPCG(9, 9)), 0)
	r.Path = "results/tiny-b1-s64/result.json"
	r.Result.Summary.Status = "crashed"
	r.Excluded = "status crashed"
	return r
}
