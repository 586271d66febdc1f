package model

import (
	"errors"
	"testing"
)

// TestFalconConfigLayouts: FalconConfig's switches give the layout
// FalconLayout names and the alibi and activation the config says; bad
// values are a *FieldError naming the key.
func TestFalconConfigLayouts(t *testing.T) {
	const base = `"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10`
	for _, c := range []struct {
		json            string
		kv, norms       int
		parallel, alibi bool
		newArch, mq     bool
		act             string
	}{
		{`{` + base + `}`, 1, 1, true, false, false, true, "gelu"},
		{`{` + base + `, "alibi": true, "activation": "relu"}`, 1, 1, true, true, false, true, "relu"},
		{`{` + base + `, "new_decoder_architecture": true, "num_kv_heads": 2}`, 2, 2, true, false, true, false, "gelu"},
		{`{` + base + `, "new_decoder_architecture": true, "num_kv_heads": 2, "num_ln_in_parallel_attn": 1}`, 2, 1, true, false, true, false, "gelu"},
		{`{` + base + `, "multi_query": false, "parallel_attn": false, "alibi": true, "bias": true}`, 4, 2, false, true, false, false, "gelu"},
		{`{` + base + `, "multi_query": false}`, 4, 1, true, false, false, false, "gelu"},
	} {
		a, err := ParseConfig([]byte(c.json))
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		newArch, mq := FalconLayout(a)
		if a.KVHeads != c.kv || a.NormsPerLayer != c.norms || a.ParallelBlock != c.parallel || a.Alibi != c.alibi ||
			newArch != c.newArch || mq != c.mq || a.Act != c.act {
			t.Errorf("%s: kv %d norms %d parallel %v alibi %v layout (%v, %v) act %q; want %d %d %v %v (%v, %v) %q", c.json,
				a.KVHeads, a.NormsPerLayer, a.ParallelBlock, a.Alibi, newArch, mq, a.Act, c.kv, c.norms, c.parallel, c.alibi, c.newArch, c.mq, c.act)
		}
	}
	for _, bad := range []struct{ json, field string }{
		{`{` + base + `, "alibi": "yes"}`, "alibi"},
		{`{` + base + `, "activation": 1}`, "activation"},
	} {
		_, err := ParseConfig([]byte(bad.json))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("%s: error %v, want a FieldError naming %s", bad.json, err, bad.field)
		}
	}
}

func FuzzParseFalconConfig(f *testing.F) {
	f.Add([]byte(`{"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10, "alibi": true, "multi_query": false, "parallel_attn": false, "bias": true, "activation": "relu"}`))
	f.Add([]byte(`{"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10, "new_decoder_architecture": true, "num_kv_heads": 2, "alibi": null}`))
	f.Add([]byte(`{"model_type": "bloom", "hidden_size": 64, "n_head": 4, "n_layer": 2, "vocab_size": 10}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := a.Normalize(); err != nil {
			return
		}
		if newArch, mq := FalconLayout(a); newArch && mq {
			t.Errorf("%s: both new_decoder_architecture and multi_query", data)
		}
	})
}
