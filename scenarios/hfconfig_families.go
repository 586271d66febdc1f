package scenarios

import "github.com/memval/memval/analytic/model"

// familyConfig writes the switches of a family's config.json that HFConfig's
// shared keys do not: each family's configuration class names them its own
// way (transformers/models/<family>/configuration_<family>.py).
var familyConfig = map[string]func(m map[string]any, a model.Arch){
	// GPTNeoXConfig: use_parallel_residual; rotary_pct (the legacy key it
	// moves into rope_parameters.partial_rotary_factor).
	"gpt_neox": func(m map[string]any, a model.Arch) {
		m["use_parallel_residual"] = a.ParallelBlock
		m["rotary_pct"] = rotaryFraction(a)
	},
	// OPTConfig: enable_bias for every linear layer, do_layer_norm_before
	// (pre-norm layers and the final norm, else post-norm layers without
	// it), word_embed_proj_dim (the hidden size when not projected).
	"opt": func(m map[string]any, a model.Arch) {
		m["enable_bias"], m["do_layer_norm_before"] = a.QKVBias, a.FinalNorm
		if a.EmbedProj == 0 {
			m["word_embed_proj_dim"] = a.Hidden
		}
	},
	// PhiConfig: partial_rotary_factor.
	"phi": func(m map[string]any, a model.Arch) { m["partial_rotary_factor"] = rotaryFraction(a) },
	// GPTNeoConfig: attention_types must list every layer; global and
	// local alternate as in the released models (the window is a mask and
	// changes no saved bytes in eager attention).
	"gpt_neo": func(m map[string]any, a model.Arch) {
		types := []any{[]any{[]any{"global", "local"}, a.Layers / 2}}
		if a.Layers%2 == 1 {
			types = append(types, []any{[]any{"global"}, 1})
		}
		if a.Layers == 1 {
			types = types[1:]
		}
		m["attention_types"] = types
	},
	// GPTJConfig: rotary_dim (its default 64 may exceed a small head).
	"gptj": func(m map[string]any, a model.Arch) { m["rotary_dim"] = model.RotaryDims(a) },
}

// rotaryFraction is the partial rotary factor whose int(head_dim*f) is
// model.RotaryDims(a).
func rotaryFraction(a model.Arch) float64 {
	hd := a.HeadDim
	if hd == 0 {
		hd = a.Hidden / a.Heads
	}
	return float64(model.RotaryDims(a)) / float64(hd)
}
