package model_test

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// printTotal prints a preset's parameter count.
func printTotal(name string) {
	a, err := model.Preset(name)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := model.Params(a)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (%s): %d\n", name, a.Family, b.Total)
}

func ExampleParams() {
	// Bare dimensions take their family's structure (GPT-2's biases,
	// LayerNorms, learned positions and tied head).
	b, err := model.Params(model.Arch{Family: "gpt2", Layers: 12, Hidden: 768, Heads: 12, Vocab: 50257})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("total", b.Total, "per layer", b.PerLayer, "embeddings", b.Embeddings)
	// Output: total 124439808 per layer 7087872 embeddings 39383808
}

func ExampleParams_vanilla() {
	printTotal("seed-example")
	printTotal("gpt3")
	// Output:
	// seed-example (vanilla): 123417600
	// gpt3 (gpt2): 174604259328
}

func ExampleParams_gpt2() {
	for _, n := range []string{"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"} {
		printTotal(n)
	}
	// Output:
	// gpt2 (gpt2): 124439808
	// gpt2-medium (gpt2): 354823168
	// gpt2-large (gpt2): 774030080
	// gpt2-xl (gpt2): 1557611200
}

func ExampleParams_gptNeoX() {
	printTotal("pythia-160m")
	// Output: pythia-160m (gpt_neox): 162322944
}

func ExampleParams_opt() {
	printTotal("opt-125m")
	// Output: opt-125m (opt): 125239296
}

func ExampleParams_bert() {
	printTotal("bert-base-uncased")
	// Output: bert-base-uncased (bert): 109482240
}

func ExampleParams_llama() {
	printTotal("llama-2-7b")
	printTotal("llama-3-8b")
	// Output:
	// llama-2-7b (llama): 6738415616
	// llama-3-8b (llama): 8030261248
}

func ExampleParams_mistral() {
	printTotal("mistral-7b")
	// Output: mistral-7b (mistral): 7241732096
}

func ExampleParams_mixtral() {
	a, _ := model.Preset("mixtral-8x7b")
	b, err := model.Params(a)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("total", b.Total, "active per token", b.ActivePerToken)
	// Output: total 46702792704 active per token 12879925248
}

func ExampleParams_qwen2() {
	printTotal("qwen2-0.5b")
	printTotal("qwen2-7b")
	// Output:
	// qwen2-0.5b (qwen2): 494032768
	// qwen2-7b (qwen2): 7615616512
}

func ExampleParams_gemma() {
	printTotal("gemma-2b")
	// Output: gemma-2b (gemma): 2506172416
}

func ExampleParams_phi() {
	printTotal("phi-2")
	// Output: phi-2 (phi): 2779683840
}

func ExampleParams_qwen3() {
	printTotal("qwen3-8b")
	a, _ := model.Preset("qwen3-30b-a3b")
	b, err := model.Params(a)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("qwen3-30b-a3b total", b.Total, "active per token", b.ActivePerToken)
	// Output:
	// qwen3-8b (qwen3): 8190735360
	// qwen3-30b-a3b total 30532122624 active per token 3353032704
}

func ExampleParams_gemma2() {
	printTotal("gemma-2-2b")
	printTotal("gemma-3-1b")
	// Output:
	// gemma-2-2b (gemma2): 2614341888
	// gemma-3-1b (gemma3_text): 999885952
}

func ExampleParams_encoders() {
	printTotal("roberta-base")
	printTotal("distilbert-base-uncased")
	// Output:
	// roberta-base (roberta): 124645632
	// distilbert-base-uncased (distilbert): 66362880
}

func ExampleParams_falcon() {
	// Multi-query attention: k and v are one head of 64 each.
	a, _ := model.Preset("falcon-7b")
	b, err := model.Params(a)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.KVHeads, a.HeadDim, b.Total)
	// Output: 1 64 6921720704
}

func ExampleParseConfig() {
	a, err := model.ParseConfig([]byte(`{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
		"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := model.Params(a)
	fmt.Println(a.Family, a.KVHeads, a.HeadDim, b.Total)
	// Output: llama 8 128 8030261248
}

func ExampleSeedParamExample() {
	s := model.SeedParamExample()
	fmt.Println("FFN printed", s.Printed.FFN, "recomputed", s.Recomputed.FFN)
	fmt.Println("total printed", s.Printed.Total, "recomputed", s.Recomputed.Total)
	// Output:
	// FFN printed 4719616 recomputed 4722432
	// total printed 123383808 recomputed 123417600
}

func ExamplePresets() {
	fmt.Println(model.Presets())
	// Output: [bert-base-uncased bloom-560m dinov2-base dinov2-small distilbert-base-uncased falcon-7b gemma-2-2b gemma-2b gemma-3-1b gpt-j-6b gpt-neo-125m gpt2 gpt2-large gpt2-medium gpt2-xl gpt3 llama-2-7b llama-3-8b mistral-7b mixtral-8x7b olmo-2-7b opt-125m phi-2 phi-3-mini pythia-160m qwen1.5-moe-a2.7b qwen2-0.5b qwen2-7b qwen3-30b-a3b qwen3-4b qwen3-8b roberta-base seed-example starcoder2-3b vit-base-patch16-224]
}
