package scenarios

import (
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func TestSpecFinetune(t *testing.T) {
	src := "name: qlora\nmodel: llama-3-8b\nbatch: 1\nseq: 2048\nprecision: bf16-pure\ncheckpointing: full\n" +
		"lora_rank: 8\nlora_alpha: 16\nlora_dropout: 0.05\nlora_targets: all-linear\nweights: nf4\n" +
		"optimizer: paged-adamw8bit\ngrad_accum: 4\nzero_grad: zeros\n"
	s, err := ParseSpec([]byte(src), "qlora.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, w, err := s.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if w.LoRARank != 8 || w.LoRAAlpha != 16 || w.LoRADropout != 0.05 || w.LoRATargets != model.LoRAAllLinear ||
		w.Weights != model.WeightsNF4 || w.GradAccum != 4 || w.ZeroGrad != model.ZeroGradZeros || w.Optimizer != model.PagedAdamW8bit {
		t.Errorf("workload %+v", w)
	}
	if n, _ := model.TrainableParams(a, w, 0); n != 20971520 {
		t.Errorf("trainable %d", n)
	}
	h, err := ParseSpec([]byte("model: gpt2\nbatch: 2\nseq: 64\nhead: seq-cls:3\noptimizer_impl: fused\n"), "cls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, w, err = h.Resolve()
	if err != nil || a.Head != model.HeadSeqCls || a.Labels != 3 || w.OptimizerImpl != model.ImplFused {
		t.Errorf("head spec: %v, %s:%d, %s", err, a.Head, a.Labels, w.OptimizerImpl)
	}
}

func TestSpecFinetuneErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"lora_rank: 0\n", "lora_rank"},
		{"lora_dropout: 1.5\n", "lora_dropout"},
		{"weights: nf5\n", "nf4"},
		{"head: seq-cls\n", "seq-cls:2"},
		{"optimizer_impl: vector\n", "foreach"},
		{"zero_grad: maybe\n", "zeros"},
		{"grad_accum: 0\n", "grad_accum"},
	} {
		_, err := ParseSpec([]byte("model: gpt2\nbatch: 2\nseq: 64\n"+c.src), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.src, err, c.want)
		}
	}
	// Errors against the model come from Resolve.
	for _, c := range []struct{ src, want string }{
		{"lora_rank: 8\nlora_targets: q_proj\n", "c_attn, c_fc, c_proj"},
		{"weights: nf4\n", "--lora-rank"},
	} {
		s, err := ParseSpec([]byte("model: gpt2\nbatch: 2\nseq: 64\n"+c.src), "bad.yaml")
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		if _, _, err := s.Resolve(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: Resolve %v, want an error with %q", c.src, err, c.want)
		}
	}
}
