package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// alibiMQAArchs are tiny BLOOM and Falcon models (issue 16's ALiBi and
// multi-query attention) in the layouts their configuration classes have:
// BLOOM; Falcon-7B's multi-query attention (one k/v head) with attention
// and MLP in parallel on one norm, rotary or ALiBi; the
// new_decoder_architecture's grouped k/v heads and two norms (Falcon-40B),
// rotary or ALiBi, and with one norm and biases; and Falcon-RW's
// multi-head, sequential layer with ALiBi and biases.
func alibiMQAArchs(t *testing.T) map[string]model.Arch {
	falcon := func(kv int, parallel bool, norms int, alibi, bias bool) model.Arch {
		a := normalized(t, model.Arch{Family: "falcon", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000})
		a.KVHeads, a.ParallelBlock, a.NormsPerLayer, a.Alibi = kv, parallel, norms, alibi
		a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
		return normalized(t, a)
	}
	return map[string]model.Arch{
		"bloom":            normalized(t, model.Arch{Family: "bloom", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000}),
		"falcon-mqa":       falcon(1, true, 1, false, false),
		"falcon-mqa-alibi": falcon(1, true, 1, true, false),
		"falcon-new":       falcon(2, true, 2, false, false),
		"falcon-new-alibi": falcon(2, true, 2, true, false),
		"falcon-rw":        falcon(4, false, 2, true, true),
		"falcon-new1":      falcon(2, true, 1, false, true),
	}
}

// TestAlibiMQATruth is issue 19's truth matrix for BLOOM and Falcon:
// BloomForCausalLM and FalconForCausalLM built by transformers
// (from_config of HFConfig's config.json) give model.Params' parameter
// count (all trainable), the breakdown's optimizer-state bytes within 0.1%,
// and save analytic.SavedActivations' bytes within 0.1% for fp32, bf16
// autocast and pure bf16, eager and (Falcon; BLOOM has none) sdpa, full
// checkpointing and dropout. A mismatch lists the tensors transformers
// saved and the breakdown's terms. The hand-built path does not build
// these families (model.Layer.HFOnly), so the jobs are transformers' only.
func TestAlibiMQATruth(t *testing.T) {
	needTorch(t)
	archs := alibiMQAArchs(t)
	type tc struct {
		name string
		w    model.Workload
	}
	var cases []tc
	add := func(name string, prec model.Precision, att model.Attention, ck model.Checkpointing, drop float64) {
		cases = append(cases, tc{name, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: att, Checkpointing: ck, Dropout: drop}})
	}
	precs := []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure}
	for _, p := range precs {
		add("bloom", p, model.MathAttention, model.NoCheckpointing, 0)
		add("bloom", p, model.MathAttention, model.FullCheckpointing, 0)
		for _, f := range []string{"falcon-mqa", "falcon-mqa-alibi", "falcon-new", "falcon-new-alibi", "falcon-rw"} {
			add(f, p, model.MathAttention, model.NoCheckpointing, 0)
			add(f, p, model.FlashAttention, model.NoCheckpointing, 0)
		}
	}
	add("bloom", model.FP32, model.MathAttention, model.NoCheckpointing, 0.1)
	add("bloom", model.BF16Mixed, model.MathAttention, model.NoCheckpointing, 0.1)
	add("falcon-mqa", model.FP32, model.MathAttention, model.FullCheckpointing, 0)
	add("falcon-mqa", model.BF16Mixed, model.MathAttention, model.FullCheckpointing, 0)
	add("falcon-new", model.BF16Mixed, model.FlashAttention, model.FullCheckpointing, 0)
	add("falcon-mqa", model.FP32, model.MathAttention, model.NoCheckpointing, 0.1)
	add("falcon-mqa-alibi", model.BF16Mixed, model.MathAttention, model.NoCheckpointing, 0.1)
	add("falcon-new", model.BF16Mixed, model.FlashAttention, model.NoCheckpointing, 0.1)
	add("falcon-rw", model.FP32, model.MathAttention, model.NoCheckpointing, 0.1)
	add("falcon-rw", model.BF16Mixed, model.MathAttention, "layers:2", 0)
	add("falcon-rw", model.FP32, model.FlashAttention, model.NoCheckpointing, 0.1)
	add("falcon-new-alibi", model.BF16Mixed, model.FlashAttention, model.NoCheckpointing, 0.1)
	add("falcon-mqa-alibi", model.BF16Pure, model.FlashAttention, model.NoCheckpointing, 0.1)
	add("falcon-new1", model.FP32, model.MathAttention, model.NoCheckpointing, 0)
	add("falcon-new1", model.BF16Mixed, model.FlashAttention, model.NoCheckpointing, 0.1)

	var jobs []TrainJob
	for i := range cases {
		w := &cases[i].w
		w.Backend, w.Loss = model.CPU, model.HFLoss
		*w = hfWorkload(*w, "transformers")
		jobs = append(jobs, TrainJob{Arch: archs[cases[i].name], Workload: *w, Steps: 1, Seed: 1, Device: "cpu",
			MeasureSaved: true, Impl: "transformers", ListSaved: true})
	}
	res := runTruthJobs(t, jobs)
	for i, c := range cases {
		a, r := archs[c.name], res[i]
		name := fmt.Sprintf("%s %s %s ckpt %s dropout %g", c.name, c.w.Precision, c.w.AttnImpl, c.w.Checkpointing, c.w.Dropout)
		checkTransformersTruth(t, name, a, c.w, r, false)
	}
}

// TestAlibiMQAConfigs: the config.json HFConfig writes for each Falcon
// layout parses back (model.ParseConfig) to the same layout and parameter
// count, and the archs no configuration class builds get an error naming
// the field.
func TestAlibiMQAConfigs(t *testing.T) {
	for name, a := range alibiMQAArchs(t) {
		m, err := HFConfig(a, model.Workload{Batch: 1, Seq: 16})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, _ := json.Marshal(m)
		back, err := model.ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: ParseConfig of %s: %v", name, data, err)
		}
		if err := back.Normalize(); err != nil {
			t.Fatal(err)
		}
		if back.KVHeads != a.KVHeads || back.ParallelBlock != a.ParallelBlock || back.NormsPerLayer != a.NormsPerLayer ||
			back.Alibi != a.Alibi || back.QKVBias != a.QKVBias || back.MLPBias != a.MLPBias {
			t.Errorf("%s: %s parses back to %+v, want %+v", name, data, back, a)
		}
		pa, _ := model.Params(a)
		pb, _ := model.Params(back)
		if pa.Total != pb.Total {
			t.Errorf("%s: params %d, after the config round trip %d (%s)", name, pa.Total, pb.Total, data)
		}
	}
	archs := alibiMQAArchs(t)
	bad := []struct {
		name string
		edit func(a *model.Arch)
		want string
	}{
		{"bloom", func(a *model.Arch) { a.KVHeads = 1 }, "kv_heads"},
		{"bloom", func(a *model.Arch) { a.FFN = 100 }, "ffn"},
		{"bloom", func(a *model.Arch) { a.MLPBias = false }, "biases"},
		{"falcon-rw", func(a *model.Arch) { a.KVHeads = 2 }, "parallel_block"},
		{"falcon-mqa", func(a *model.Arch) { a.MLPBias = true }, "bias"},
		{"falcon-rw", func(a *model.Arch) { a.NormsPerLayer = 1 }, "norms_per_layer"},
		{"falcon-new", func(a *model.Arch) { a.HeadDim = 8 }, "head_dim"},
	}
	for _, c := range bad {
		a := archs[c.name]
		c.edit(&a)
		_, err := HFConfig(a, model.Workload{Batch: 1, Seq: 16})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: error %v, want one naming %s", c.name, a, err, c.want)
		}
	}
}

// TestAlibiMQAGenerationTruth: generate() of the BLOOM and Falcon classes
// (built from HFConfig's config.json, sdpa where the class has it) keeps
// in its past_key_values exactly the breakdown's KV cache: one k/v head for
// Falcon's multi_query, every query head for its new_decoder_architecture
// (k and v are broadcast before the cache) and for the multi-head layouts.
func TestAlibiMQAGenerationTruth(t *testing.T) {
	needTorch(t)
	archs := alibiMQAArchs(t)
	names := []string{"bloom", "falcon-mqa", "falcon-mqa-alibi", "falcon-new", "falcon-rw"}
	type tc struct {
		name string
		w    model.Workload
	}
	var cases []tc
	var in []hfCacheCase
	for _, n := range names {
		for _, gen := range []int{5, 1} {
			w := model.Workload{Batch: 2, Seq: 1, Inference: true, Backend: model.CPU, Precision: model.FP32,
				Attention: model.FlashAttention, PromptLengths: "12,7", Generate: gen}
			m, err := HFConfig(archs[n], w)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, tc{n, w})
			in = append(in, hfCacheCase{m, "fp32", []int{12, 7}, gen, "dynamic"})
		}
	}
	res := cacheTruth(t, in)
	for i, c := range cases {
		name := fmt.Sprintf("%s generate %d", c.name, c.w.Generate)
		e, err := analytic.Predict("breakdown", archs[c.name], c.w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		kv, ok := e.Term("kv_cache")
		if !ok { // no decode step
			kv, _ = e.Term("kv_cache_prompt")
		}
		t.Logf("%-28s cache: breakdown %6d transformers %6d bytes", name, kv.Bytes, res[i].CacheBytes)
		if kv.Bytes != res[i].CacheBytes {
			t.Errorf("%s: kv_cache %d bytes, transformers keeps %d", name, kv.Bytes, res[i].CacheBytes)
		}
	}
}

// TestAlibiMQAHandRefused: train.py's hand-built path refuses BLOOM and
// Falcon (their layers are model.Layer.HFOnly) with exit 2, naming the
// family and what to use instead.
func TestAlibiMQAHandRefused(t *testing.T) {
	needTorch(t)
	dir := t.TempDir()
	for name, a := range alibiMQAArchs(t) {
		if name != "bloom" && name != "falcon-mqa" {
			continue
		}
		job := filepath.Join(dir, name+".json")
		j := TrainJob{Arch: a, Workload: model.Workload{Batch: 1, Seq: 4}, Device: "cpu", Impl: "hand"}
		if err := WriteJob(job, j); err != nil {
			t.Fatal(err)
		}
		argv, _ := TrainCommand(job)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		var ee *exec.ExitError
		want := fmt.Sprintf("arch.family '%s' is built only through transformers (layer.hf_only)", a.Family)
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), want) || !strings.Contains(string(out), "use impl transformers") {
			t.Errorf("%s, impl hand: got %v, %q; want exit 2 saying %q", name, err, out, want)
		}
	}
}
