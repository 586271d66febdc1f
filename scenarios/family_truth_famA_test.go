package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// famAArchs are tiny configs of gemma, qwen3, qwen3_moe, phi3 and olmo2,
// each with grouped-query attention and a head_dim (where the config has
// one) that is not hidden/heads, so that a rule that mixes the two fails.
func famAArchs(t *testing.T) map[string]model.Arch {
	return map[string]model.Arch{
		"gemma": normalized(t, model.Arch{Family: "gemma", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 24,
			FFN: 176, Vocab: 1000}),
		"qwen3": normalized(t, model.Arch{Family: "qwen3", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 24,
			FFN: 176, Vocab: 1000}),
		"qwen3_moe": normalized(t, model.Arch{Family: "qwen3_moe", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2,
			HeadDim: 24, FFN: 48, Vocab: 1000, Experts: 6, ExpertsPerToken: 3}),
		"phi3": normalized(t, model.Arch{Family: "phi3", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176,
			Vocab: 1000}),
		// Phi-3-mini's multi-head attention: v is not repeated
		"phi3_mha": normalized(t, model.Arch{Family: "phi3", Layers: 2, Hidden: 64, Heads: 4, FFN: 176, Vocab: 1000}),
		"olmo2": normalized(t, model.Arch{Family: "olmo2", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176,
			Vocab: 1000}),
	}
}

// famACase is one job of TestFamilyTruthFamA: a training step of arch a
// under w, or with paramsOnly the model built on the meta device from cfg.
type famACase struct {
	key        string
	a          model.Arch
	w          model.Workload
	paramsOnly bool
	cfg        map[string]any
	params     int64 // paramsOnly: what model.ParseConfig reads from cfg
}

// famACases lists the jobs: per family fp32, bf16 autocast and pure bf16
// under eager (math) and sdpa (flash) attention; full checkpointing and
// dropout 0.1 (eager); every second of three layers checkpointed, with
// or without offloading (sdpa); Phi-3-mini's multi-head attention where
// it differs; PEFT's LoRA on the dense families; and each config.json
// without head_dim on the meta device.
func famACases(t *testing.T) []famACase {
	archs := famAArchs(t)
	cpu := func(w model.Workload) model.Workload {
		w.Batch, w.Seq, w.Backend, w.Loss = 2, 32, model.CPU, model.HFLoss
		return hfWorkload(w, "transformers")
	}
	var cs []famACase
	add := func(key string, a model.Arch, w model.Workload) {
		cs = append(cs, famACase{key: key, a: a, w: cpu(w)})
	}
	for i, n := range []string{"gemma", "olmo2", "phi3", "qwen3", "qwen3_moe"} {
		a := archs[n]
		for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
			for _, at := range []model.Attention{model.MathAttention, model.FlashAttention} {
				add(n, a, model.Workload{Precision: prec, Attention: at})
			}
		}
		add(n, a, model.Workload{Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing})
		add(n, a, model.Workload{Precision: model.BF16Mixed, Dropout: 0.1})
		a3 := a
		a3.Layers = 3 // transformers' every_n_layers 2 checkpoints layers 1 and 3
		add(n, a3, model.Workload{Precision: model.BF16Mixed, Attention: model.FlashAttention, Checkpointing: "layers:2",
			OffloadActivations: i%2 == 1})
	}
	add("phi3_mha", archs["phi3_mha"], model.Workload{Precision: model.FP32, Attention: model.FlashAttention})
	add("phi3_mha", archs["phi3_mha"], model.Workload{Precision: model.BF16Mixed, Dropout: 0.1})
	// PEFT's default targets (q_proj, v_proj) where its table has the
	// family; phi3 and olmo2 it has not, so they are named
	qv := map[string]string{"gemma": "", "qwen3": "", "olmo2": "q_proj,v_proj", "phi3": "qkv_proj"}
	for _, n := range []string{"gemma", "olmo2", "phi3", "qwen3"} {
		lora := model.Workload{LoRARank: 4, LoRATargets: model.LoRAAllLinear, Precision: model.BF16Pure}
		add(n+" lora", archs[n], lora)
		lora.LoRATargets, lora.LoRADropout, lora.Precision = qv[n], 0.1, model.BF16Mixed
		add(n+" lora", archs[n], lora)
	}
	add("gemma lora", archs["gemma"], model.Workload{LoRARank: 4, LoRATargets: model.LoRAAllLinear,
		Checkpointing: model.FullCheckpointing})
	for _, n := range []string{"gemma", "olmo2", "phi3", "qwen3", "qwen3_moe"} {
		m, err := HFConfig(archs[n], model.Workload{Batch: 1, Seq: 16})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		delete(m, "head_dim")
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := model.ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: ParseConfig of %s: %v", n, data, err)
		}
		if err := back.Normalize(); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		pb, err := model.Params(back)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, famACase{key: n + " without head_dim", a: back, w: model.Workload{Batch: 1, Seq: 16},
			paramsOnly: true, cfg: m, params: pb.Total})
	}
	return cs
}

// TestFamilyTruthFamA is issue 19's truth for gemma, qwen3, qwen3_moe, phi3
// and olmo2: transformers 5.24's own classes (scenarios/train.py impl
// "transformers", AutoModelForCausalLM.from_config of HFConfig's
// config.json, on the CPU, in one train.py process) have model.Params'
// parameters (with PEFT's adapters, model.LoRAParams; trainable as
// model.TrainableParams), the breakdown's optimizer states within 0.1%,
// and save for backward the bytes analytic.SavedActivations predicts
// within 0.1% (famACases lists the runs). A config.json without head_dim
// builds the parameters model.ParseConfig reads from it: the
// configuration class's head_dim (gemma 256, qwen3 128) or hidden/heads
// (qwen3_moe, whose class has none; phi3 and olmo2, which read none); the
// classes' num_key_value_heads defaults (gemma 16, qwen3 32, qwen3_moe 4)
// are not checked, as ParseConfig takes the heads when the key is absent.
// These families have no hand-built program in train.py, so only the
// transformers path runs; a mismatch lists the saved tensors by node,
// shape and dtype beside the predicted terms.
func TestFamilyTruthFamA(t *testing.T) {
	needTorch(t)
	cs := famACases(t)
	jobs := make([]TrainJob, len(cs))
	for i, c := range cs {
		jobs[i] = TrainJob{Arch: c.a, Workload: c.w, Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: !c.paramsOnly,
			Impl: "transformers", ListSaved: !c.paramsOnly, ParamsOnly: c.paramsOnly, HFConfig: c.cfg}
	}
	for i, r := range runTruthJobs(t, jobs) {
		c := cs[i]
		if c.paramsOnly {
			if r.Params != c.params {
				t.Errorf("%s: transformers builds %d parameters, model.ParseConfig reads %d", c.key, r.Params, c.params)
			}
			continue
		}
		famACheck(t, c, r)
	}
}

// famACheck checks one training job's parameters, optimizer states and
// saved bytes.
func famACheck(t *testing.T, c famACase, r truthResult) {
	t.Helper()
	a, w := c.a, c.w
	name := fmt.Sprintf("%s L%d %s ckpt %s offload %v dropout %g %s", c.key, a.Layers, w.Precision, w.Checkpointing,
		w.OffloadActivations, w.Dropout, w.AttnImpl)
	if w.LoRA() {
		name += fmt.Sprintf(" lora %q p=%g", w.LoRATargets, w.LoRADropout)
	}
	if r.Impl != "transformers" {
		t.Fatalf("%s: impl %q, want transformers", name, r.Impl)
	}
	pb, err := model.Params(a)
	if err != nil {
		t.Fatal(err)
	}
	adapters, err := model.LoRAParams(a, w)
	if err != nil {
		t.Fatal(err)
	}
	train, err := model.TrainableParams(a, w, pb.Total)
	if err != nil {
		t.Fatal(err)
	}
	if r.Params != pb.Total+adapters || r.Trainable != train {
		t.Errorf("%s: params %d trainable %d, want %d and %d", name, r.Params, r.Trainable, pb.Total+adapters, train)
	}
	if opt := optimStates(t, a, w); math.Abs(float64(r.OptimBytes)-opt) > 0.001*opt {
		t.Errorf("%s: optimizer state %d bytes, want the breakdown's %.0f", name, r.OptimBytes, opt)
	}
	terms, err := analytic.SavedActivations(a, w)
	if err != nil {
		t.Fatal(err)
	}
	want, got := float64(analytic.SavedBytes(terms)), float64(r.SavedBytes[0])
	t.Logf("%-72s analytic %8.0f transformers %8.0f (%+.0f)", name, want, got, got-want)
	if math.Abs(got-want) > 0.001*want {
		t.Errorf("%s: transformers %s saved %.0f bytes, want analytic %.0f (%+.0f, %+.3f%%)\nsaved:\n%s\npredicted:\n%s",
			name, r.Transformers, got, want, got-want, 100*(got/want-1), listSaved(r.Saved), listTerms(terms))
	}
}

// listSaved is the saved tensors, one line per (node, shape, dtype) with
// their count and bytes.
func listSaved(ts []savedTensor) string {
	type row struct {
		key   string
		n     int
		bytes uint64
	}
	idx := map[string]*row{}
	var rows []*row
	for _, s := range ts {
		k := fmt.Sprintf("%-44s %-18v %-9s", s.Op, s.Shape, s.DType)
		r, ok := idx[k]
		if !ok {
			r = &row{key: k}
			idx[k] = r
			rows = append(rows, r)
		}
		r.n++
		r.bytes += s.Bytes
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s x%-3d %8d B\n", r.key, r.n, r.bytes)
	}
	return b.String()
}

// listTerms is the predicted terms, one a line.
func listTerms(terms []analytic.Term) string {
	var b strings.Builder
	for _, t := range terms {
		fmt.Fprintf(&b, "  %-28s %-22s %8d B\n", t.Name, t.Unit, t.Bytes)
	}
	return b.String()
}
