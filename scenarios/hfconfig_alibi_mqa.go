package scenarios

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// ownConfig writes the switches of the families whose config.json has a
// layout of its own (BloomConfig, FalconConfig; see
// transformers/models/{bloom,falcon}/configuration_*.py) into m, and
// errors for an arch that configuration class cannot build.
func ownConfig(m map[string]any, a model.Arch) error {
	switch a.Family {
	case "bloom":
		return bloomConfig(a)
	case "falcon":
		return falconConfig(m, a)
	}
	return nil
}

// bloomConfig checks a against BloomConfig, which has no switches for
// what it checks: biases everywhere, multi-head attention, an MLP of
// 4*hidden.
func bloomConfig(a model.Arch) error {
	switch {
	case a.KVHeads != 0 && a.KVHeads != a.Heads:
		return fmt.Errorf("hf config: arch.family bloom: kv_heads %d: BloomConfig has multi-head attention only; set kv_heads to heads (%d)", a.KVHeads, a.Heads)
	case a.FFN != 0 && a.FFN != 4*a.Hidden:
		return fmt.Errorf("hf config: arch.family bloom: ffn %d: BloomConfig's MLP is 4*hidden (%d); set ffn to it", a.FFN, 4*a.Hidden)
	case !a.QKVBias || !a.OutBias || !a.MLPBias:
		return fmt.Errorf("hf config: arch.family bloom: BloomConfig's linear layers all have biases; set qkv_bias, out_bias and mlp_bias")
	case a.HeadDim != 0 && a.HeadDim*a.Heads != a.Hidden:
		return fmt.Errorf("hf config: arch.family bloom: head_dim %d: BloomConfig's is hidden/heads (%d)", a.HeadDim, a.Hidden/a.Heads)
	}
	return nil
}

// falconConfig writes FalconConfig's layout (model.FalconLayout), alibi,
// bias and activation.
func falconConfig(m map[string]any, a model.Arch) error {
	kv := a.KVHeads
	if kv == 0 {
		kv = a.Heads
	}
	newArch, multiQuery := model.FalconLayout(a)
	switch {
	case a.QKVBias != a.OutBias || a.QKVBias != a.MLPBias:
		return fmt.Errorf("hf config: arch.family falcon: qkv_bias %v, out_bias %v, mlp_bias %v: FalconConfig has one bias switch for all; set them equal",
			a.QKVBias, a.OutBias, a.MLPBias)
	case a.HeadDim != 0 && a.HeadDim*a.Heads != a.Hidden:
		return fmt.Errorf("hf config: arch.family falcon: head_dim %d: FalconConfig's is hidden/heads (%d)", a.HeadDim, a.Hidden/a.Heads)
	case newArch && !a.ParallelBlock:
		return fmt.Errorf("hf config: arch.family falcon: kv_heads %d of %d heads needs new_decoder_architecture, whose attention and MLP run in parallel; set parallel_block",
			kv, a.Heads)
	case !a.ParallelBlock && a.NormsPerLayer != 2:
		return fmt.Errorf("hf config: arch.family falcon: norms_per_layer %d: a sequential falcon layer has 2 norms", a.NormsPerLayer)
	case a.NormsPerLayer < 1 || a.NormsPerLayer > 2:
		return fmt.Errorf("hf config: arch.family falcon: norms_per_layer %d: FalconConfig builds 1 or 2", a.NormsPerLayer)
	}
	m["new_decoder_architecture"], m["multi_query"], m["parallel_attn"] = newArch, multiQuery, a.ParallelBlock
	if newArch {
		m["num_kv_heads"], m["num_ln_in_parallel_attn"] = kv, a.NormsPerLayer
	}
	m["alibi"], m["bias"] = a.Alibi, a.QKVBias
	if a.Act != "" {
		m["activation"] = a.Act
	}
	return nil
}
