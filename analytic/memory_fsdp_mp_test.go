package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestFSDPMixedPrecisionTerms holds the FSDP MixedPrecision model states to
// bytes computed by hand for llama-2-7b: N = 6,738,415,616 parameters, one
// layer (the FSDP unit) 4*4096^2 + 3*4096*11008 + 2*4096 = 202,383,360,
// the head 32000*4096 = 131,072,000, dp 8; the root unit (embedding, head,
// final norm) 2*131,072,000 + 4096, gathered under zero 3 with the layer
// computed and, on CUDA, the one prefetched.
func TestFSDPMixedPrecisionTerms(t *testing.T) {
	a := parallelArch(t, "llama-2-7b")
	const (
		n    = 6738415616
		unit = 202383360
		head = 131072000
		root = 2*head + 4096
	)
	base := model.Workload{Batch: 1, Seq: 512, ZeRO: 3, DP: 8, Engine: model.FSDP, FSDPMixed: "bf16", Precision: model.FP32}
	cases := []struct {
		name string
		edit func(*model.Workload)
		want map[string]uint64 // 0: the term must be absent
	}{
		{"fsdp zero 3 bf16", func(*model.Workload) {}, map[string]uint64{
			"weights": n / 8 * 4, "gradients": n / 8 * 4, "optimizer_states": n / 8 * 8, "master_weights": 0,
			"optimizer_step_temporaries": n / 8 * 4,
			"zero3_gather_buffer":        (root + 2*unit) * 2, "fsdp_reduce_scatter_buffer": unit * 2, "fsdp_unsharded_params": 0,
			"head_gradient": head * 2,
		}},
		{"reduce in fp32", func(w *model.Workload) { w.FSDPMixed = "bf16:fp32" }, map[string]uint64{
			"fsdp_reduce_scatter_buffer": unit * (2 + 4), "gradients": n / 8 * 4,
		}},
		{"accelerate upcasts a bf16 model", func(w *model.Workload) { w.Precision = model.BF16Pure }, map[string]uint64{
			"weights": n / 8 * 4, "gradients": n / 8 * 4, "optimizer_states": n / 8 * 8, "optimizer_step_temporaries": n / 8 * 4,
		}},
		{"fsdp2 zero 2 keeps every unit's bf16 copy", func(w *model.Workload) { w.ZeRO, w.Engine = 2, model.FSDP2 }, map[string]uint64{
			"weights": n / 8 * 4, "fsdp_unsharded_params": n * 2, "zero3_gather_buffer": 0, "fsdp_reduce_scatter_buffer": unit * 2,
		}},
		{"one rank still casts", func(w *model.Workload) { w.DP = 1 }, map[string]uint64{
			"weights": n * 4, "optimizer_states": n * 8, "zero3_gather_buffer": (root + 2*unit) * 2, "fsdp_reduce_scatter_buffer": unit * 2,
		}},
	}
	for _, c := range cases {
		w := base
		c.edit(&w)
		e, err := Predict("breakdown", a, w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for name, want := range c.want {
			got, ok := e.Term(name)
			switch {
			case want == 0 && ok:
				t.Errorf("%s: %s present (%d bytes), want none", c.name, name, got.Bytes)
			case want != 0 && got.Bytes != want:
				t.Errorf("%s: %s %d bytes, want %d", c.name, name, got.Bytes, want)
			}
		}
	}
}

// TestFSDPMixedPrecisionActivations: the layers compute in param_dtype, so
// the saved activations are bf16-pure's, not the fp32 model's.
func TestFSDPMixedPrecisionActivations(t *testing.T) {
	a := parallelArch(t, "llama-2-7b")
	w := model.Workload{Batch: 1, Seq: 512, ZeRO: 3, DP: 8, Engine: model.FSDP, FSDPMixed: "bf16"}
	mp, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	w.FSDPMixed = ""
	fp32, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	w.Precision = model.BF16Pure
	pure, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mlp.act", "attn.proj_in", "ln.out"} {
		if m, p := termBytes(&mp, name), termBytes(&pure, name); m != p || m == 0 {
			t.Errorf("%s: %d bytes under fsdp_mp, bf16-pure's %d", name, m, p)
		}
		if m, f := termBytes(&mp, name), termBytes(&fp32, name); 2*m != f {
			t.Errorf("%s: %d bytes under fsdp_mp, want half of fp32's %d", name, m, f)
		}
	}
	// bf16-master's zero-2 steady state counts full bf16 weights beside the
	// fp32 master shard; FSDP mixed precision keeps only the fp32 shards.
	w = model.Workload{Batch: 1, Seq: 512, ZeRO: 2, DP: 8, Engine: model.FSDP2, Precision: model.BF16Master}
	master, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	w.Precision, w.FSDPMixed = model.FP32, "bf16"
	sharded, err := Predict("breakdown", a, w)
	if err != nil {
		t.Fatal(err)
	}
	if d := int64(master.Steady) - int64(sharded.Steady); d < 11e9 {
		t.Errorf("zero 2 steady: bf16-master %d, fsdp_mp %d bytes; want bf16-master higher by about 2N - 2N/8 = 11.8e9", master.Steady, sharded.Steady)
	}
}

// TestFSDPMixedPrecisionErrors: each bad combination names fsdp_mp.
func TestFSDPMixedPrecisionErrors(t *testing.T) {
	a := parallelArch(t, "gpt2")
	cases := []model.Workload{
		{FSDPMixed: "bf16", ZeRO: 0, Engine: model.DDP},
		{FSDPMixed: "bf16", ZeRO: 3},
		{FSDPMixed: "fp32", ZeRO: 3, Engine: model.FSDP},
		{FSDPMixed: "bf16:", ZeRO: 3, Engine: model.FSDP},
		{FSDPMixed: "bf16:int8", ZeRO: 3, Engine: model.FSDP},
		{FSDPMixed: "bf16", ZeRO: 3, Engine: model.FSDP, Precision: model.BF16Master},
		{FSDPMixed: "bf16", ZeRO: 3, Engine: model.FSDP, Precision: model.BF16Mixed},
		{FSDPMixed: "bf16", ZeRO: 3, Engine: model.FSDP, LoRARank: 8},
	}
	for _, w := range cases {
		w.Batch, w.Seq = 1, 64
		_, err := Predict("breakdown", a, w)
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != "fsdp_mp" {
			t.Errorf("%+v: error %v, want a field error on fsdp_mp", w, err)
		}
	}
}
