package analytic

import "github.com/memval/memval/analytic/model"

// cacheKVHeads is the key/value heads the KV cache holds per layer:
// Arch.KVHeads, except for Falcon's new_decoder_architecture, whose
// attention broadcasts k and v to every query head before
// cache.update (num_kv_heads = self.num_heads there;
// transformers/models/falcon/modeling_falcon.py FalconAttention.forward,
// measured: scenarios/family_truth_famD_test.go). Falcon's multi_query
// caches its one head.
func (in *inputs) cacheKVHeads() float64 {
	if fam, ok := model.FamilyOf(in.a.Family); ok && fam.Layer.Name == model.FalconLayerName {
		if newArch, _ := model.FalconLayout(in.a); newArch {
			return in.h
		}
	}
	return in.kv
}
