package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The layer programs of the GPT-style families whose transformers classes
// differ from both hand-built programs (gpt_neox, opt, phi, gpt_neo, gptj).
// They are written out for the breakdown only (Layer.HFOnly): the bytes
// autograd saves were measured on the transformers 5.24 classes (torch 2.11
// CPU, scenarios/family_truth_famC_test.go), and train.py runs them only
// through transformers. The files each follows are
// transformers/models/<family>/modeling_<family>.py.
var (
	// GPTNeoXLayer: fused query_key_value, rotary on the first
	// RotaryDims of each head concatenated with the rest, v a view of the
	// fused projection's output, softmax(dtype=float32); with
	// use_parallel_residual (Arch.ParallelBlock) both norms read the
	// layer's input.
	neoxLayer = &Layer{Name: "gpt_neox",
		Ops:         []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpDropout, OpNorm, OpMLP, OpDropout, OpResidual},
		SoftmaxFP32: true, Dropout: true, HFOnly: true, RotaryCat: true, ValueView: true}
	// OPTDecoderLayer: q, k, v, out_proj and fc1/fc2 as nn.Linear, learned
	// positions of shape B x S (cumsum of the attention mask) with offset 2,
	// softmax(dtype=float32), optional project_in/out (Arch.EmbedProj), no
	// dropout after the embeddings.
	optLayer = &Layer{Name: "opt",
		Ops:      []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, SoftmaxFP32: true, Dropout: true, HFOnly: true, BatchPositions: true, NoEmbedDropout: true}
	// PhiDecoderLayer: one LayerNorm read by the attention and the MLP
	// (parallel), q, k, v, dense as nn.Linear, partial rotary concatenated,
	// gelu_new written out (NewGELUActivation).
	phiLayer = &Layer{Name: "phi",
		Ops:      []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, SoftmaxFP32: true, Dropout: true, HFOnly: true, RotaryCat: true}
	// GPTNeoBlock: q, k, v without biases, q and k upcast to fp32 before
	// the unscaled scores (GPTNeoSelfAttention._attn), global and local
	// layers alike in eager attention (the window is a mask); no SDPA.
	gptNeoLayer = &Layer{Name: "gpt_neo",
		Ops:      []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, SoftmaxFP32: true, Dropout: true, HFOnly: true, QKFP32: true, EagerOnly: true}
	// GPTJBlock: one LayerNorm, parallel attention and MLP, interleaved
	// rotary whose sin and cos each layer repeats for q and for k
	// (repeat_interleave), q and k upcast to fp32 in eager attention.
	gptjLayer = &Layer{Name: "gptj",
		Ops:      []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, SoftmaxFP32: true, Dropout: true, HFOnly: true, QKFP32: true, RotaryPerLayer: true}
)

// RotaryDims is the width of each head that rotary positions turn: the
// arch's RotaryDim, else the family's default (GPTNeoXConfig's
// partial_rotary_factor 0.25, PhiConfig's 0.5, GPTJConfig's rotary_dim
// 64), at most the head width; 0 for a family without rotary positions.
func RotaryDims(a Arch) int {
	fam, ok := families[a.Family]
	if !ok || fam.Positions != RotaryPositions {
		return 0
	}
	hd := a.HeadDim
	if hd == 0 && a.Heads > 0 {
		hd = a.Hidden / a.Heads
	}
	switch {
	case a.RotaryDim > 0:
		return min(a.RotaryDim, hd)
	case fam.RotaryDim > 0:
		return min(fam.RotaryDim, hd)
	case fam.RotaryFraction > 0:
		return int(float64(hd) * fam.RotaryFraction)
	}
	return hd
}

// readRotaryFraction sets a.RotaryDim from a partial rotary factor: the
// first of keys present at the top level or in rope_parameters, else def.
func readRotaryFraction(c *config, a *Arch, def float64, keys ...string) error {
	f, key := def, ""
	var v any
	for _, k := range keys {
		if x, ok := c.m[k]; ok && x != nil {
			v, key = x, k
			break
		}
	}
	if key == "" {
		if rp, ok := c.m["rope_parameters"].(map[string]any); ok && rp["partial_rotary_factor"] != nil {
			v, key = rp["partial_rotary_factor"], "rope_parameters.partial_rotary_factor"
		}
	}
	if key != "" {
		n, ok := v.(json.Number)
		var err error
		if ok {
			f, err = strconv.ParseFloat(string(n), 64)
		}
		if !ok || err != nil || math.IsNaN(f) || f <= 0 || f > 1 {
			return &FieldError{Field: key, Value: v, Reason: "must be a fraction of the head width in (0, 1]"}
		}
	}
	hd := a.HeadDim
	if hd == 0 && a.Heads > 0 {
		hd = a.Hidden / a.Heads
	}
	a.RotaryDim = int(float64(hd) * f)
	if a.RotaryDim == 0 {
		return &FieldError{Field: key, Value: v,
			Reason: fmt.Sprintf("turns no dimension of a head %d wide; give a fraction of at least 1/%d", hd, hd)}
	}
	return nil
}

// readGPTJ reads rotary_dim (GPTJConfig's default 64; null: the whole head).
func readGPTJ(c *config, a *Arch) (err error) {
	hd := a.Hidden / max(a.Heads, 1)
	if v, ok := c.m["rotary_dim"]; ok && v == nil {
		a.RotaryDim = hd
		return nil
	}
	if a.RotaryDim, err = c.int("rotary_dim", false, 64, "rotary_dim"); err != nil {
		return err
	}
	a.RotaryDim = min(a.RotaryDim, hd)
	return nil
}
