package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEstimateQLoRA is issue 15's done command: a per-term table and a
// verdict, the trainable parameters PEFT prints.
func TestEstimateQLoRA(t *testing.T) {
	args := []string{"estimate", "--model", "llama-3-8b", "--lora-rank", "8", "--lora-targets", "all-linear", "--weights", "nf4",
		"--batch", "1", "--seq", "2048", "--precision", "bf16-pure", "--checkpointing", "full", "--gpu", "rtx-4090"}
	code, out, errw := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"20,971,520 trainable", "LoRA r=8 on all-linear", "weights nf4", "weights_quantized", "lora_weights",
		"dequant_buffer", "gradients", "optimizer_states", "ckpt.block_in", "fits on rtx-4090", ": yes,"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, append(args, "--json")...)
	var rep struct {
		Model struct {
			Params    int64 `json:"params"`
			Trainable int64 `json:"trainable_params"`
		} `json:"model"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Model.Trainable != 20971520 || rep.Model.Params != 8030261248 {
		t.Errorf("json: exit %d, model %+v", code, rep.Model)
	}
}

// TestEstimateFinetuneErrors: bad fine-tuning flags name the flag and
// what would be valid.
func TestEstimateFinetuneErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--model", "llama-3-8b", "--lora-rank", "8", "--lora-targets", "c_attn"},
			[]string{"--lora-targets", "down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj", "all-linear"}},
		{[]string{"--model", "gpt2", "--lora-rank", "1000", "--lora-targets", "c_attn"}, []string{"--lora-rank", "at most 768"}},
		{[]string{"--model", "gpt2", "--weights", "nf3"}, []string{"--weights", "nf4", "int4:G"}},
		{[]string{"--model", "gpt2", "--weights", "nf4"}, []string{"--weights", "lora"}},
		{[]string{"--model", "mixtral-8x7b", "--lora-rank", "8", "--weights", "nf4"}, []string{"mixture-of-experts"}},
		{[]string{"--model", "gpt2", "--head", "seq-cls:0"}, []string{"--head", "seq-cls:2"}},
		{[]string{"--model", "gpt2", "--head", "mlm"}, []string{"--head", "decoder"}},
		{[]string{"--model", "gpt2", "--optimizer-impl", "vector"}, []string{"--optimizer-impl", "foreach, fused, for-loop"}},
		{[]string{"--model", "gpt2", "--grad-accum", "0"}, []string{"--grad-accum"}},
		{[]string{"--model", "gpt2", "--zero-grad", "maybe"}, []string{"--zero-grad", "none, zeros"}},
		{[]string{"--model", "gpt2", "--optimizer", "lion", "--optimizer-impl", "fused"}, []string{"--optimizer-impl", "lion"}},
	} {
		code, _, errw := runCLI(t, append([]string{"estimate"}, c.args...)...)
		if code == 0 {
			t.Errorf("%v: exit 0, want an error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errw, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errw, w)
			}
		}
	}
}
