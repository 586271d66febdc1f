package analytic

import (
	"errors"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestTorchBefore111SoftmaxInput: on a torch before 1.11 every eager
// softmax keeps its input too (attn.softmax_in, of attn.scores' size and
// dtype, derived); from 1.11, on the default 2.x and under SDPA there is
// no such term.
func TestTorchBefore111SoftmaxInput(t *testing.T) {
	cases := []struct {
		model string
		w     model.Workload
		want  bool
	}{
		{"gpt2", model.Workload{Torch: "1.10"}, true},
		{"gpt2", model.Workload{Torch: "1.10", Precision: model.FP16Mixed}, true},
		{"llama-2-7b", model.Workload{Torch: "1.9"}, true},
		{"bert-base-uncased", model.Workload{Torch: "1.10.2", Dropout: 0.1}, true},
		{"gpt2", model.Workload{Torch: "1.10", Checkpointing: model.SelectiveCheckpointing}, false}, // the core is recomputed
		{"gpt2", model.Workload{Torch: "1.11"}, false},
		{"gpt2", model.Workload{}, false},
		{"llama-2-7b", model.Workload{Torch: "1.10", Attention: model.FlashAttention}, false},
	}
	for _, c := range cases {
		c.w.Batch, c.w.Seq = 16, 512 // activations dominate the peak
		a := memPreset(t, c.model)
		e, err := Predict("breakdown", a, c.w)
		if err != nil {
			t.Fatalf("%s %+v: %v", c.model, c.w, err)
		}
		in, ok := e.Term("attn.softmax_in")
		if ok != c.want {
			t.Errorf("%s torch %q %s: attn.softmax_in present %v, want %v", c.model, c.w.Torch, c.w.Attention, ok, c.want)
			continue
		}
		if !ok {
			continue
		}
		out, _ := e.Term("attn.scores")
		if in.Bytes != out.Bytes || in.Bytes == 0 || in.Phase != out.Phase {
			t.Errorf("%s torch %s: attn.softmax_in %d bytes (%s), attn.scores %d (%s): want the same", c.model, c.w.Torch, in.Bytes, in.Phase, out.Bytes, out.Phase)
		}
		if in.Note != noteDerived {
			t.Errorf("%s: attn.softmax_in note %q, want %q", c.model, in.Note, noteDerived)
		}
		base := c.w
		base.Torch = ""
		e0, err := Predict("breakdown", a, base)
		if err != nil {
			t.Fatal(err)
		}
		if e.Peak <= e0.Peak {
			t.Errorf("%s: peak %d on torch %s, not above 2.x's %d", c.model, e.Peak, c.w.Torch, e0.Peak)
		}
	}
	// selective checkpointing recomputes the core, softmax input included
	w := model.Workload{Batch: 2, Seq: 128, Checkpointing: model.SelectiveCheckpointing}
	a := memPreset(t, "gpt2")
	e0, _ := Predict("breakdown", a, w)
	w.Torch = "1.10"
	e1, _ := Predict("breakdown", a, w)
	r0, _ := e0.Term("ckpt.recompute_attn")
	r1, _ := e1.Term("ckpt.recompute_attn")
	sc, _ := e1.Term("attn.scores")
	if sc.Bytes != 0 || r1.Bytes <= r0.Bytes {
		t.Errorf("selective on torch 1.10: recompute %d bytes, on 2.x %d: want more (the softmax input)", r1.Bytes, r0.Bytes)
	}
}

// TestBitsandbytesBefore043: before bitsandbytes 0.43 a 4-bit layer keeps
// its input, so under QLoRA the frozen base's linear inputs are saved as a
// trained model's are: for Llama, both norms' outputs, the attention's
// output before o_proj and the MLP's product before down_proj, 2 bytes
// each in bf16. No change for int8 weights or from 0.43; autocast is
// refused.
func TestBitsandbytesBefore043(t *testing.T) {
	a := memPreset(t, "llama-2-7b")
	w := model.Workload{Batch: 2, Seq: 512, Precision: model.BF16Pure, Attention: model.FlashAttention,
		LoRARank: 32, LoRAAlpha: 16, LoRADropout: 0.05, LoRATargets: "q_proj,v_proj", Weights: model.WeightsNF4NoDQ}
	saved := func(w model.Workload) uint64 {
		t.Helper()
		ts, err := SavedActivations(a, w)
		if err != nil {
			t.Fatal(err)
		}
		return SavedBytes(ts)
	}
	now := saved(w)
	old := w
	old.Bitsandbytes = "0.42"
	BS := uint64(w.Batch * w.Seq)
	want := BS * uint64(2*a.Hidden+a.Heads*a.HeadDim+a.FFN) * 2 * uint64(a.Layers)
	if got := saved(old) - now; got != want {
		t.Errorf("bitsandbytes 0.42: %d more saved bytes, want %d (the 4-bit layers' inputs)", got, want)
	}
	for _, v := range []string{"0.43", "0.45.1"} {
		w2 := w
		w2.Bitsandbytes = v
		if got := saved(w2); got != now {
			t.Errorf("bitsandbytes %s: %d saved bytes, want %d as unset", v, got, now)
		}
	}
	i8 := w
	i8.Weights, i8.Bitsandbytes = model.WeightsInt8, ""
	base := saved(i8)
	i8.Bitsandbytes = "0.42"
	if got := saved(i8); got != base {
		t.Errorf("int8 weights on bitsandbytes 0.42: %d saved bytes, want %d (only the 4-bit layers change)", got, base)
	}
	ac := old
	ac.Precision = model.BF16Mixed
	var fe *model.FieldError
	if _, err := Predict("breakdown", a, ac); !errors.As(err, &fe) || fe.Field != "bitsandbytes" {
		t.Errorf("bitsandbytes 0.42 under autocast: got %v, want a bitsandbytes field error", err)
	}
}
