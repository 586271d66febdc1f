package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustParams(t *testing.T, data string) (Arch, ParamBreakdown) {
	t.Helper()
	a, err := ParseConfig([]byte(data))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	b, err := Params(a)
	if err != nil {
		t.Fatalf("Params: %v", err)
	}
	return a, b
}

// TestParseConfigFamilies covers the families testdata/hf-configs lacks,
// with the counts of their Hugging Face checkpoints.
func TestParseConfigFamilies(t *testing.T) {
	tests := []struct {
		name, json string
		want       int64
	}{
		{"mixtral-8x7b", `{"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
			"num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
			"num_experts_per_tok": 2, "tie_word_embeddings": false}`, 46_702_792_704},
		{"qwen2-0.5b", `{"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
			"num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": true}`, 494_032_768},
		{"qwen2-7b", `{"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
			"num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064}`, 7_615_616_512},
		{"gemma-2b", `{"model_type": "gemma", "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 18,
			"num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 256000}`, 2_506_172_416},
		{"gemma-7b (head_dim 256 with 16 heads of a 3072 hidden)", `{"model_type": "gemma", "hidden_size": 3072,
			"intermediate_size": 24576, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
			"head_dim": 256, "vocab_size": 256000}`, 8_537_680_896},
		{"phi-2", `{"model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,
			"num_attention_heads": 32, "vocab_size": 51200, "partial_rotary_factor": 0.4, "resid_pdrop": 0.1,
			"tie_word_embeddings": false}`, 2_779_683_840},
		{"opt-350m (project_in/out, post-norm)", `{"model_type": "opt", "hidden_size": 1024, "ffn_dim": 4096,
			"num_hidden_layers": 24, "num_attention_heads": 16, "vocab_size": 50272, "max_position_embeddings": 2048,
			"word_embed_proj_dim": 512, "do_layer_norm_before": false}`, 331_196_416},
		{"gpt2 with hidden_size alias and n_inner", `{"model_type": "gpt2", "hidden_size": 768, "n_embd": 768,
			"n_layer": 12, "n_head": 12, "n_inner": 3072, "vocab_size": 50257}`, 124_439_808},
		{"llama with biases", `{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
			"num_attention_heads": 4, "vocab_size": 100, "attention_bias": true, "mlp_bias": true, "tie_word_embeddings": true}`,
			// embed 6400; layer: attn 4*4096+4*64, mlp 3*8192+2*128+64, norms 128; final 64
			6400 + 2*(16384+256+24576+320+128) + 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := mustParams(t, tt.json)
			if b.Total != tt.want {
				t.Errorf("got %d, want %d", b.Total, tt.want)
			}
		})
	}
}

func TestParseConfigFields(t *testing.T) {
	a, err := LoadConfig(filepath.Join(hfConfigs, "gpt2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "gpt2" || a.Family != "gpt2" || a.Dropout != 0.1 || a.ContextLength != 1024 || a.MaxPositions != 1024 || !a.TiedHead || a.Act != "gelu_new" {
		t.Errorf("gpt2.json: got %+v", a)
	}
	a, err = LoadConfig(filepath.Join(hfConfigs, "opt-125m.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.PositionOffset != 2 || a.MaxPositions != 2048 || a.EmbedProj != 0 || a.Dropout != 0.1 || !a.FinalNorm {
		t.Errorf("opt-125m.json: got %+v", a)
	}
	a, err = LoadConfig(filepath.Join(hfConfigs, "pythia-160m.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxPositions != 0 || a.ContextLength != 2048 || a.TiedHead || a.Dropout != 0 {
		t.Errorf("pythia-160m.json: got %+v", a)
	}
	a, _ = mustParams(t, `{"model_type": "bert", "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 1,
		"num_attention_heads": 4, "vocab_size": 10, "hidden_dropout_prob": 0.05, "attention_probs_dropout_prob": 0.2}`)
	if a.Dropout != 0.2 || !a.NoHead || !a.Pooler || a.TokenTypes != 2 || a.MaxPositions != 512 {
		t.Errorf("bert: got %+v", a)
	}
}

func TestLoadConfigFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(hfConfigs, "llama-2-7b.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "my-model" || a.Layers != 32 {
		t.Errorf("got name %q, layers %d; want my-model, 32", a.Name, a.Layers)
	}
	_, err = LoadConfig(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const llama = `"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100`
	tests := []struct {
		name, json, field, msg string
	}{
		{"unknown model_type", `{"model_type": "t5"}`, "model_type", "supported: bert, bloom, dinov2, dinov2_with_registers, distilbert, falcon, gemma, gemma2, gemma3_text, gpt2, gpt_neo, gpt_neox, gptj, llama, mistral, mixtral, olmo2, opt, phi, phi3, qwen2, qwen2_moe, qwen3, qwen3_moe, roberta, starcoder2, vit, xlm-roberta"},
		{"t5 is not read", `{"model_type": "t5", "d_model": 512}`, "model_type", `"t5": not supported`},
		{"missing sizes named with the model_type", `{"model_type": "qwen3", "vocab_size": 10, "hidden_size": 64}`, "num_hidden_layers",
			"a qwen3 config needs vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size to be counted, and this one lacks num_hidden_layers, num_attention_heads, intermediate_size"},
		{"missing sizes list aliases", `{"model_type": "gpt_neo", "vocab_size": 10}`, "hidden_size", "lacks hidden_size, num_layers or num_hidden_layers, num_heads or num_attention_heads"},
		{"qwen3_moe with dense layers", `{"model_type": "qwen3_moe", ` + llama + `, "moe_intermediate_size": 32, "mlp_only_layers": [0]}`, "mlp_only_layers", "not supported"},
		{"qwen2_moe sparse step", `{"model_type": "qwen2_moe", ` + llama + `, "moe_intermediate_size": 32, "decoder_sparse_step": 2}`, "decoder_sparse_step", "not supported"},
		{"falcon ln count", `{"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "new_decoder_architecture": true, "num_ln_in_parallel_attn": 3}`, "num_ln_in_parallel_attn", "1 or 2"},
		{"starcoder2 use_bias not bool", `{"model_type": "starcoder2", ` + llama + `, "use_bias": 1}`, "use_bias", "true or false"},
		{"vanilla is not a model_type", `{"model_type": "vanilla"}`, "model_type", "not supported"},
		{"missing model_type", `{"hidden_size": 64}`, "model_type", "missing"},
		{"model_type not a string", `{"model_type": 3}`, "model_type", "must be a string"},
		{"missing hidden", `{"model_type": "llama", "vocab_size": 10}`, "hidden_size", "missing"},
		{"missing intermediate", `{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}`, "intermediate_size", "missing"},
		{"fractional size", `{"model_type": "llama", ` + strings.Replace(llama, `"num_hidden_layers": 2`, `"num_hidden_layers": 3.5`, 1) + `}`, "num_hidden_layers", "integer"},
		{"huge number", `{"model_type": "llama", ` + strings.Replace(llama, `"vocab_size": 100`, `"vocab_size": 1e309`, 1) + `}`, "vocab_size", "integer"},
		{"int64 overflow", `{"model_type": "llama", ` + strings.Replace(llama, `"vocab_size": 100`, `"vocab_size": 99999999999999999999`, 1) + `}`, "vocab_size", "64 bits"},
		{"above MaxDim", `{"model_type": "llama", ` + strings.Replace(llama, `"vocab_size": 100`, `"vocab_size": 4294967296`, 1) + `}`, "vocab_size", "larger"},
		{"negative", `{"model_type": "llama", ` + strings.Replace(llama, `"vocab_size": 100`, `"vocab_size": -5`, 1) + `}`, "vocab_size", "positive"},
		{"string size", `{"model_type": "llama", ` + strings.Replace(llama, `"vocab_size": 100`, `"vocab_size": "100"`, 1) + `}`, "vocab_size", "integer"},
		{"contradicting alias", `{"model_type": "gpt2", "n_embd": 768, "hidden_size": 1024, "n_layer": 1, "n_head": 12, "vocab_size": 10}`, "hidden_size", `contradicts "n_embd" = 768`},
		{"heads not dividing", `{"model_type": "gpt2", "n_embd": 768, "n_layer": 1, "n_head": 7, "vocab_size": 10}`, "n_head", "does not divide n_embd 768"},
		{"kv heads not dividing", `{"model_type": "llama", ` + llama + `, "num_key_value_heads": 3}`, "num_key_value_heads", "does not divide num_attention_heads 4"},
		{"bool as string", `{"model_type": "llama", ` + llama + `, "tie_word_embeddings": "yes"}`, "tie_word_embeddings", "true or false"},
		{"dropout out of range", `{"model_type": "llama", ` + llama + `, "attention_dropout": 1.5}`, "attention_dropout", "probability"},
		{"top-k above experts", `{"model_type": "mixtral", ` + llama + `, "num_local_experts": 2, "num_experts_per_tok": 3}`, "num_experts_per_tok", "more than the 2 experts"},
		{"phi qk_layernorm", `{"model_type": "phi", ` + llama + `, "qk_layernorm": true}`, "qk_layernorm", "not supported"},
		{"opt without affine norms", `{"model_type": "opt", "hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "layer_norm_elementwise_affine": false}`, "layer_norm_elementwise_affine", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got field %q, message %q; want field %q, message containing %q", fe.Field, err, tt.field, tt.msg)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"model_type": "gpt2"} {}`, `{"model_type": `, `null`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(hfConfigs, "*.json"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}`))
	f.Add([]byte(`{"model_type": "phi", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}`))
	// Shapes of the issue-16 families: MQA and new-architecture falcon,
	// ALiBi bloom, shared-expert qwen2_moe, encoders, parallel gptj.
	f.Add([]byte(`{"model_type": "falcon", "hidden_size": 64, "n_head": 4, "n_layer": 2, "vocab_size": 10, "multi_query": true}`))
	f.Add([]byte(`{"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10, "new_decoder_architecture": true, "num_kv_heads": 2, "num_ln_in_parallel_attn": 1, "parallel_attn": false}`))
	f.Add([]byte(`{"model_type": "bloom", "n_embed": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10}`))
	f.Add([]byte(`{"model_type": "qwen2_moe", "hidden_size": 64, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48, "num_experts": 4, "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "mlp_only_layers": []}`))
	f.Add([]byte(`{"model_type": "qwen3_moe", "hidden_size": 64, "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 5, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "head_dim": 8}`))
	f.Add([]byte(`{"model_type": "distilbert", "dim": 64, "hidden_dim": 128, "n_layers": 2, "n_heads": 4, "vocab_size": 10, "max_position_embeddings": 16}`))
	f.Add([]byte(`{"model_type": "xlm-roberta", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "type_vocab_size": 1, "max_position_embeddings": 18}`))
	f.Add([]byte(`{"model_type": "gptj", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10, "n_inner": null}`))
	f.Add([]byte(`{"model_type": "gpt_neo", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_attention_heads": 8, "vocab_size": 10}`))
	f.Add([]byte(`{"model_type": "starcoder2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 10, "use_bias": false}`))
	f.Add([]byte(`{"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 10}`))
	f.Add([]byte(`{"model_type": "gemma", "hidden_size": 2147483648, "intermediate_size": 2147483648, "num_hidden_layers": 2147483648, "num_attention_heads": 1, "vocab_size": 2147483648}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseConfig(data)
		if err != nil {
			return
		}
		b, err := Params(a)
		if err != nil {
			t.Fatalf("ParseConfig gave %+v, whose Params fails: %v", a, err)
		}
		if b.Total <= 0 || b.Total > MaxParams || b.ActivePerToken <= 0 || b.ActivePerToken > b.Total {
			t.Fatalf("ParseConfig gave %+v with total %d, active %d", a, b.Total, b.ActivePerToken)
		}
	})
}

// TestLoadConfigSnapshotFolder: a downloaded sharded checkpoint's folder
// (config.json, model.safetensors.index.json, no weight files here) is read
// from its config.json alone; the shards it names are never opened.
func TestLoadConfigSnapshotFolder(t *testing.T) {
	dir := filepath.Join("testdata", "snapshots", "qwen3-8b")
	shards, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil || len(shards) != 0 {
		t.Fatalf("the snapshot must hold no weights: %v %v", shards, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err != nil {
		t.Fatalf("the snapshot must hold a sharded checkpoint's index: %v", err)
	}
	a, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Params(a)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "qwen3-8b" || a.Family != "qwen3" || b.Total != 8_190_735_360 {
		t.Errorf("got name %q, family %q, %d parameters; want qwen3-8b, qwen3, 8190735360", a.Name, a.Family, b.Total)
	}
	// A folder without config.json says which file it looked for.
	empty := t.TempDir()
	if _, err := LoadConfig(empty); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("folder without config.json: got %v, want an error naming config.json", err)
	}
}
