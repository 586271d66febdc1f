package model

import (
	"errors"
	"strings"
	"testing"
)

// TestRotaryConfig: the partial rotary width and neox's parallel residual
// as ParseConfig reads them from each family's own keys, with the
// configuration classes' defaults; bad values name their key.
func TestRotaryConfig(t *testing.T) {
	const sizes = `"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10`
	const gptj = `"model_type": "gptj", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10`
	for _, c := range []struct {
		json     string
		rot      int
		parallel bool
		errKey   string // the key a bad value's error names
	}{
		{json: `"model_type": "gpt_neox", ` + sizes, rot: 4, parallel: true}, // GPTNeoXConfig: 0.25
		{json: `"model_type": "gpt_neox", "rotary_pct": 0.5, "use_parallel_residual": false, ` + sizes, rot: 8},
		{json: `"model_type": "gpt_neox", "rope_parameters": {"partial_rotary_factor": 1.0}, ` + sizes, rot: 16, parallel: true},
		{json: `"model_type": "gpt_neox", "rotary_pct": 0, ` + sizes, errKey: "rotary_pct"},
		{json: `"model_type": "gpt_neox", "rotary_pct": "x", ` + sizes, errKey: "rotary_pct"},
		{json: `"model_type": "gpt_neox", "rotary_pct": 0.01, ` + sizes, errKey: "rotary_pct"},
		{json: `"model_type": "gpt_neox", "rope_parameters": {"partial_rotary_factor": 2}, ` + sizes, errKey: "rope_parameters.partial_rotary_factor"},
		{json: `"model_type": "phi", ` + sizes, rot: 8, parallel: true}, // PhiConfig: 0.5
		{json: `"model_type": "phi", "intermediate_size": 128, "partial_rotary_factor": 0.4, "hidden_size": 320, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10`, rot: 32, parallel: true},
		{json: gptj, rot: 16, parallel: true}, // GPTJConfig's 64, at most the head
		{json: gptj + `, "rotary_dim": 8`, rot: 8, parallel: true},
		{json: gptj + `, "rotary_dim": null`, rot: 16, parallel: true},
		{json: gptj + `, "rotary_dim": -1`, errKey: "rotary_dim"},
		{json: `"model_type": "llama", ` + sizes, rot: 16},
		{json: `"model_type": "opt", "ffn_dim": 128, ` + sizes},
	} {
		a, err := ParseConfig([]byte("{" + c.json + "}"))
		if c.errKey != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.errKey || !strings.Contains(err.Error(), c.errKey) {
				t.Errorf("%s: got %v, want an error naming %s", c.json, err, c.errKey)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if got := RotaryDims(a); got != c.rot || a.ParallelBlock != c.parallel {
			t.Errorf("%s: rotary dims %d parallel %v, want %d %v", c.json, got, a.ParallelBlock, c.rot, c.parallel)
		}
	}
}

// TestRotaryDimsDefaults: a bare arch of each family gets its
// configuration class's rotary width.
func TestRotaryDimsDefaults(t *testing.T) {
	for _, c := range []struct {
		fam  string
		hd   int
		want int
	}{{"gpt_neox", 128, 32}, {"phi", 80, 40}, {"gptj", 256, 64}, {"gptj", 32, 32}, {"llama", 128, 128}, {"gpt_neo", 64, 0}} {
		a := Arch{Family: c.fam, Layers: 1, Hidden: 4 * c.hd, Heads: 4, FFN: 64, Vocab: 10}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		if got := RotaryDims(a); got != c.want {
			t.Errorf("%s head %d: rotary dims %d, want %d", c.fam, c.hd, got, c.want)
		}
	}
}

// FuzzRotaryConfig: whatever a config of a partial-rotary family holds,
// ParseConfig errs or gives a rotary width in [1, head_dim].
func FuzzRotaryConfig(f *testing.F) {
	f.Add([]byte(`{"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "rotary_pct": 0.25}`))
	f.Add([]byte(`{"model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "rope_parameters": {"partial_rotary_factor": 1e-300}}`))
	f.Add([]byte(`{"model_type": "phi", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "partial_rotary_factor": 0.4}`))
	f.Add([]byte(`{"model_type": "gptj", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10, "rotary_dim": 4096}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseConfig(data)
		if err != nil {
			return
		}
		if fam, _ := FamilyOf(a.Family); fam.Positions != RotaryPositions {
			return
		}
		hd := a.HeadDim
		if hd == 0 {
			hd = a.Hidden / a.Heads
		}
		if r := RotaryDims(a); r < 1 || r > hd {
			t.Fatalf("ParseConfig gave %+v: rotary dims %d, want 1..%d", a, r, hd)
		}
	})
}
