package model

import (
	"fmt"
	"sort"
	"strings"
)

// preset is a built-in model: its family and sizes, as its public
// config.json gives them, plus what differs from the family's defaults.
type preset struct {
	arch   Arch
	adjust func(*Arch) // changes to the family's structure, if any
}

func dims(family string, layers, hidden, heads, kvHeads, ffn, vocab, context int, dropout float64) Arch {
	return Arch{Family: family, Layers: layers, Hidden: hidden, Heads: heads, KVHeads: kvHeads,
		FFN: ffn, Vocab: vocab, ContextLength: context, Dropout: dropout}
}

// presets are the built-in models, from their public configs (Hugging Face
// hub config.json), the seed article's example and the GPT-3 paper.
var presets = map[string]preset{
	// The seed article's worked example: H=768, h=12, L=12, V=50,000,
	// d_ff=4H, the output projection left out.
	"seed-example": {arch: dims("vanilla", 12, 768, 12, 0, 3072, 50000, 0, 0)},
	// GPT-3 175B (Brown et al. 2020, table 2.1): GPT-2's layer at
	// d_model 12288, 96 layers and heads, n_ctx 2048, GPT-2's vocabulary.
	"gpt3": {arch: dims("gpt2", 96, 12288, 96, 0, 49152, 50257, 2048, 0)},

	"gpt2":              {arch: dims("gpt2", 12, 768, 12, 0, 0, 50257, 1024, 0.1)},
	"gpt2-medium":       {arch: dims("gpt2", 24, 1024, 16, 0, 0, 50257, 1024, 0.1)},
	"gpt2-large":        {arch: dims("gpt2", 36, 1280, 20, 0, 0, 50257, 1024, 0.1)},
	"gpt2-xl":           {arch: dims("gpt2", 48, 1600, 25, 0, 0, 50257, 1024, 0.1)},
	"pythia-160m":       {arch: dims("gpt_neox", 12, 768, 12, 0, 3072, 50304, 2048, 0)},
	"opt-125m":          {arch: dims("opt", 12, 768, 12, 0, 3072, 50272, 2048, 0.1)},
	"bert-base-uncased": {arch: dims("bert", 12, 768, 12, 0, 3072, 30522, 512, 0.1)},
	"llama-2-7b":        {arch: dims("llama", 32, 4096, 32, 32, 11008, 32000, 4096, 0)},
	"llama-3-8b":        {arch: dims("llama", 32, 4096, 32, 8, 14336, 128256, 8192, 0)},
	"mistral-7b":        {arch: dims("mistral", 32, 4096, 32, 8, 14336, 32000, 32768, 0)},
	"mixtral-8x7b":      {arch: dims("mixtral", 32, 4096, 32, 8, 14336, 32000, 32768, 0), adjust: func(a *Arch) { a.Experts, a.ExpertsPerToken = 8, 2 }},
	"qwen2-7b":          {arch: dims("qwen2", 28, 3584, 28, 4, 18944, 152064, 131072, 0)},
	"qwen2-0.5b":        {arch: dims("qwen2", 24, 896, 14, 2, 4864, 151936, 32768, 0), adjust: func(a *Arch) { a.TiedHead = true }},
	"gemma-2b":          {arch: dims("gemma", 18, 2048, 8, 1, 16384, 256000, 8192, 0), adjust: func(a *Arch) { a.HeadDim = 256 }},
	"phi-2":             {arch: dims("phi", 32, 2560, 32, 32, 10240, 51200, 2048, 0.1), adjust: func(a *Arch) { a.RotaryDim = 32 }}, // partial_rotary_factor 0.4

	// Issue 16's families (testdata/hf-configs and config_families_test.go
	// give each count's source).
	"qwen3-4b":                {arch: dims("qwen3", 36, 2560, 32, 8, 9728, 151936, 40960, 0), adjust: func(a *Arch) { a.HeadDim, a.TiedHead = 128, true }},
	"qwen3-8b":                {arch: dims("qwen3", 36, 4096, 32, 8, 12288, 151936, 40960, 0)},
	"qwen3-30b-a3b":           {arch: dims("qwen3_moe", 48, 2048, 32, 4, 768, 151936, 40960, 0), adjust: func(a *Arch) { a.HeadDim, a.Experts, a.ExpertsPerToken = 128, 128, 8 }},
	"qwen1.5-moe-a2.7b":       {arch: dims("qwen2_moe", 24, 2048, 16, 16, 1408, 151936, 8192, 0), adjust: func(a *Arch) { a.Experts, a.ExpertsPerToken, a.SharedFFN = 60, 4, 5632 }},
	"phi-3-mini":              {arch: dims("phi3", 32, 3072, 32, 32, 8192, 32064, 4096, 0)},
	"gemma-2-2b":              {arch: dims("gemma2", 26, 2304, 8, 4, 9216, 256000, 8192, 0), adjust: func(a *Arch) { a.HeadDim = 256 }},
	"gemma-3-1b":              {arch: dims("gemma3_text", 26, 1152, 4, 1, 6912, 262144, 32768, 0), adjust: func(a *Arch) { a.HeadDim, a.SlidingWindow = 256, 512 }},
	"olmo-2-7b":               {arch: dims("olmo2", 32, 4096, 32, 32, 11008, 100352, 4096, 0)},
	"starcoder2-3b":           {arch: dims("starcoder2", 30, 3072, 24, 2, 12288, 49152, 16384, 0.1), adjust: func(a *Arch) { a.SlidingWindow = 4096 }},
	"gpt-neo-125m":            {arch: dims("gpt_neo", 12, 768, 12, 0, 0, 50257, 2048, 0)},
	"gpt-j-6b":                {arch: dims("gptj", 28, 4096, 16, 0, 0, 50400, 2048, 0)},
	"bloom-560m":              {arch: dims("bloom", 24, 1024, 16, 0, 0, 250880, 2048, 0)},
	"falcon-7b":               {arch: dims("falcon", 32, 4544, 71, 1, 0, 65024, 2048, 0)},
	"roberta-base":            {arch: dims("roberta", 12, 768, 12, 0, 3072, 50265, 514, 0.1), adjust: func(a *Arch) { a.TokenTypes = 1 }},
	"distilbert-base-uncased": {arch: dims("distilbert", 6, 768, 12, 0, 3072, 30522, 512, 0.1)},

	// Vision transformers (issues 16 and 20; testdata/hf-configs gives
	// each count's source): no vocabulary, the context is the tokens per
	// image (patches + class token).
	"vit-base-patch16-224": {arch: dims("vit", 12, 768, 12, 0, 3072, 0, 0, 0), adjust: func(a *Arch) { a.Head, a.Labels = HeadImageCls, 1000 }},
	"dinov2-small":         {arch: dims("dinov2", 12, 384, 6, 0, 1536, 0, 0, 0), adjust: func(a *Arch) { a.ImageSize = 518 }},
	"dinov2-base":          {arch: dims("dinov2", 12, 768, 12, 0, 3072, 0, 0, 0), adjust: func(a *Arch) { a.ImageSize = 518 }},
}

// Presets lists the names Preset knows, sorted.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownPreset is wrapped by Preset's error for a name it does not know.
var ErrUnknownPreset = fmt.Errorf("unknown model preset")

// Preset returns the built-in model called name, normalized, with Name set.
// Names are case-insensitive ("GPT2" is "gpt2").
func Preset(name string) (Arch, error) {
	p, ok := presets[strings.ToLower(name)]
	if !ok {
		return Arch{}, fmt.Errorf("%w %q; use one of %s", ErrUnknownPreset, name, strings.Join(Presets(), ", "))
	}
	a := p.arch
	a.Name = strings.ToLower(name)
	if p.adjust != nil {
		// Structure first, then the preset's own changes on top of it.
		families[a.Family].apply(&a)
		p.adjust(&a)
	}
	if err := a.Normalize(); err != nil {
		return Arch{}, fmt.Errorf("preset %s: %w", name, err) // a bug in the table above
	}
	return a, nil
}
