package model

import (
	"fmt"
	"math"
	"strconv"
)

// SeedCounts are the parts of the seed article's parameter formula for one
// model (FORMULAS.md section 1).
type SeedCounts struct {
	Embedding int64 `json:"embedding"`  // V*H
	Attention int64 `json:"attention"`  // 4*H^2 (no biases)
	FFN       int64 `json:"ffn"`        // 2*H*d_ff + H + d_ff
	LayerNorm int64 `json:"layer_norm"` // 2*H, one of the two per layer
	PerLayer  int64 `json:"per_layer"`  // attention + FFN + 2*layer norm
	AllLayers int64 `json:"all_layers"` // L * per layer
	Total     int64 `json:"total"`      // L * per layer + embedding (output projection left out)
}

// SeedFormula evaluates the seed article's parameter formula as written:
//
//	embedding  = V*H
//	attention  = 4*H^2
//	FFN        = 2*H*d_ff + H + d_ff
//	layer norm = 2*H
//	layer      = attention + FFN + 2*layer norm
//	total      = L*layer + embedding
//
// with H = hidden, d_ff = ffn, L = layers, V = vocab; all must be positive
// and at most MaxDim, else it returns an error. The output projection the
// seed names is left out, as in its example (a tied head). It equals Params
// of the "vanilla" family.
func SeedFormula(hidden, ffn, layers, vocab int) (SeedCounts, error) {
	for _, v := range []int{hidden, ffn, layers, vocab} {
		if v <= 0 || v > MaxDim {
			return SeedCounts{}, fmt.Errorf("seed formula: sizes must be in 1..%d, got hidden %d, ffn %d, layers %d, vocab %d", MaxDim, hidden, ffn, layers, vocab)
		}
	}
	var c checked
	s := SeedCounts{
		Embedding: c.mul(vocab, hidden),
		Attention: c.mul(4, hidden, hidden),
		FFN:       c.add(c.mul(2, hidden, ffn), int64(hidden), int64(ffn)),
		LayerNorm: c.mul(2, hidden),
	}
	s.PerLayer = c.add(s.Attention, s.FFN, c.mul(2, int(s.LayerNorm)))
	s.AllLayers = c.mul(layers, int(s.PerLayer))
	s.Total = c.add(s.AllLayers, s.Embedding)
	if c.overflow {
		return SeedCounts{}, fmt.Errorf("seed formula: the count overflows 64 bits for hidden %d, ffn %d, layers %d, vocab %d", hidden, ffn, layers, vocab)
	}
	return s, nil
}

// SeedParams puts the seed article's worked parameter example (H=768,
// h=12, L=12, V=50,000, d_ff=3072) as printed beside the same formula
// recomputed, with the model memory at 4 and 2 bytes per parameter.
type SeedParams struct {
	Printed    SeedCounts `json:"printed"`
	Recomputed SeedCounts `json:"recomputed"`

	PrintedFP32Bytes    uint64 `json:"printed_fp32_bytes"` // 123,383,808 * 4
	PrintedFP16Bytes    uint64 `json:"printed_fp16_bytes"` // 123,383,808 * 2
	RecomputedFP32Bytes uint64 `json:"recomputed_fp32_bytes"`
	RecomputedFP16Bytes uint64 `json:"recomputed_fp16_bytes"`

	Errata []string `json:"errata"`
}

// SeedParamExample returns the seed article's parameter example, its
// printed figures, the recomputed ones and what the seed got wrong.
func SeedParamExample() SeedParams {
	re, err := SeedFormula(768, 3072, 12, 50000)
	if err != nil {
		panic(err) // constant arguments: cannot fail
	}
	const printedTotal = 123_383_808
	return SeedParams{
		Printed: SeedCounts{
			Embedding: 38_400_000,
			Attention: 2_359_296,
			FFN:       4_719_616,
			LayerNorm: 1_536,
			PerLayer:  7_081_984,
			AllLayers: 84_983_808,
			Total:     printedTotal,
		},
		Recomputed:          re,
		PrintedFP32Bytes:    printedTotal * 4,
		PrintedFP16Bytes:    printedTotal * 2,
		RecomputedFP32Bytes: uint64(re.Total) * 4,
		RecomputedFP16Bytes: uint64(re.Total) * 2,
		Errata: []string{
			fmt.Sprintf("feed-forward: 2*768*3072 + 768 + 3072 = %s, not 4,719,616 as printed (off by %s); so a layer is %s, 12 layers %s and the total %s",
				commas(re.FFN), commas(re.FFN-4_719_616), commas(re.PerLayer), commas(re.AllLayers), commas(re.Total)),
			"\"123亿\" in the Chinese text means 12.3 billion; the model has about 123 million parameters",
			fmt.Sprintf("the output projection is named in the total but left out (a tied head); untied it would add V*H = %s", commas(re.Embedding)),
			"the attention count 4*H^2 leaves out the 4*H biases of the Q, K, V and output projections that most implementations have",
		},
	}
}

// SeedGPT3 is the seed article's GPT-3 example (d_model 12288, d_ff 49152,
// 96 layers) beside the counts it should have given.
type SeedGPT3 struct {
	Hidden int `json:"hidden"`
	FFN    int `json:"ffn"`
	Layers int `json:"layers"`

	// The seed's own formula, 8*H^2 + 8*H*d_ff + 2*H per layer, evaluated.
	SeedFormulaPerLayer int64 `json:"seed_formula_per_layer"`
	// The figures the seed prints: "1.1亿" (1.1e8) per layer, 105.6亿
	// (1.056e10) for 96 layers.
	PrintedPerLayer int64 `json:"printed_per_layer"`
	PrintedLayers   int64 `json:"printed_layers"`

	// The usual estimate: 12*H^2 per layer (4H^2 attention + 2*H*4H MLP).
	Approx12H2PerLayer int64 `json:"approx_12h2_per_layer"`
	Approx12H2Layers   int64 `json:"approx_12h2_layers"`
	// Exact, GPT-2's layer (with biases and layer norms) as Params counts
	// it for the "gpt3" preset.
	ExactPerLayer int64 `json:"exact_per_layer"`
	ExactTotal    int64 `json:"exact_total"`

	Errata []string `json:"errata"`
}

// SeedGPT3Example returns the seed's GPT-3 example and its errata.
func SeedGPT3Example() SeedGPT3 {
	const H, F, L = 12288, 49152, 96
	a, err := Preset("gpt3")
	if err != nil {
		panic(err) // built-in preset: cannot fail
	}
	b, err := Params(a)
	if err != nil {
		panic(err)
	}
	g := SeedGPT3{
		Hidden: H, FFN: F, Layers: L,
		SeedFormulaPerLayer: 8*H*H + 8*H*F + 2*H,
		PrintedPerLayer:     110_000_000,
		PrintedLayers:       10_560_000_000,
		Approx12H2PerLayer:  12 * H * H,
		Approx12H2Layers:    L * 12 * H * H,
		ExactPerLayer:       b.PerLayer,
		ExactTotal:          b.Total,
	}
	g.Errata = []string{
		fmt.Sprintf("the seed's per-layer formula 8*H^2 + 8*H*d_ff + 2*H gives %.3g, not the printed 1.1e8 (\"1.1亿\")", float64(g.SeedFormulaPerLayer)),
		fmt.Sprintf("the formula itself disagrees with the seed's own layer count (4*H^2 attention + 2*H*d_ff MLP): with d_ff = 4H a layer is about 12*H^2 = %.3g", float64(g.Approx12H2PerLayer)),
		fmt.Sprintf("96 layers are about %.3g parameters (%s with biases, norms and embeddings), not the printed 1.056e10 (\"105.6亿\")", float64(g.Approx12H2Layers), commas(g.ExactTotal)),
		"\"175亿\" in the Chinese text means 17.5 billion; GPT-3 has 175 billion parameters",
	}
	return g
}

// SeedScaling is the seed's scaling-law claim (performance ~ N^alpha,
// alpha ~ 0.07) beside the arithmetic.
type SeedScaling struct {
	Alpha float64 `json:"alpha"`
	// SeedClaim is the seed's "10^(1/alpha) ~ 3.7x" for a 10% gain.
	SeedClaim float64 `json:"seed_claim"`
	// TenPercent is 1.1^(1/alpha), the factor a 10% gain really needs (~3.9).
	TenPercent float64 `json:"ten_percent"`
	// TenToOneOverAlpha is 10^(1/alpha), what the seed wrote (~1.9e14).
	TenToOneOverAlpha float64  `json:"ten_to_one_over_alpha"`
	Errata            []string `json:"errata"`
}

// SeedScalingExample evaluates the seed's scaling claim at alpha = 0.07:
// a factor k of performance needs k^(1/alpha) times the parameters.
func SeedScalingExample() SeedScaling {
	const alpha = 0.07
	s := SeedScaling{
		Alpha:             alpha,
		SeedClaim:         3.7,
		TenPercent:        math.Pow(1.1, 1/alpha),
		TenToOneOverAlpha: math.Pow(10, 1/alpha),
	}
	s.Errata = []string{
		fmt.Sprintf("a 10%% gain needs 1.1^(1/0.07) = %.2f times the parameters, not 3.7", s.TenPercent),
		fmt.Sprintf("the seed writes 10^(1/alpha), which is %.3g, not 3.7", s.TenToOneOverAlpha),
	}
	return s
}

// commas writes a non-negative n with thousands separators: 4,722,432.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
