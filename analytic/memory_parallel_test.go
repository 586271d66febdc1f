package analytic

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func parallelArch(t *testing.T, name string) model.Arch {
	t.Helper()
	a, err := model.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func termBytes(e *Estimate, name string) uint64 {
	t, _ := e.Term(name)
	return t.Bytes
}

// TestPipelineActivations checks the saved per-layer activations of each
// stage against the 1F1B and interleaved in-flight counts, relative to one
// GPU holding the whole model.
func TestPipelineActivations(t *testing.T) {
	a := parallelArch(t, "llama-2-7b") // 32 layers
	base := model.Workload{Batch: 1, Seq: 2048, Precision: model.BF16Mixed, Checkpointing: model.FullCheckpointing}
	one, err := Predict("breakdown", a, base)
	if err != nil {
		t.Fatal(err)
	}
	whole := float64(termBytes(&one, "ckpt.block_in"))
	cases := []struct {
		pp, v, m, stage int
		want            float64 // ckpt.block_in relative to the whole model's
	}{
		{4, 1, 0, 0, 1},                   // L/p layers x p micro-batches
		{4, 1, 0, 1, 0.75},                // p-s in flight
		{4, 1, 0, 3, 0.25},                // the last stage: one
		{4, 1, 2, 0, 0.5},                 // only 2 micro-batches
		{4, 2, 0, 0, 1 + 3.0/8},           // Korthikanti: 1 + (p-1)/(pv)
		{4, 2, 0, 3, (4*1 + 1) / 8.0},     // (v-1)p + 1 chunk micro-batches of L/8 layers
		{8, 1, 0, 7, 1.0 / 8},             // 4 layers, one micro-batch
		{2, 4, 0, 0, (2 + 3*2 + 1) / 8.0}, // 2(p-1) + (v-1)p + 1
	}
	for _, c := range cases {
		w := base
		w.PP, w.PPInterleave, w.Microbatches, w.PPStage = c.pp, c.v, c.m, c.stage
		e, err := Predict("breakdown", a, w)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		got := float64(termBytes(&e, "ckpt.block_in")) / whole
		if math.Abs(got-c.want) > 1e-6 {
			t.Errorf("pp %d x%d m %d stage %d: block_in %.4f of the whole model's, want %.4f", c.pp, c.v, c.m, c.stage, got, c.want)
		}
		_, hasLogits := e.Term("logits.output")
		if last := c.stage == c.pp-1; hasLogits != last {
			t.Errorf("pp %d stage %d: logits term present %v, want %v (last stage only)", c.pp, c.stage, hasLogits, last)
		}
	}
}

// TestPipelineParams checks that the stages' weights add up to the model's
// (plus the last stage's copy of tied embeddings) and that inner stages
// hold L/p layers only.
func TestPipelineParams(t *testing.T) {
	for _, name := range []string{"llama-2-7b", "gpt2"} {
		a := parallelArch(t, name)
		w := model.Workload{Batch: 1, Seq: 512, PP: 4}
		var sum float64
		var n int64
		for s := 0; s < 4; s++ {
			w.PPStage = s
			e, err := Predict("breakdown", a, w)
			if err != nil {
				t.Fatal(err)
			}
			tm, _ := e.Term("weights")
			sum += tm.Feature
			n = e.Params
		}
		a.Normalize()
		want := float64(n)
		if a.TiedHead {
			want += float64(a.Vocab * a.Hidden)
		}
		if math.Abs(sum-want)/want > 1e-9 {
			t.Errorf("%s: stages hold %.0f parameters, want %.0f", name, sum, want)
		}
	}
}

func TestContextParallel(t *testing.T) {
	a := parallelArch(t, "llama-2-7b")
	w := model.Workload{Batch: 1, Seq: 8192, Precision: model.BF16Mixed, Attention: model.FlashAttention, ZeRO: 1, DP: 2}
	one, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	w.CP = 4
	e, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		term string
		want float64
	}{{"logits.output", 0.25}, {"optimizer_states", 0.25}, {"weights", 1}} {
		got := float64(termBytes(&e, c.term)) / float64(termBytes(&one, c.term))
		if math.Abs(got-c.want) > 1e-3 {
			t.Errorf("cp 4: %s is %.4f of cp 1's, want %.4f", c.term, got, c.want)
		}
	}
	w.Attention = model.MathAttention
	var fe *model.FieldError
	if _, err := Predict("breakdown", a, w); !errors.As(err, &fe) || fe.Field != "cp" {
		t.Errorf("cp with math attention: %v, want a FieldError on cp", err)
	}
}

func TestOffloadAndEngines(t *testing.T) {
	a := parallelArch(t, "llama-2-7b")
	base := model.Workload{Batch: 1, Seq: 1024, Precision: model.BF16Master, ZeRO: 2, DP: 8}
	plain, err := Predict("breakdown", a, base)
	if err != nil {
		t.Fatal(err)
	}
	w := base
	w.Offload = model.OffloadOptimizer
	e, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Term("optimizer_states"); ok || e.Host == nil {
		t.Fatalf("offload optimizer: optimizer states still on the GPU or no host memory: %+v", e.Host)
	}
	moved := termBytes(&plain, "optimizer_states") + termBytes(&plain, "master_weights") + termBytes(&plain, "optimizer_step_temporaries")
	fp32Grads := uint64(float64(plain.Params) / 8 * 4)
	if got := e.Host.Bytes; math.Abs(float64(got)-float64(moved+fp32Grads))/float64(got) > 1e-6 {
		t.Errorf("host %d bytes, want the moved states %d + fp32 gradient shard %d", got, moved, fp32Grads)
	}
	if e.Peak >= plain.Peak {
		t.Errorf("offload: GPU peak %d not below %d", e.Peak, plain.Peak)
	}

	w = model.Workload{Batch: 1, Seq: 1024, Precision: model.BF16Mixed, DP: 8, Engine: model.DDP}
	e, err = Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	if b, g := termBytes(&e, "ddp_gradient_buckets"), termBytes(&e, "gradients"); b != g {
		t.Errorf("ddp buckets %d bytes, want one copy of the gradients %d", b, g)
	}
	w.BucketView = true
	if e, _ = Predict("breakdown", a, w); termBytes(&e, "ddp_gradient_buckets") != 0 {
		t.Errorf("bucket view: buckets still counted")
	}
	w = model.Workload{Batch: 1, Seq: 1024, Precision: model.BF16Mixed, DP: 8, ZeRO: 3, Engine: model.FSDP2}
	if e, err = Predict("breakdown", a, w); err != nil || termBytes(&e, "fsdp_reduce_scatter_buffer") == 0 {
		t.Errorf("fsdp2: no reduce-scatter buffer (%v)", err)
	}
	if err := PredictDevice(&e, "breakdown", a, w, DeviceOptions{}); err != nil || e.Device.DevicePeak < e.Peak {
		t.Errorf("fsdp2 device peak %v below the peak (%v)", e.Device, err)
	}
}

func TestParallelErrors(t *testing.T) {
	a := parallelArch(t, "llama-2-7b")
	cases := []struct {
		w     model.Workload
		field string
	}{
		{model.Workload{Batch: 1, Seq: 64, PP: 5}, "pp"},
		{model.Workload{Batch: 1, Seq: 64, PP: 4, PPInterleave: 3}, "pp"},
		{model.Workload{Batch: 1, Seq: 64, PPInterleave: 2}, "pp_interleave"},
		{model.Workload{Batch: 1, Seq: 64, PP: 2, PPStage: 2}, "pp_stage"},
		{model.Workload{Batch: 1, Seq: 64, Offload: "disk"}, "offload"},
		{model.Workload{Batch: 1, Seq: 64, Offload: model.OffloadParams, ZeRO: 2}, "offload"},
		{model.Workload{Batch: 1, Seq: 64, Engine: model.DDP, ZeRO: 1}, "engine"},
		{model.Workload{Batch: 1, Seq: 64, Engine: model.FSDP, ZeRO: 1}, "engine"},
		{model.Workload{Batch: 1, Seq: 64, BucketView: true}, "bucket_view"},
		{model.Workload{Batch: 1, Seq: 64, PP: 2, Inference: true}, "inference"},
		{model.Workload{Batch: 1, Seq: 63, CP: 2, Attention: model.FlashAttention}, "cp"},
	}
	for _, c := range cases {
		_, err := Predict("breakdown", a, c.w)
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.w, err, c.field)
		}
	}
	if _, err := Predict("megatron", a, model.Workload{Batch: 1, Seq: 64, PP: 2}); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("megatron with pp: %v, want ErrNotApplicable", err)
	}
}

// TestWorkloadJSONUnchanged: a workload without the new settings encodes
// without their keys (existing goldens stay byte-identical).
func TestWorkloadJSONUnchanged(t *testing.T) {
	b, err := json.Marshal(model.Workload{Batch: 1, Seq: 2, DP: 1, TP: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pp", "cp", "offload", "engine", "microbatches", "bucket_view"} {
		if strings.Contains(string(b), `"`+k) {
			t.Errorf("%s: key %s present", b, k)
		}
	}
}
