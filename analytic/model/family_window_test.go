package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWindowConfig: the sliding-window and soft-capping switches of the
// gemma2, gemma3_text and starcoder2 configs, and the errors for the ones
// memval does not model, each naming its key.
func TestWindowConfig(t *testing.T) {
	g2, err := os.ReadFile(filepath.Join(hfConfigs, "gemma-2-2b-it.json"))
	if err != nil {
		t.Fatal(err)
	}
	const sizes = `"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "vocab_size": 10`
	cfg := func(mt, extra string) string {
		s := `{"model_type": "` + mt + `", ` + sizes
		if extra != "" {
			s += ", " + extra
		}
		return s + "}"
	}
	for _, c := range []struct {
		name, json        string
		window, every     int
		attnCap, logitCap float64
		local             int
		errField          string
		errContains       string
	}{
		{name: "gemma-2-2b-it", json: string(g2), window: 4096, every: 2, attnCap: 50, logitCap: 30, local: 13},
		{name: "gemma2 defaults", json: cfg("gemma2", ""), window: 4096, every: 2, attnCap: 50, logitCap: 30, local: 3},
		{name: "gemma2 null caps", json: cfg("gemma2", `"attn_logit_softcapping": null, "final_logit_softcapping": null, "sliding_window": null`),
			every: 2},
		{name: "gemma2 ignores the pattern", json: cfg("gemma2", `"sliding_window_pattern": 3`), window: 4096, every: 2, attnCap: 50, logitCap: 30, local: 3},
		{name: "gemma3 defaults", json: cfg("gemma3_text", ""), window: 4096, every: 6, local: 5},
		{name: "gemma3 pattern", json: cfg("gemma3_text", `"sliding_window": 512, "sliding_window_pattern": 3, "final_logit_softcapping": 30.0`),
			window: 512, every: 3, logitCap: 30, local: 4},
		{name: "gemma3 layer_types", json: cfg("gemma3_text", `"layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention"]`),
			window: 4096, every: 2, local: 3},
		{name: "gemma3 all local", json: cfg("gemma3_text", `"layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention"]`),
			window: 4096, local: 6},
		{name: "gemma3 all global", json: cfg("gemma3_text", `"layer_types": ["full_attention", "full_attention", "full_attention", "full_attention", "full_attention", "full_attention"]`),
			every: 6},
		{name: "starcoder2 default", json: cfg("starcoder2", "")},
		{name: "starcoder2 window", json: cfg("starcoder2", `"sliding_window": 4096`), window: 4096, local: 6},
		{name: "irregular layer_types", json: cfg("gemma3_text", `"layer_types": ["full_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention"]`),
			errField: "layer_types", errContains: "periodic"},
		{name: "short layer_types", json: cfg("gemma2", `"layer_types": ["full_attention"]`), errField: "layer_types", errContains: "one entry per layer"},
		{name: "unknown layer type", json: cfg("gemma2", `"layer_types": ["chunked_attention", "full_attention", "full_attention", "full_attention", "full_attention", "full_attention"]`),
			errField: "layer_types", errContains: "sliding_attention"},
		{name: "window string", json: cfg("starcoder2", `"sliding_window": "4096"`), errField: "sliding_window", errContains: "positive integer"},
		{name: "window negative", json: cfg("gemma2", `"sliding_window": -1`), errField: "sliding_window", errContains: "positive integer"},
		{name: "cap zero", json: cfg("gemma2", `"attn_logit_softcapping": 0`), errField: "attn_logit_softcapping", errContains: "positive number"},
		{name: "cap string", json: cfg("gemma3_text", `"final_logit_softcapping": "30"`), errField: "final_logit_softcapping", errContains: "positive number"},
		{name: "bidirectional", json: cfg("gemma3_text", `"use_bidirectional_attention": true`), errField: "use_bidirectional_attention", errContains: "causal"},
	} {
		a, err := ParseConfig([]byte(c.json))
		if err == nil {
			err = a.Normalize()
		}
		if c.errField != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.errField || !strings.Contains(err.Error(), c.errContains) {
				t.Errorf("%s: got error %v, want a field error on %s saying %q", c.name, err, c.errField, c.errContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if a.SlidingWindow != c.window || a.GlobalEvery != c.every || a.AttnSoftcap != c.attnCap || a.LogitSoftcap != c.logitCap {
			t.Errorf("%s: window %d every %d caps %g %g, want %d %d %g %g", c.name, a.SlidingWindow, a.GlobalEvery,
				a.AttnSoftcap, a.LogitSoftcap, c.window, c.every, c.attnCap, c.logitCap)
		}
		if got := a.LocalLayers(); got != c.local {
			t.Errorf("%s: %d local layers, want %d", c.name, got, c.local)
		}
	}
}

// TestWindowNormalize: a bare Arch takes its family's switches; soft-caps
// on a family without them and negative values are refused.
func TestWindowNormalize(t *testing.T) {
	a := Arch{Family: "gemma2", Layers: 3, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	if a.SlidingWindow != 4096 || a.GlobalEvery != 2 || a.AttnSoftcap != 50 || a.LogitSoftcap != 30 {
		t.Errorf("bare gemma2: %+v, want window 4096 every 2 caps 50 30", a)
	}
	if got, want := strings.Join(a.LayerTypes(), " "), "sliding_attention full_attention sliding_attention"; got != want {
		t.Errorf("layer types %q, want %q", got, want)
	}
	for _, c := range []struct {
		a     Arch
		field string
	}{
		{Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10, AttnSoftcap: 50}, "attn_softcap"},
		{Arch{Family: "starcoder2", Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10, LogitSoftcap: 30}, "logit_softcap"},
		{Arch{Family: "gemma2", Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10, SlidingWindow: -5}, "sliding_window"},
		{Arch{Family: "gemma3_text", Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10, GlobalEvery: -1}, "global_every"},
		{Arch{Family: "gemma2", Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Vocab: 10, AttnSoftcap: -1}, "attn_softcap"},
	} {
		err := c.a.Normalize()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s %+v: got %v, want a field error on %s", c.a.Family, c.a, err, c.field)
		}
	}
}

func FuzzWindowConfig(f *testing.F) {
	const sizes = `"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 10`
	for _, extra := range []string{
		`"model_type": "gemma2", "sliding_window": 16, "attn_logit_softcapping": 50.0`,
		`"model_type": "gemma3_text", "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]`,
		`"model_type": "gemma3_text", "sliding_window_pattern": 2, "final_logit_softcapping": null`,
		`"model_type": "starcoder2", "sliding_window": null, "use_bias": true`,
		`"model_type": "gemma2", "layer_types": "sliding_attention"`,
	} {
		f.Add([]byte(`{` + extra + `, ` + sizes + `}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseConfig(data)
		if err != nil || a.Normalize() != nil {
			return
		}
		if n := a.LocalLayers(); n < 0 || n > a.Layers {
			t.Errorf("%s: %d local layers of %d", data, n, a.Layers)
		}
		if a.SlidingWindow < 0 || a.GlobalEvery < 0 || a.AttnSoftcap < 0 || a.LogitSoftcap < 0 {
			t.Errorf("%s: negative switch in %+v", data, a)
		}
	})
}
