package model

import (
	"bufio"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const hfConfigs = "testdata/hf-configs"

// TestParamsHFConfigs checks every row of testdata/hf-configs/expected.tsv: each
// config.json's parameter count, as Hugging Face's modeling code builds it.
func TestParamsHFConfigs(t *testing.T) {
	f, err := os.Open(filepath.Join(hfConfigs, "expected.tsv"))
	if err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	defer f.Close()
	rows := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("expected.tsv: bad row %q", line)
		}
		want, err := strconv.ParseInt(cols[1], 10, 64)
		if err != nil {
			t.Fatalf("expected.tsv: bad count in %q: %v", line, err)
		}
		rows++
		t.Run(cols[0], func(t *testing.T) {
			a, err := LoadConfig(filepath.Join(hfConfigs, cols[0]))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Params(a)
			if err != nil {
				t.Fatal(err)
			}
			if b.Total != want {
				t.Errorf("got %d parameters, want %d (%s)", b.Total, want, cols[2])
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 9 {
		t.Fatalf("expected.tsv: got %d rows, want at least 9", rows)
	}
}

// TestParamsPresets pins every preset's total to the count its public
// checkpoint has (sum of the parameter numels of the Hugging Face model).
func TestParamsPresets(t *testing.T) {
	want := map[string]struct{ total, active int64 }{
		"seed-example":      {123_417_600, 123_417_600},
		"gpt3":              {174_604_259_328, 174_604_259_328},
		"gpt2":              {124_439_808, 124_439_808},
		"gpt2-medium":       {354_823_168, 354_823_168},
		"gpt2-large":        {774_030_080, 774_030_080},
		"gpt2-xl":           {1_557_611_200, 1_557_611_200},
		"pythia-160m":       {162_322_944, 162_322_944},
		"opt-125m":          {125_239_296, 125_239_296},
		"bert-base-uncased": {109_482_240, 109_482_240},
		"llama-2-7b":        {6_738_415_616, 6_738_415_616},
		"llama-3-8b":        {8_030_261_248, 8_030_261_248},
		"mistral-7b":        {7_241_732_096, 7_241_732_096},
		"mixtral-8x7b":      {46_702_792_704, 12_879_925_248},
		"qwen2-7b":          {7_615_616_512, 7_615_616_512},
		"qwen2-0.5b":        {494_032_768, 494_032_768},
		"gemma-2b":          {2_506_172_416, 2_506_172_416},
		"phi-2":             {2_779_683_840, 2_779_683_840},

		"qwen3-4b":                {4_022_468_096, 4_022_468_096},
		"qwen3-8b":                {8_190_735_360, 8_190_735_360},
		"qwen3-30b-a3b":           {30_532_122_624, 3_353_032_704},
		"qwen1.5-moe-a2.7b":       {14_315_784_192, 2_689_173_504},
		"phi-3-mini":              {3_821_079_552, 3_821_079_552},
		"gemma-2-2b":              {2_614_341_888, 2_614_341_888},
		"gemma-3-1b":              {999_885_952, 999_885_952},
		"olmo-2-7b":               {7_298_617_344, 7_298_617_344},
		"starcoder2-3b":           {3_030_371_328, 3_030_371_328},
		"gpt-neo-125m":            {125_198_592, 125_198_592},
		"gpt-j-6b":                {6_050_882_784, 6_050_882_784},
		"bloom-560m":              {559_214_592, 559_214_592},
		"falcon-7b":               {6_921_720_704, 6_921_720_704},
		"roberta-base":            {124_645_632, 124_645_632},
		"distilbert-base-uncased": {66_362_880, 66_362_880},
		// vision (testdata/hf-configs/expected.tsv gives the sources)
		"vit-base-patch16-224": {86_567_656, 86_567_656},
		"dinov2-small":         {22_056_576, 22_056_576},
		"dinov2-base":          {86_580_480, 86_580_480},
	}
	if got := Presets(); len(got) != len(want) {
		t.Errorf("got %d presets %v, want %d", len(got), got, len(want))
	}
	for name, w := range want {
		a, err := Preset(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b, err := Params(a)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b.Total != w.total || b.ActivePerToken != w.active {
			t.Errorf("%s: got total %d, active %d; want %d, %d", name, b.Total, b.ActivePerToken, w.total, w.active)
		}
		checkBreakdown(t, name, a, b)
	}
}

// checkBreakdown checks that groups, components and per-layer counts agree.
func checkBreakdown(t *testing.T, name string, a Arch, b ParamBreakdown) {
	t.Helper()
	if sum := b.Embeddings + b.Attention + b.MLP + b.Norms + b.Head + b.Other; sum != b.Total {
		t.Errorf("%s: groups sum to %d, total %d", name, sum, b.Total)
	}
	var comp, perLayer int64
	for _, c := range b.Components {
		if c.Count <= 0 || c.Name == "" || c.Shape == "" {
			t.Errorf("%s: bad component %+v", name, c)
		}
		if c.PerLayer {
			perLayer += c.Count
			comp += c.Count * int64(a.Layers)
		} else {
			comp += c.Count
		}
	}
	if comp != b.Total || perLayer != b.PerLayer {
		t.Errorf("%s: components give total %d, per layer %d; breakdown says %d, %d", name, comp, perLayer, b.Total, b.PerLayer)
	}
}

// TestParamsComponents pins group totals of models whose parts differ.
func TestParamsComponents(t *testing.T) {
	tests := []struct {
		preset                                         string
		embed, attn, mlp, norms, head, other, perLayer int64
	}{
		// GPT-2: wte 50257*768 + wpe 1024*768; tied head.
		{"gpt2", 39_383_808, 28_348_416, 56_669_184, 38_400, 0, 0, 7_087_872},
		// BERT: token types and embedding LayerNorm, pooler 768*768+768.
		{"bert-base-uncased", 23_835_648, 28_348_416, 56_669_184, 38_400, 0, 590_592, 7_087_872},
		// Llama-2: untied head 4096*32000, RMSNorm H per norm.
		{"llama-2-7b", 131_072_000, 2_147_483_648, 4_328_521_728, 266_240, 131_072_000, 0, 202_383_360},
		// phi-2: one LayerNorm per layer, head bias 51200.
		{"phi-2", 131_072_000, 839_188_480, 1_678_131_200, 33 * 5120, 131_123_200, 0, 78_671_360},
		// The seed's layer: 4H^2 attention, 2H*d_ff+H+d_ff MLP, 2 LayerNorms.
		{"seed-example", 38_400_000, 12 * 2_359_296, 12 * 4_722_432, 12 * 3_072, 0, 0, 7_084_800},
	}
	for _, tt := range tests {
		a, err := Preset(tt.preset)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Params(a)
		if err != nil {
			t.Fatal(err)
		}
		got := []int64{b.Embeddings, b.Attention, b.MLP, b.Norms, b.Head, b.Other, b.PerLayer}
		want := []int64{tt.embed, tt.attn, tt.mlp, tt.norms, tt.head, tt.other, tt.perLayer}
		for i, name := range []string{"embeddings", "attention", "mlp", "norms", "head", "other", "per layer"} {
			if got[i] != want[i] {
				t.Errorf("%s %s: got %d, want %d", tt.preset, name, got[i], want[i])
			}
		}
	}
}

func TestParamsBareDimensions(t *testing.T) {
	// Bare dimensions take the family's structure: gpt2 from sizes alone is
	// the gpt2 preset.
	b, err := Params(Arch{Family: "gpt2", Layers: 12, Hidden: 768, Heads: 12, Vocab: 50257})
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 124_439_808 {
		t.Errorf("got %d, want 124439808", b.Total)
	}
	// OPT with a projected embedding (opt-350m: word_embed_proj_dim 512,
	// post-norm so no final layer norm): 331,196,416 parameters.
	a := Arch{Family: "opt", Layers: 24, Hidden: 1024, Heads: 16, FFN: 4096, Vocab: 50272, ContextLength: 2048, EmbedProj: 512}
	families["opt"].apply(&a)
	a.FinalNorm = false
	b, err = Params(a)
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 331_196_416 {
		t.Errorf("opt-350m: got %d, want 331196416", b.Total)
	}
}

func TestNormalizeErrors(t *testing.T) {
	base := func() Arch { return Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 100} }
	tests := []struct {
		name  string
		edit  func(*Arch)
		field string
	}{
		{"unknown family", func(a *Arch) { a.Family = "t5" }, "family"},
		{"zero layers", func(a *Arch) { a.Layers = 0 }, "layers"},
		{"negative hidden", func(a *Arch) { a.Hidden = -1 }, "hidden"},
		{"negative ffn", func(a *Arch) { a.FFN = -3 }, "ffn"},
		{"heads not dividing", func(a *Arch) { a.Heads = 7 }, "heads"},
		{"kv heads not dividing", func(a *Arch) { a.KVHeads = 3 }, "kv_heads"},
		{"too large", func(a *Arch) { a.Vocab = MaxDim + 1 }, "vocab"},
		{"too many params", func(a *Arch) { a.Hidden, a.Heads, a.Layers, a.Vocab = 1<<30, 1, 1<<30, 1<<30 }, "hidden"},
		{"gated needs ffn", func(a *Arch) { a.Family = "llama" }, "ffn"},
		{"experts on dense", func(a *Arch) { a.Experts = 8 }, "experts"},
		{"top-k above experts", func(a *Arch) { a.Family, a.FFN, a.Experts, a.ExpertsPerToken = "mixtral", 128, 4, 5 }, "experts_per_token"},
		{"dropout 1", func(a *Arch) { a.Dropout = 1 }, "dropout"},
		{"dropout NaN", func(a *Arch) { a.Dropout = math.NaN() }, "dropout"},
		{"bad norm", func(a *Arch) { a.Norm = "batchnorm" }, "norm"},
		{"embed proj outside opt", func(a *Arch) { a.EmbedProj = 32 }, "embed_proj"},
	}
	for _, tt := range tests {
		a := base()
		tt.edit(&a)
		err := a.Normalize()
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got error %v, want a *FieldError", tt.name, err)
			continue
		}
		if fe.Field != tt.field {
			t.Errorf("%s: got field %q (%v), want %q", tt.name, fe.Field, err, tt.field)
		}
	}
	a := base()
	a.Heads = 7
	if err := a.Normalize(); err == nil || !strings.Contains(err.Error(), `field "heads" = 7: does not divide hidden 64`) {
		t.Errorf("got %v, want a message naming heads, 7 and hidden 64", err)
	}
}

func TestNormalizeDefaultsAndIdempotent(t *testing.T) {
	a := Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 172, Vocab: 100}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	if a.HeadDim != 16 || a.Norm != RMSNorm || a.TiedHead || !a.GatedMLP || a.NormsPerLayer != 2 || !a.FinalNorm {
		t.Errorf("llama defaults: got %+v", a)
	}
	b := a
	if err := b.Normalize(); err != nil || b != a {
		t.Errorf("second Normalize changed %+v to %+v (err %v)", a, b, err)
	}
	g := Arch{Family: "gpt2", Layers: 1, Hidden: 8, Heads: 2, Vocab: 10}
	if err := g.Normalize(); err != nil {
		t.Fatal(err)
	}
	if g.FFN != 32 || g.KVHeads != 2 || g.MaxPositions != 1024 || !g.TiedHead || !g.QKVBias {
		t.Errorf("gpt2 defaults: got %+v", g)
	}
}

func TestCheckedArithmetic(t *testing.T) {
	var c checked
	if got := c.mul(1<<31, 1<<31); got != 1<<62 || c.overflow {
		t.Errorf("got %d (overflow %v), want 1<<62", got, c.overflow)
	}
	c.mul(1<<31, 1<<31, 2)
	if !c.overflow {
		t.Error("1<<63: got no overflow, want overflow")
	}
	c = checked{}
	c.add(1<<62, 1)
	if !c.overflow {
		t.Error("1<<62 + 1: got no overflow, want overflow")
	}
	c = checked{}
	c.mul(math.MaxInt64, 3)
	if !c.overflow {
		t.Error("MaxInt64*3: got no overflow, want overflow")
	}
}

func BenchmarkParams(b *testing.B) {
	a, err := Preset("mixtral-8x7b")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Params(a); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParamTotalMatchesParams holds the closed-form TotalParams to
// Params(a).Total for every preset, every Hugging Face config in testdata and
// structural variants, and to Params's error where Params fails.
func TestParamTotalMatchesParams(t *testing.T) {
	var archs []Arch
	for _, name := range Presets() {
		a, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		archs = append(archs, a)
	}
	dirs, err := os.ReadDir(hfConfigs)
	if err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	configs := 0
	for _, d := range dirs {
		if d.IsDir() || filepath.Ext(d.Name()) != ".json" {
			continue
		}
		a, err := LoadConfig(filepath.Join(hfConfigs, d.Name()))
		if err != nil {
			continue // configs Params cannot read are TestParamsHFConfigs's concern
		}
		configs++
		archs = append(archs, a)
	}
	if configs == 0 {
		t.Fatal("no config read from testdata/hf-configs")
	}
	for _, a := range archs[:len(archs):len(archs)] {
		for _, vary := range []func(*Arch){
			func(a *Arch) { a.TiedHead = !a.TiedHead },
			func(a *Arch) { a.QKVBias, a.OutBias, a.MLPBias = !a.QKVBias, !a.OutBias, !a.MLPBias },
			func(a *Arch) { a.HeadBias, a.Pooler, a.EmbedNorm = true, true, true },
			func(a *Arch) { a.GatedMLP = !a.GatedMLP },
			func(a *Arch) { a.NoHead = true },
		} {
			v := a
			vary(&v)
			archs = append(archs, v)
		}
	}
	archs = append(archs,
		Arch{Family: "gpt2", Layers: MaxDim, Hidden: MaxDim, Heads: 1, Vocab: MaxDim},
		Arch{Family: "llama", Layers: 1 << 20, Hidden: 1 << 20, Heads: 1, Vocab: 8, FFN: 1 << 30},
	)
	for i, a := range archs {
		p, perr := Params(a)
		n := a
		nerr := n.Normalize()
		var got int64
		var err error
		if nerr == nil {
			got, err = TotalParams(n)
		} else {
			err = nerr
		}
		if (perr == nil) != (err == nil) || perr != nil && perr.Error() != err.Error() {
			t.Errorf("arch %d %s: got error %v, want %v", i, a.Family, err, perr)
			continue
		}
		if perr == nil && got != p.Total {
			t.Errorf("arch %d %s: got %d, want Params's %d", i, a.Family, got, p.Total)
		}
	}
}
