package scenarios

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/memval/memval/analytic/model"
)

// windowConfig writes the attention switches of a (model.Arch's
// SlidingWindow, GlobalEvery and soft-caps) under the config.json keys of
// the families that have them: sliding_window (null for none where the
// configuration class defaults to one), layer_types for the families that
// alternate local and global layers (gemma2, gemma3_text), and
// attn_logit_softcapping and final_logit_softcapping (null for none) for
// the families with soft-capping.
//
// It also writes use_bias for the families with one switch for every
// bias (starcoder2), and errors when a's biases differ, which such a
// config cannot say.
func windowConfig(m map[string]any, a model.Arch, fam *model.Family) error {
	if fam.Config.UseBias {
		if a.QKVBias != a.OutBias || a.QKVBias != a.MLPBias {
			return fmt.Errorf("hf config: arch.family %q has one use_bias for every linear layer; qkv_bias %v, out_bias %v and mlp_bias %v differ: make them equal",
				a.Family, a.QKVBias, a.OutBias, a.MLPBias)
		}
		m["use_bias"] = a.QKVBias
	}
	switch {
	case a.SlidingWindow > 0:
		m["sliding_window"] = a.SlidingWindow
	case fam.SlidingWindow > 0:
		m["sliding_window"] = nil
	}
	if fam.GlobalEvery > 0 {
		m["layer_types"] = a.LayerTypes()
	}
	if fam.Layer.Softcap {
		m["attn_logit_softcapping"], m["final_logit_softcapping"] = capValue(a.AttnSoftcap), capValue(a.LogitSoftcap)
	}
	return nil
}

// capValue is a soft-cap as config.json writes it: null for none, and a
// number with a decimal point (the configuration classes type-check a
// float field and refuse 30 for 30.0).
func capValue(c float64) any {
	if c <= 0 {
		return nil
	}
	n := strconv.FormatFloat(c, 'g', -1, 64)
	if !strings.ContainsAny(n, ".e") {
		n += ".0"
	}
	return json.Number(n)
}
