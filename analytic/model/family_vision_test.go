package model

import (
	"errors"
	"strings"
	"testing"
)

// TestVisionParams: the vision families' counts equal transformers 5.24's
// classes built from_config (sum of numel on the meta device; measured
// for this test): ViTModel with its pooler, ViTForImageClassification,
// Dinov2Model, Dinov2ForImageClassification (classifier on the class token
// and the mean patch token, 2H wide), DINOv2's SwiGLU MLP and
// dinov2_with_registers (4 register tokens by default).
func TestVisionParams(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
		head   string
		labels int
		want   int64
	}{
		{"ViTModel", "vit-base-patch16-224.json", HeadNone, 0, 86_389_248},
		{"ViTForImageClassification", "vit-base-patch16-224.json", "", 0, 86_567_656},
		{"Dinov2Model small", "dinov2-small.json", "", 0, 22_056_576},
		{"Dinov2ForImageClassification small", "dinov2-small.json", HeadImageCls, 1000, 22_825_576},
		{"Dinov2ForImageClassification base", "dinov2-base.json", HeadImageCls, 1000, 88_117_480},
	} {
		a, err := LoadConfig(hfConfigs + "/" + c.config)
		if err != nil {
			t.Fatal(err)
		}
		if c.head != "" {
			a.Head, a.Labels = c.head, c.labels
		}
		b, err := Params(a)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if b.Total != c.want {
			t.Errorf("%s: %d parameters, want transformers' %d", c.name, b.Total, c.want)
		}
	}
	for _, c := range []struct {
		hidden, heads int
		want          int64
	}{{384, 6, 22_062_720}, {768, 12, 86_592_768}} { // Dinov2Model with use_swiglu_ffn
		a, err := ParseConfig([]byte(`{"model_type": "dinov2", "hidden_size": ` + itoa(c.hidden) + `, "num_attention_heads": ` + itoa(c.heads) +
			`, "num_hidden_layers": 12, "image_size": 518, "patch_size": 14, "use_swiglu_ffn": true}`))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := Params(a); b.Total != c.want || !a.GatedMLP {
			t.Errorf("dinov2 swiglu hidden %d: %d parameters (gated %v), want %d", c.hidden, b.Total, a.GatedMLP, c.want)
		}
	}
	for _, c := range []struct {
		config string
		tokens int
		want   int64
	}{ // dinov2_with_registers: Dinov2WithRegistersModel, and its image classifier of 1000 labels
		{`{"model_type": "dinov2_with_registers", "hidden_size": 384, "num_attention_heads": 6, "num_hidden_layers": 12, "image_size": 518, "patch_size": 14}`, 1374, 22_058_112},
		{`{"model_type": "dinov2_with_registers", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12, "architectures": ["Dinov2WithRegistersForImageClassification"], "num_labels": 1000}`, 201, 87_357_928},
	} {
		a, err := ParseConfig([]byte(c.config))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := Params(a); b.Total != c.want || ImageTokens(a) != c.tokens {
			t.Errorf("%s: %d parameters, %d tokens per image; want transformers' %d and %d", c.config, b.Total, ImageTokens(a), c.want, c.tokens)
		}
	}
	if a, err := Preset("vit-base-patch16-224"); err != nil || ImageTokens(a) != 197 {
		t.Errorf("vit-base-patch16-224: %d tokens per image, %v; want 196 patches + 1", ImageTokens(a), err)
	}
	if a, err := Preset("dinov2-small"); err != nil || ImageTokens(a) != 1370 {
		t.Errorf("dinov2-small: %d tokens per image, %v; want 37*37 + 1", ImageTokens(a), err)
	}
	if n := ImageTokens(Arch{Family: "gpt2"}); n != 0 {
		t.Errorf("gpt2: %d image tokens, want 0", n)
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestVisionErrors: bad image settings name the field and what to do.
func TestVisionErrors(t *testing.T) {
	for _, c := range []struct {
		name, config, field, says string
	}{
		{"vocab", `{"model_type": "vit", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10}`, "vocab_size", "no vocabulary"},
		{"non-square", `{"model_type": "vit", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": [224, 160]}`, "image_size", "square"},
		{"patch too big", `{"model_type": "dinov2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 8, "patch_size": 14}`, "patch_size", "at least one patch"},
		{"mlp_ratio", `{"model_type": "dinov2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "mlp_ratio": "4"}`, "mlp_ratio", "number"},
		{"pooler", `{"model_type": "vit", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "pooler_output_size": 32}`, "pooler_output_size", "not supported"},
		{"hidden missing", `{"model_type": "vit", "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}`, "hidden_size", "missing"},
	} {
		_, err := ParseConfig([]byte(c.config))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want a field error on %s saying %q", c.name, err, c.field, c.says)
		}
	}
	for _, c := range []struct {
		a     Arch
		field string
	}{
		{Arch{Family: "vit", Layers: 2, Hidden: 64, Heads: 4, Head: HeadMLM}, "head"},
		{Arch{Family: "vit", Layers: 2, Hidden: 64, Heads: 4, Head: HeadImageCls}, "head"},
		{Arch{Family: "vit", Layers: 2, Hidden: 64, Heads: 4, Labels: 3}, "labels"},
		{Arch{Family: "dinov2", Layers: 2, Hidden: 64, Heads: 4, MaxPositions: 7}, "max_positions"},
		{Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 10, ImageSize: 224}, "image_size"},
		{Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, Vocab: 10, FFN: 128, LayerScale: true}, "mask_token"},
		{Arch{Family: "dinov2", Layers: 2, Hidden: 64, Heads: 4, Registers: 4}, "registers"},
	} {
		err := c.a.Normalize()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want a field error on %s", c.a, err, c.field)
		}
	}
	if h, n, err := ParseHead("image-cls:10"); err != nil || h != HeadImageCls || n != 10 {
		t.Errorf("ParseHead(image-cls:10) = %q %d %v", h, n, err)
	}
}
