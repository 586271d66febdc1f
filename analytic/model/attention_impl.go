package model

import (
	"fmt"
	"strings"
)

// AttnImpl is whose modeling code runs the model's layers and which
// attention implementation it uses (Workload.AttnImpl), as transformers
// names them (PreTrainedModel's attn_implementation, a config.json's
// attn_implementation). "" is HandAttn.
type AttnImpl string

const (
	// HandAttn is memval's hand-built program (scenarios/train.py's hand
	// path, from the family table's layer), with Workload.Attention
	// choosing math or SDPA attention: the breakdown's terms as they were.
	HandAttn AttnImpl = "hand"
	// EagerAttn is transformers' eager_attention_forward of the family's
	// modeling file (e.g. models/gpt2/modeling_gpt2.py,
	// models/llama/modeling_llama.py): GPT-2 scales by a Python float (no
	// scale tensor) and adds the fp32 additive mask, so under autocast its
	// scores and softmax are fp32 with a 16-bit copy for the matmul; Llama
	// repeats k and v (repeat_kv) and runs softmax in fp32. Math attention.
	EagerAttn AttnImpl = "eager"
	// SDPAAttn is transformers' sdpa_attention_forward
	// (integrations/sdpa_attention.py, transformers' default where torch
	// has SDPA): torch's scaled_dot_product_attention with
	// enable_gqa (k and v not repeated) when there is no mask (a causal
	// batch without padding) and head_dim <= 256 (use_gqa_in_sdpa). Flash
	// attention.
	SDPAAttn AttnImpl = "sdpa"
	// FlashAttention2 is transformers' flash_attention_forward
	// (integrations/flash_attention.py, the flash-attn package, CUDA only):
	// q, k and v in (B, S, heads, d), k and v not repeated, the output and
	// an fp32 logsumexp saved. Flash attention.
	FlashAttention2 AttnImpl = "flash-attention-2"
)

// AttnImpls lists the AttnImpl values a Workload accepts.
func AttnImpls() []string {
	return []string{string(HandAttn), string(EagerAttn), string(SDPAAttn), string(FlashAttention2)}
}

// Transformers reports whether i is transformers' modeling code (eager,
// sdpa or flash-attention-2) rather than memval's hand-built program.
func (i AttnImpl) Transformers() bool { return i != "" && i != HandAttn }

// Attention is the Workload.Attention i runs ("" for HandAttn, which
// takes the workload's).
func (i AttnImpl) Attention() Attention {
	switch i {
	case EagerAttn:
		return MathAttention
	case SDPAAttn, FlashAttention2:
		return FlashAttention
	}
	return ""
}

// ParseAttnImpl reads an attn_implementation as transformers spells it
// ("flash_attention_2", "sdpa", "eager") or as memval does, into an
// AttnImpl; ok is false for values memval does not model (e.g.
// "flex_attention", "flash_attention_3").
func ParseAttnImpl(s string) (AttnImpl, bool) {
	v := AttnImpl(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-"))
	switch v {
	case HandAttn, EagerAttn, SDPAAttn, FlashAttention2:
		return v, true
	}
	return "", false
}

// applyAttnImpl checks w.AttnImpl and sets w.Attention from it when empty
// (WithDefaults' hook, before Attention's default); an explicit Attention
// that the implementation does not run is a *FieldError.
func (w *Workload) applyAttnImpl() error {
	if w.AttnImpl == "" {
		return nil
	}
	if err := CheckEnum("attn_impl", string(w.AttnImpl), AttnImpls()); err != nil {
		return err
	}
	want := w.AttnImpl.Attention()
	if want == "" {
		return nil
	}
	if w.Attention == "" {
		w.Attention = want
		return nil
	}
	if w.Attention != want {
		return &FieldError{Field: "attn_impl", Value: fmt.Sprintf("%q", w.AttnImpl),
			Reason: fmt.Sprintf("runs %s attention, not attention %s: drop attention or set it to %s", want, w.Attention, want)}
	}
	return nil
}

// readAttnImpl reads a config.json's attn_implementation (transformers'
// PretrainedConfig key; _attn_implementation as some files save it) into
// a.AttnImpl. Values memval does not model (flex_attention, ...) are left
// out: the workload then takes its own.
func (c *config) readAttnImpl(a *Arch) error {
	v, key, err := c.lookup("attn_implementation", "_attn_implementation")
	if err != nil || v == nil {
		return err
	}
	s, ok := v.(string)
	if !ok {
		return &FieldError{Field: key, Value: jsonValue(v), Reason: "must be a string, e.g. \"sdpa\" (got " + jsonKind(v) + ")"}
	}
	if impl, ok := ParseAttnImpl(s); ok && impl != HandAttn {
		a.AttnImpl = impl
	}
	return nil
}

// CheckAttnImpl returns a *FieldError unless w.AttnImpl is "" or one of
// AttnImpls and runs w.Attention (when set).
func (w Workload) CheckAttnImpl() error { return w.applyAttnImpl() }
