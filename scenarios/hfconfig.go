package scenarios

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// HFConfig returns the Hugging Face config.json, as a map, of the model a
// under workload w, for scenarios/train.py's transformers path
// (AutoConfig.for_model and AutoModelForCausalLM.from_config). The keys
// are the family table's (model.Family.Config: the canonical name of each
// size, every dropout key set to w.Dropout), so that model.ParseConfig of
// the result gives a back. The activation is written under each key
// ParseConfig reads (activation_function, hidden_act, hidden_activation)
// and the biases under attention_bias and mlp_bias; a config class keeps a
// key it does not use as a plain attribute.
//
// It errors for a family without a config.json mapping (vanilla), for an
// encoder without an LM head (bert), which no causal-LM class builds, and
// for a family whose layer the family table describes only approximately
// (model.Family.Measured false): train.py runs none of those, and their
// configs may have switches this writer does not invert. BLOOM's and
// Falcon's own switches (Falcon's decoder layout, alibi, bias) are
// ownConfig's (hfconfig_alibi_mqa.go), which errors for an arch their
// configuration classes cannot build.
func HFConfig(a model.Arch, w model.Workload) (map[string]any, error) {
	fam, ok := model.FamilyOf(a.Family)
	if !ok || fam.Config == nil {
		return nil, fmt.Errorf("hf config: arch.family %q has no config.json mapping (families with one: %v)",
			a.Family, model.ConfigFamilies())
	}
	if err := encoderHead(a, fam); err != nil {
		return nil, err
	}
	if !fam.Measured {
		return nil, fmt.Errorf("hf config: arch.family %q: its layer is described only approximately, so train.py does not build it", a.Family)
	}
	k := fam.Config
	m := map[string]any{
		"model_type":          a.Family,
		"vocab_size":          a.Vocab,
		k.Hidden[0]:           a.Hidden,
		k.Layers[0]:           a.Layers,
		k.Heads[0]:            a.Heads,
		"tie_word_embeddings": a.TiedHead,
		"use_cache":           false,
	}
	if a.FFN > 0 && len(k.FFN) > 0 {
		m[k.FFN[0]] = a.FFN
	}
	if len(k.Positions) > 0 {
		n := a.MaxPositions
		if n == 0 {
			n = max(a.ContextLength, w.Seq)
		}
		if n > 0 {
			m[k.Positions[0]] = n
		}
	}
	if k.KVHeads && a.KVHeads > 0 {
		m["num_key_value_heads"] = a.KVHeads
	}
	if k.HeadDim && a.HeadDim > 0 {
		m["head_dim"] = a.HeadDim
	}
	if a.Act != "" {
		m["activation_function"], m["hidden_act"], m["hidden_activation"] = a.Act, a.Act, a.Act
	}
	m["attention_bias"], m["mlp_bias"] = a.QKVBias, a.MLPBias
	if a.EmbedProj > 0 {
		m["word_embed_proj_dim"] = a.EmbedProj
	}
	if a.Experts > 0 {
		// mixtral's and Qwen's names for the routing; each class keeps the
		// other's as a plain attribute
		m["num_local_experts"], m["num_experts"], m["num_experts_per_tok"] = a.Experts, a.Experts, a.ExpertsPerToken
		m["norm_topk_prob"], m["output_router_logits"], m["qkv_bias"] = a.NormTopK, a.RouterAuxLoss, a.QKVBias
		if a.SharedFFN > 0 {
			m["shared_expert_intermediate_size"] = a.SharedFFN
		} else if a.SharedExpertGate {
			return nil, fmt.Errorf("hf config: arch.family %q: shared_ffn is 0, but its config.json has no form without the gated shared expert; give shared_ffn", a.Family)
		}
	}
	if k.PadToken >= a.Vocab {
		m["pad_token_id"] = 0 // the class's default is past this vocabulary's rows
	}
	for _, d := range k.Dropouts {
		m[d.Key] = w.Dropout
	}
	if err := ownConfig(m, a); err != nil { // hfconfig_alibi_mqa.go
		return nil, err
	}
	if err := windowConfig(m, a, fam); err != nil { // hfconfig_window.go
		return nil, err
	}
	if write := familyConfig[a.Family]; write != nil {
		write(m, a) // hfconfig_families.go
	}
	headConfig(m, a)
	if err := encoderConfig(m, a, w, fam); err != nil {
		return nil, err
	}
	return m, nil
}
