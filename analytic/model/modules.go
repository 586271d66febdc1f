package model

import (
	"fmt"
	"slices"
	"strings"
)

// Module roles of a layer's linear layers (LinearModule.Role).
const (
	RoleQ      = "q"       // query projection
	RoleK      = "k"       // key projection
	RoleV      = "v"       // value projection
	RoleQKV    = "qkv"     // fused q, k, v
	RoleOut    = "out"     // attention output projection
	RoleGate   = "gate"    // gated MLP's gate
	RoleUp     = "up"      // MLP's first (up) projection
	RoleGateUp = "gate_up" // fused gate and up (phi3)
	RoleDown   = "down"    // MLP's second (down) projection
)

// LinearModule is one linear layer of a transformer layer: the name the
// Hugging Face modeling code gives the module (what PEFT's target_modules
// matches, the last component of its path), its role and its shape.
type LinearModule struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	In, Out int
}

// layerNames is how a family's modeling code names its layers' linear
// layers, by role. Families not listed name them as the family table's
// layer says: Llama's q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
// down_proj (Layer.SplitQKV) or GPT-2's c_attn, c_proj, c_fc, c_proj.
var layerNames = map[string]map[string]string{
	"opt":         {RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "out_proj", RoleUp: "fc1", RoleDown: "fc2"},
	"gpt_neox":    {RoleQKV: "query_key_value", RoleOut: "dense", RoleUp: "dense_h_to_4h", RoleDown: "dense_4h_to_h"},
	"bloom":       {RoleQKV: "query_key_value", RoleOut: "dense", RoleUp: "dense_h_to_4h", RoleDown: "dense_4h_to_h"},
	"falcon":      {RoleQKV: "query_key_value", RoleOut: "dense", RoleUp: "dense_h_to_4h", RoleDown: "dense_4h_to_h"},
	"phi":         {RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "dense", RoleUp: "fc1", RoleDown: "fc2"},
	"phi3":        {RoleQKV: "qkv_proj", RoleOut: "o_proj", RoleGateUp: "gate_up_proj", RoleDown: "down_proj"},
	"bert":        {RoleQ: "query", RoleK: "key", RoleV: "value", RoleOut: "dense", RoleUp: "dense", RoleDown: "dense"},
	"roberta":     {RoleQ: "query", RoleK: "key", RoleV: "value", RoleOut: "dense", RoleUp: "dense", RoleDown: "dense"},
	"xlm-roberta": {RoleQ: "query", RoleK: "key", RoleV: "value", RoleOut: "dense", RoleUp: "dense", RoleDown: "dense"},
	"distilbert":  {RoleQ: "q_lin", RoleK: "k_lin", RoleV: "v_lin", RoleOut: "out_lin", RoleUp: "lin1", RoleDown: "lin2"},
	"starcoder2":  {RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "o_proj", RoleUp: "c_fc", RoleDown: "c_proj"},
	"gpt_neo":     {RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "out_proj", RoleUp: "c_fc", RoleDown: "c_proj"},
	"gptj":        {RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "out_proj", RoleUp: "fc_in", RoleDown: "fc_out"},
}

// LinearModules lists the linear layers of one transformer layer of the
// normalized a, in the order the layer runs them. Mixture-of-experts
// layers are refused (their experts are not nn.Linear modules in every
// version of the modeling code).
func LinearModules(a Arch) ([]LinearModule, error) {
	fam, ok := families[a.Family]
	if !ok {
		return nil, &FieldError{Field: "family", Value: fmt.Sprintf("%q", a.Family), Reason: "unknown model family; use one of " + strings.Join(Families(), ", ")}
	}
	if a.Experts > 0 {
		return nil, &FieldError{Field: "lora_targets", Value: a.Family,
			Reason: "LoRA and quantized weights of mixture-of-experts layers are not modelled; use a dense family"}
	}
	names := layerNames[a.Family]
	if names == nil {
		if fam.Layer.SplitQKV {
			names = map[string]string{RoleQ: "q_proj", RoleK: "k_proj", RoleV: "v_proj", RoleOut: "o_proj",
				RoleGate: "gate_proj", RoleUp: "up_proj", RoleDown: "down_proj"}
		} else {
			names = map[string]string{RoleQKV: "c_attn", RoleOut: "c_proj", RoleUp: "c_fc", RoleDown: "c_proj"}
		}
	}
	H, q, kv, F := a.Hidden, a.Heads*a.HeadDim, a.KVHeads*a.HeadDim, a.FFN
	var ms []LinearModule
	if n, ok := names[RoleQKV]; ok {
		ms = append(ms, LinearModule{n, RoleQKV, H, q + 2*kv})
	} else {
		ms = append(ms, LinearModule{names[RoleQ], RoleQ, H, q}, LinearModule{names[RoleK], RoleK, H, kv},
			LinearModule{names[RoleV], RoleV, H, kv})
	}
	ms = append(ms, LinearModule{names[RoleOut], RoleOut, q, H})
	switch n, fused := names[RoleGateUp]; {
	case fused:
		ms = append(ms, LinearModule{n, RoleGateUp, H, 2 * F})
	case a.GatedMLP:
		ms = append(ms, LinearModule{names[RoleGate], RoleGate, H, F}, LinearModule{names[RoleUp], RoleUp, H, F})
	default:
		ms = append(ms, LinearModule{names[RoleUp], RoleUp, H, F})
	}
	return append(ms, LinearModule{names[RoleDown], RoleDown, F, H}), nil
}

// ModuleNames lists the distinct names of LinearModules(a), sorted.
func ModuleNames(ms []LinearModule) []string {
	var n []string
	for _, m := range ms {
		if !slices.Contains(n, m.Name) {
			n = append(n, m.Name)
		}
	}
	slices.Sort(n)
	return n
}

// peftNoDefaultTargets are families whose model_type peft 0.21's table of
// default LoRA targets (peft/utils/constants.py) lacks, checked so far:
// PEFT refuses a LoRA config without target_modules for them (measured,
// scenarios/family_truth_famA_test.go).
var peftNoDefaultTargets = map[string]bool{"phi3": true, "olmo2": true}

// LoRATargets returns the linear layers of one layer of the normalized a
// that w's LoRA adapts: those whose name is one of w.LoRATargets (as PEFT
// matches a list of names: the module path ends in the name), every one
// for all-linear, or the family's query and value projections (a fused
// q, k, v where the family has one) when none are given, as PEFT's table
// of default targets does. A name that matches no module is an error that
// lists the model's module names; so is a rank larger than an adapted
// module's smaller side.
func LoRATargets(a Arch, w Workload) ([]LinearModule, error) {
	ms, err := LinearModules(a)
	if err != nil {
		return nil, err
	}
	spec := strings.TrimSpace(w.LoRATargets)
	var out []LinearModule
	switch spec {
	case LoRAAllLinear:
		out = ms
	case "":
		if peftNoDefaultTargets[a.Family] {
			return nil, &FieldError{Field: "lora_targets", Value: `""`,
				Reason: fmt.Sprintf("peft 0.21 has no default target modules for %s (its TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING lacks the model type) and refuses it; name them (%s) or use %s",
					a.Family, strings.Join(ModuleNames(ms), ", "), LoRAAllLinear)}
		}
		for _, m := range ms {
			if m.Role == RoleQ || m.Role == RoleV || m.Role == RoleQKV {
				out = append(out, m)
			}
		}
	default:
		var want []string
		for _, n := range strings.Split(spec, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			found := false
			for _, m := range ms {
				found = found || m.Name == n
			}
			if !found {
				return nil, &FieldError{Field: "lora_targets", Value: fmt.Sprintf("%q", n),
					Reason: fmt.Sprintf("names no linear layer of a %s layer; use %s, or %s", a.Family,
						strings.Join(ModuleNames(ms), ", "), LoRAAllLinear)}
			}
			want = append(want, n)
		}
		for _, m := range ms {
			if slices.Contains(want, m.Name) {
				out = append(out, m)
			}
		}
	}
	for _, m := range out {
		if w.LoRARank > min(m.In, m.Out) {
			return nil, &FieldError{Field: "lora_rank", Value: w.LoRARank,
				Reason: fmt.Sprintf("is larger than module %s (%dx%d); use at most %d", m.Name, m.In, m.Out, min(m.In, m.Out))}
		}
	}
	return out, nil
}

// LoRAParams is the number of adapter parameters w's LoRA adds to the
// normalized a: r*(in+out) per adapted module per layer (lora_A r x in,
// lora_B out x r, no biases).
func LoRAParams(a Arch, w Workload) (int64, error) {
	if !w.LoRA() {
		return 0, nil
	}
	ms, err := LoRATargets(a, w)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, m := range ms {
		n += int64(w.LoRARank) * int64(m.In+m.Out)
	}
	return n * int64(a.Layers), nil
}

// TrainableParams is the number of parameters w trains on the normalized
// a whose parameters number total: all of them, or with LoRA the adapters
// plus a task head's classifier (which PEFT trains as a module to save).
func TrainableParams(a Arch, w Workload, total int64) (int64, error) {
	if !w.LoRA() {
		return total, nil
	}
	n, err := LoRAParams(a, w)
	if err != nil {
		return 0, err
	}
	return n + HeadTrainable(a), nil
}
