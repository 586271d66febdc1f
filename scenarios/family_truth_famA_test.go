package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
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

// TestFamilyTruthFamA: transformers 5.24's own classes of gemma, qwen3,
// qwen3_moe, phi3 and olmo2 (scenarios/train.py impl "transformers",
// AutoModelForCausalLM.from_config of HFConfig's config.json, on the CPU)
// have model.Params' parameters, all trainable, the breakdown's optimizer
// states within 0.1%, and save for backward the bytes
// analytic.SavedActivations predicts within 0.1%, under eager attention
// (math) and sdpa (flash), in fp32, bf16 autocast and pure bf16, with
// full checkpointing and with dropout 0.1 (eager), and checkpointing
// every second of three layers with and without offloading (sdpa). These families have no hand-built program in
// train.py, so only the transformers path runs; a mismatch lists the saved
// tensors by node, shape and dtype beside the predicted terms. One
// subtest per family (one train.py process each).
func TestFamilyTruthFamA(t *testing.T) {
	needTorch(t)
	archs := famAArchs(t)
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		a := archs[name]
		t.Run(name, func(t *testing.T) { famATruth(t, a) })
	}
}

func famATruth(t *testing.T, a model.Arch) {
	var ws []model.Workload
	for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
		for _, ck := range []model.Checkpointing{model.NoCheckpointing, model.FullCheckpointing} {
			for _, at := range []model.Attention{model.MathAttention, model.FlashAttention} {
				if ck == model.FullCheckpointing && at == model.FlashAttention {
					continue // a checkpointed layer keeps its input whatever its attention
				}
				ws = append(ws, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck, Attention: at,
					Backend: model.CPU, Loss: model.HFLoss})
			}
		}
	}
	for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
		ws = append(ws, model.Workload{Batch: 2, Seq: 32, Precision: prec, Dropout: 0.1, Backend: model.CPU, Loss: model.HFLoss})
	}
	archs := make([]model.Arch, len(ws))
	for i := range archs {
		archs[i] = a
	}
	// every_n_layers 2 of 3 layers (transformers checkpoints layers 1 and
	// 3), with the activations of the checkpointed ones in host memory
	a3 := a
	a3.Layers = 3
	for _, off := range []bool{false, true} {
		archs = append(archs, a3)
		ws = append(ws, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Checkpointing: "layers:2",
			OffloadActivations: off, Attention: model.FlashAttention, Backend: model.CPU, Loss: model.HFLoss})
	}
	jobs := make([]TrainJob, len(ws))
	for i := range ws {
		ws[i] = hfWorkload(ws[i], "transformers")
		jobs[i] = TrainJob{Arch: archs[i], Workload: ws[i], Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: true,
			Impl: "transformers", ListSaved: true}
	}
	res := runTruthJobs(t, jobs)
	for i, w := range ws {
		r, a := res[i], archs[i]
		pb, err := model.Params(a)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s L%d %s ckpt %s offload %v dropout %g %s", a.Family, a.Layers, w.Precision, w.Checkpointing,
			w.OffloadActivations, w.Dropout, w.AttnImpl)
		if r.Impl != "transformers" {
			t.Fatalf("%s: impl %q, want transformers", name, r.Impl)
		}
		if r.Params != pb.Total || r.Trainable != pb.Total {
			t.Errorf("%s: params %d trainable %d, want model.Params %d", name, r.Params, r.Trainable, pb.Total)
		}
		e, err := analytic.Predict("breakdown", a, w)
		if err != nil {
			t.Fatal(err)
		}
		var opt float64
		for _, term := range e.Terms {
			if term.Group == analytic.GroupOptimizer && !term.Peak {
				opt += float64(term.Bytes)
			}
		}
		if math.Abs(float64(r.OptimBytes)-opt) > 0.001*opt {
			t.Errorf("%s: optimizer state %d bytes, want the breakdown's %.0f", name, r.OptimBytes, opt)
		}
		terms, err := analytic.SavedActivations(a, w)
		if err != nil {
			t.Fatal(err)
		}
		want, got := float64(analytic.SavedBytes(terms)), float64(r.SavedBytes[0])
		t.Logf("%-40s analytic %8.0f transformers %8.0f (%+.0f)", name, want, got, got-want)
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: transformers %s saved %.0f bytes, want analytic %.0f (%+.0f, %+.3f%%)\nsaved:\n%s\npredicted:\n%s",
				name, r.Transformers, got, want, got-want, 100*(got/want-1), listSaved(r.Saved), listTerms(terms))
		}
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

// TestFamilyConfigDefaultsFamA: a config.json of each of these families
// without head_dim builds in transformers 5.24 (on the meta device) the
// parameter count model.ParseConfig reads from it: the configuration
// class's head_dim (gemma 256, qwen3 128) or hidden/heads (qwen3_moe,
// whose class has none; phi3 and olmo2, which read none). The classes'
// num_key_value_heads defaults (gemma 16, qwen3 32, qwen3_moe 4) are
// not checked: ParseConfig takes the heads when the key is absent.
func TestFamilyConfigDefaultsFamA(t *testing.T) {
	needTorch(t)
	archs := famAArchs(t)
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	var jobs []TrainJob
	var want []int64
	for _, n := range names {
		a := archs[n]
		w := model.Workload{Batch: 1, Seq: 16}
		m, err := HFConfig(a, w)
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
		want = append(want, pb.Total)
		jobs = append(jobs, TrainJob{Arch: back, Workload: w, Device: "cpu", ParamsOnly: true, Impl: "transformers",
			HFConfig: m})
	}
	for i, r := range runJobs(t, jobs) {
		if r.Params != want[i] {
			t.Errorf("%s without head_dim: transformers builds %d parameters, model.ParseConfig reads %d",
				names[i], r.Params, want[i])
		}
	}
}

// TestFamilyLoRATruthFamA: PEFT's LoRA (peft 0.21) on transformers 5.24's
// gemma, qwen3, phi3 and olmo2 classes (qwen3_moe: memval does not model
// LoRA on experts) has the parameters, trainable parameters, optimizer
// states and saved bytes memval predicts, within 0.1%: the frozen norms
// keep neither their normalized x (ln.normed_fp32, attn.qk_norm_out) nor
// anything the weight's gradient alone needs.
func TestFamilyLoRATruthFamA(t *testing.T) {
	needTorch(t)
	archs := famAArchs(t)
	names := []string{"gemma", "olmo2", "phi3", "qwen3"}
	// PEFT's default targets (q_proj, v_proj) where its table has the
	// family; phi3 and olmo2 it has not, so they are named
	qv := map[string]string{"gemma": "", "qwen3": "", "olmo2": "q_proj,v_proj", "phi3": "qkv_proj"}
	lora := func(prec model.Precision, ck model.Checkpointing, targets string, p float64) model.Workload {
		return model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck, LoRARank: 4, LoRATargets: targets,
			LoRADropout: p, Backend: model.CPU, Loss: model.HFLoss, AttnImpl: model.EagerAttn}
	}
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	var jobs []TrainJob
	for _, n := range names {
		for _, w := range []model.Workload{
			lora(model.FP32, model.NoCheckpointing, model.LoRAAllLinear, 0),
			lora(model.BF16Mixed, model.NoCheckpointing, qv[n], 0.1),
			lora(model.BF16Pure, model.NoCheckpointing, model.LoRAAllLinear, 0),
			lora(model.FP32, model.FullCheckpointing, model.LoRAAllLinear, 0),
		} {
			cases = append(cases, tc{archs[n], w})
			jobs = append(jobs, TrainJob{Arch: archs[n], Workload: w, Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: true,
				Impl: "transformers", ListSaved: true})
		}
	}
	for i, r := range runTruthJobs(t, jobs) {
		a, w := cases[i].a, cases[i].w
		name := fmt.Sprintf("%s %s ckpt %s lora %q p=%g", a.Family, w.Precision, w.Checkpointing, w.LoRATargets, w.LoRADropout)
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
		t.Logf("%-56s analytic %8.0f transformers %8.0f (%+.0f)", name, want, got, got-want)
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: saved %.0f bytes, want analytic %.0f (%+.0f)\nsaved:\n%s\npredicted:\n%s",
				name, got, want, got-want, listSaved(r.Saved), listTerms(terms))
		}
	}
}
