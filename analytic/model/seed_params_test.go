package model

import (
	"math"
	"strings"
	"testing"
)

func TestSeedParamExample(t *testing.T) {
	s := SeedParamExample()
	want := SeedCounts{Embedding: 38_400_000, Attention: 2_359_296, FFN: 4_719_616, LayerNorm: 1_536,
		PerLayer: 7_081_984, AllLayers: 84_983_808, Total: 123_383_808}
	if s.Printed != want {
		t.Errorf("printed: got %+v, want %+v", s.Printed, want)
	}
	want = SeedCounts{Embedding: 38_400_000, Attention: 2_359_296, FFN: 4_722_432, LayerNorm: 1_536,
		PerLayer: 7_084_800, AllLayers: 85_017_600, Total: 123_417_600}
	if s.Recomputed != want {
		t.Errorf("recomputed: got %+v, want %+v", s.Recomputed, want)
	}
	bytes := []struct {
		name      string
		got, want uint64
	}{
		{"printed fp32", s.PrintedFP32Bytes, 493_535_232},
		{"printed fp16", s.PrintedFP16Bytes, 246_767_616},
		{"recomputed fp32", s.RecomputedFP32Bytes, 493_670_400},
		{"recomputed fp16", s.RecomputedFP16Bytes, 246_835_200},
	}
	for _, b := range bytes {
		if b.got != b.want {
			t.Errorf("%s: got %d B, want %d B", b.name, b.got, b.want)
		}
	}
	all := strings.Join(s.Errata, "\n")
	for _, frag := range []string{"4,722,432", "4,719,616", "123,417,600", "123亿", "12.3 billion", "123 million", "output projection"} {
		if !strings.Contains(all, frag) {
			t.Errorf("errata lack %q:\n%s", frag, all)
		}
	}
	// The seed's formula is the vanilla family of Params.
	a, err := Preset("seed-example")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Params(a)
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != s.Recomputed.Total || b.PerLayer != s.Recomputed.PerLayer {
		t.Errorf("Params(seed-example): got total %d, per layer %d; want %d, %d", b.Total, b.PerLayer, s.Recomputed.Total, s.Recomputed.PerLayer)
	}
}

func TestSeedFormulaMatchesVanilla(t *testing.T) {
	for _, d := range [][4]int{{64, 256, 2, 1000}, {768, 3072, 12, 50000}, {1000, 1234, 3, 7}, {12288, 49152, 96, 50257}} {
		s, err := SeedFormula(d[0], d[1], d[2], d[3])
		if err != nil {
			t.Fatal(err)
		}
		b, err := Params(Arch{Family: "vanilla", Hidden: d[0], Heads: 1, FFN: d[1], Layers: d[2], Vocab: d[3]})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total != b.Total {
			t.Errorf("%v: seed formula %d, Params %d", d, s.Total, b.Total)
		}
	}
	if _, err := SeedFormula(0, 1, 1, 1); err == nil {
		t.Error("hidden 0: got no error")
	}
	if _, err := SeedFormula(MaxDim, MaxDim, MaxDim, MaxDim); err == nil {
		t.Error("overflow: got no error")
	}
}

func TestSeedGPT3Example(t *testing.T) {
	g := SeedGPT3Example()
	ints := []struct {
		name      string
		got, want int64
	}{
		{"seed formula per layer", g.SeedFormulaPerLayer, 6_039_822_336},
		{"printed per layer", g.PrintedPerLayer, 110_000_000},
		{"printed 96 layers", g.PrintedLayers, 10_560_000_000},
		{"12H^2", g.Approx12H2PerLayer, 1_811_939_328},
		{"96*12H^2", g.Approx12H2Layers, 173_946_175_488},
		{"exact per layer", g.ExactPerLayer, 1_812_099_072},
		{"exact total", g.ExactTotal, 174_604_259_328},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
	if g.PrintedPerLayer*96 != g.PrintedLayers {
		t.Errorf("the seed's 1.1e8 * 96 = %d, not %d", g.PrintedPerLayer*96, g.PrintedLayers)
	}
	all := strings.Join(g.Errata, "\n")
	for _, frag := range []string{"6.04e+09", "1.81e+09", "1.74e+11", "174,604,259,328", "1.056e10", "175亿"} {
		if !strings.Contains(all, frag) {
			t.Errorf("errata lack %q:\n%s", frag, all)
		}
	}
}

func TestSeedScalingExample(t *testing.T) {
	s := SeedScalingExample()
	if math.Abs(s.TenPercent-3.902) > 0.001 {
		t.Errorf("1.1^(1/0.07): got %v, want 3.902 ± 0.001", s.TenPercent)
	}
	if math.Abs(s.TenToOneOverAlpha/1.9307e14-1) > 1e-3 {
		t.Errorf("10^(1/0.07): got %g, want 1.9307e14 ± 0.1%%", s.TenToOneOverAlpha)
	}
	if s.SeedClaim != 3.7 || !strings.Contains(strings.Join(s.Errata, " "), "3.90") {
		t.Errorf("got claim %v, errata %q", s.SeedClaim, s.Errata)
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 123417600: "123,417,600", -1234: "-1,234", 174604259328: "174,604,259,328"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d): got %q, want %q", n, got, want)
		}
	}
}
