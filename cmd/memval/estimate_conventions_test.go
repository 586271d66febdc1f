package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

// TestEstimateAttnImpl: --attn-impl goes into the workload and leaves the
// attention to it unless --attention is given; a config.json's
// attn_implementation is the default; a contradiction names --attn-impl.
func TestEstimateAttnImpl(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"model_type": "llama", "vocab_size": 1000, "hidden_size": 64,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 176,
		"attn_implementation": "flash_attention_2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		impl     model.AttnImpl
		att      model.Attention
		runError string
	}{
		{[]string{"--model", "gpt2"}, "", model.MathAttention, ""},
		{[]string{"--model", "gpt2", "--attn-impl", "sdpa"}, model.SDPAAttn, "", ""},
		{[]string{"--model", "gpt2", "--attn-impl", "eager", "--attention", "math"}, model.EagerAttn, model.MathAttention, ""},
		{[]string{"--model", "gpt2", "--attn-impl", "sdpa", "--attention", "math"}, model.SDPAAttn, model.MathAttention, "--attn-impl"},
		{[]string{"--model", "gpt2", "--attn-impl", "flex"}, "flex", "", "--attn-impl"},
		{[]string{"--config", cfg}, model.FlashAttention2, "", ""},
		{[]string{"--config", cfg, "--attn-impl", "hand"}, model.HandAttn, model.MathAttention, ""},
	} {
		req, err := estimateRequest(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if req.Workload.AttnImpl != tc.impl || req.Workload.Attention != tc.att {
			t.Errorf("%v: attn_impl %q attention %q, want %q %q", tc.args, req.Workload.AttnImpl, req.Workload.Attention, tc.impl, tc.att)
		}
		_, err = estimate.Run(req)
		if tc.runError == "" && err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		if tc.runError != "" && (err == nil || !strings.Contains(err.Error(), tc.runError)) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.runError)
		}
	}
}

// TestEstimateOpsCheckpointing: --checkpointing ops:torchtitan reaches the
// workload and the breakdown's ckpt.sac_mm term; an unknown policy names
// --checkpointing.
func TestEstimateOpsCheckpointing(t *testing.T) {
	req, err := estimateRequest(t, "--model", "llama-3-8b", "--checkpointing", "ops:torchtitan")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := estimate.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range rep.Estimates {
		for _, x := range e.Terms {
			found = found || x.Name == "ckpt.sac_mm" && x.Bytes > 0
		}
	}
	if !found {
		t.Error("--checkpointing ops:torchtitan: no ckpt.sac_mm term")
	}
	req, err = estimateRequest(t, "--model", "llama-3-8b", "--checkpointing", "ops:megatron")
	if err == nil {
		_, err = estimate.Run(req)
	}
	if err == nil || !strings.Contains(err.Error(), "checkpointing") {
		t.Errorf("ops:megatron: err %v, want one naming --checkpointing", err)
	}
}
