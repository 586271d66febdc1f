package model

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The families with sliding-window attention and tanh soft-capping
// (gemma2, gemma3_text, starcoder2): their layers as transformers 5.24
// runs them and their config switches. What each layer saves for backward
// was measured with scenarios/train.py (family_truth_famB_test.go).

var (
	// gemma2Layer is Gemma2DecoderLayer
	// (transformers/models/gemma2/modeling_gemma2.py): a Llama layer whose
	// four RMSNorms (input, post-attention, pre- and post-feedforward)
	// multiply the fp32 normalized x by 1 + weight, with eager attention
	// that soft-caps the scores when Arch.AttnSoftcap is set and an LM head
	// that soft-caps the logits when Arch.LogitSoftcap is.
	gemma2Layer = &Layer{Name: LlamaLayerName,
		Ops: []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpNorm, OpResidual,
			OpNorm, OpMLP, OpNorm, OpResidual},
		SplitQKV: true, RepeatKV: true, AdditiveMask: true, FP32Norm: true, SoftmaxFP32: true, ScaleFloat64: true,
		LogitsFP32: true, NormPlusOne: true, Softcap: true, AttnSoftcap: true}
	// gemma3Layer is Gemma3DecoderLayer (models/gemma3/modeling_gemma3.py):
	// gemma2's layer (its q/k norms follow Arch.QKNorm) whose attention
	// does not pass attn_logit_softcapping on in transformers 5.24
	// (Gemma3Attention.forward), so only the logits are soft-capped.
	gemma3Layer = func() *Layer {
		l := *gemma2Layer
		l.AttnSoftcap = false
		return &l
	}()
	// starcoder2Layer is Starcoder2DecoderLayer
	// (transformers/models/starcoder2/modeling_starcoder2.py): Llama's
	// attention (q, k, v, o with biases, rotary, repeat_kv, fp32 softmax)
	// between torch LayerNorms, a c_fc/act/c_proj MLP, residual dropout
	// after the attention and the MLP.
	starcoder2Layer = &Layer{Name: LlamaLayerName,
		Ops: []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpDropout, OpResidual,
			OpNorm, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, RepeatKV: true, AdditiveMask: true, SoftmaxFP32: true, ScaleFloat64: true, LogitsFP32: true,
		Dropout: true}
)

// NormCount is how many norms one layer computes (its OpNorm ops).
func (l *Layer) NormCount() int {
	n := 0
	for _, o := range l.Ops {
		if o == OpNorm {
			n++
		}
	}
	return n
}

// LocalLayers is how many of a's layers use the sliding window: every
// layer without GlobalEvery, else those whose index+1 is not a multiple of
// it; 0 without a window.
func (a *Arch) LocalLayers() int {
	switch {
	case a.SlidingWindow <= 0:
		return 0
	case a.GlobalEvery <= 0:
		return a.Layers
	default:
		return a.Layers - a.Layers/a.GlobalEvery
	}
}

// LayerTypes is the layer_types list of a's config.json
// ("sliding_attention" or "full_attention" per layer).
func (a *Arch) LayerTypes() []string {
	t := make([]string, a.Layers)
	for i := range t {
		t[i] = "full_attention"
		if a.SlidingWindow > 0 && (a.GlobalEvery <= 0 || (i+1)%a.GlobalEvery != 0) {
			t[i] = "sliding_attention"
		}
	}
	return t
}

// applyWindow copies the family's attention switches into a bare Arch.
func (f *Family) applyWindow(a *Arch) {
	if a.SlidingWindow == 0 {
		a.SlidingWindow = f.SlidingWindow
	}
	if a.GlobalEvery == 0 {
		a.GlobalEvery = f.GlobalEvery
	}
	if a.AttnSoftcap == 0 {
		a.AttnSoftcap = f.AttnSoftcap
	}
	if a.LogitSoftcap == 0 {
		a.LogitSoftcap = f.LogitSoftcap
	}
}

// checkWindow is Normalize's check of the attention switches.
func (a *Arch) checkWindow(f *Family) error {
	if a.SlidingWindow < 0 || a.SlidingWindow > MaxDim {
		return &FieldError{Field: "sliding_window", Value: a.SlidingWindow, Reason: fmt.Sprintf("must be between 0 (none) and %d", MaxDim)}
	}
	if a.GlobalEvery < 0 || a.GlobalEvery > MaxDim {
		return &FieldError{Field: "global_every", Value: a.GlobalEvery, Reason: "must be 0 (every layer local) or a positive layer period"}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"attn_softcap", a.AttnSoftcap}, {"logit_softcap", a.LogitSoftcap}} {
		if !(c.v >= 0 && c.v < 1e300) {
			return &FieldError{Field: c.name, Value: c.v, Reason: "must be 0 (no soft-capping) or a positive cap"}
		}
		if c.v > 0 && !f.Layer.Softcap {
			return &FieldError{Field: c.name, Value: c.v,
				Reason: fmt.Sprintf("family %q has no soft-capping; remove it (families with it: %v)", f.Name,
					familiesWith(func(f *Family) bool { return f.Layer.Softcap }))}
		}
	}
	return nil
}

// readGemmaWindow reads a Gemma2Config's or Gemma3TextConfig's switches:
// attention_bias, sliding_window (null: none), layer_types (or gemma3's
// sliding_window_pattern, every pattern-th layer global), the two
// soft-caps (null: none) and use_bidirectional_attention, which memval
// does not model. Only Gemma3TextConfig reads sliding_window_pattern
// (pattern true).
func readGemmaWindow(pattern bool) func(c *config, a *Arch) error {
	return func(c *config, a *Arch) error { return readGemmaSwitches(c, a, pattern) }
}

func readGemmaSwitches(c *config, a *Arch, pattern bool) error {
	if err := readAttentionBias(c, a); err != nil {
		return err
	}
	if bi, err := c.bool("use_bidirectional_attention", false); err != nil {
		return err
	} else if bi {
		return &FieldError{Field: "use_bidirectional_attention", Value: true,
			Reason: "bidirectional attention is not modelled; only causal (false or absent) is"}
	}
	var err error
	if a.SlidingWindow, err = c.optSize("sliding_window", a.SlidingWindow); err != nil {
		return err
	}
	if pattern {
		if a.GlobalEvery, err = c.optSize("sliding_window_pattern", a.GlobalEvery); err != nil {
			return err
		}
	}
	if err := c.readLayerTypes(a); err != nil {
		return err
	}
	if a.AttnSoftcap, err = c.optCap("attn_logit_softcapping", a.AttnSoftcap); err != nil {
		return err
	}
	a.LogitSoftcap, err = c.optCap("final_logit_softcapping", a.LogitSoftcap)
	return err
}

// readStarcoder2Window reads use_bias and sliding_window (every layer).
func readStarcoder2Window(c *config, a *Arch) (err error) {
	if err := readStarcoder2(c, a); err != nil {
		return err
	}
	a.SlidingWindow, err = c.optSize("sliding_window", a.SlidingWindow)
	return err
}

// readLayerTypes sets GlobalEvery (and SlidingWindow 0 when no layer is
// local) from an explicit layer_types list, which must follow one period.
func (c *config) readLayerTypes(a *Arch) error {
	v, ok := c.m["layer_types"]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok || a.Layers > 0 && len(l) != a.Layers {
		return &FieldError{Field: "layer_types", Value: v, Reason: "must be a list with one entry per layer (num_hidden_layers)"}
	}
	global := -1 // the first full-attention layer's index
	local := 0
	for i, t := range l {
		switch t {
		case "sliding_attention":
			local++
		case "full_attention":
			if global < 0 {
				global = i
			}
		default:
			return &FieldError{Field: "layer_types", Value: t, Reason: `each entry must be "sliding_attention" or "full_attention"`}
		}
	}
	switch {
	case local == 0:
		a.SlidingWindow = 0
	case global < 0:
		a.GlobalEvery = 0
	default:
		a.GlobalEvery = global + 1
	}
	b := *a
	b.Layers = len(l)
	for i, t := range b.LayerTypes() {
		if t != l[i] {
			return &FieldError{Field: "layer_types", Value: v,
				Reason: "only a periodic pattern (every Nth layer full attention, the others sliding) is modelled"}
		}
	}
	return nil
}

// optSize reads a positive integer that null turns off (0); def when absent.
func (c *config) optSize(key string, def int) (int, error) {
	v, ok := c.m[key]
	if !ok {
		return def, nil
	}
	if v == nil {
		return 0, nil
	}
	n, ok := v.(json.Number)
	i, err := strconv.ParseInt(string(n), 10, 64)
	if !ok || err != nil || i <= 0 || i > MaxDim {
		return 0, &FieldError{Field: key, Value: v, Reason: fmt.Sprintf("must be a positive integer up to %d, or null", MaxDim)}
	}
	return int(i), nil
}

// optCap reads a positive number that null turns off (0); def when absent.
func (c *config) optCap(key string, def float64) (float64, error) {
	v, ok := c.m[key]
	if !ok {
		return def, nil
	}
	if v == nil {
		return 0, nil
	}
	n, ok := v.(json.Number)
	f, err := strconv.ParseFloat(string(n), 64)
	if !ok || err != nil || !(f > 0 && f < 1e300) {
		return 0, &FieldError{Field: key, Value: v, Reason: "must be a positive number, or null for no soft-capping"}
	}
	return f, nil
}
