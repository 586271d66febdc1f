package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Generation settings of an inference workload (Workload.Prompt, Generate,
// KVCache, PromptLengths, Logits) follow transformers 5.24's generate()
// (transformers/generation/utils.py) and its caches
// (transformers/cache_utils.py). Every zero value means "not generating":
// an inference workload without them is one forward over Seq tokens, as
// before.

// KVCache kinds (Workload.KVCache); "" is DynamicCache.
const (
	// DynamicCache is transformers' DynamicCache (DynamicLayer): K and V
	// grow by torch.cat with every token, the default of generate().
	DynamicCache = "dynamic"
	// StaticCache is transformers' StaticCache (StaticLayer): K and V
	// allocated at once for max_cache_len tokens (generate sizes it
	// max_length - 1 = prompt + generate - 1) and written in place.
	StaticCache = "static"
	// SlidingCachePrefix starts "sliding:W": DynamicSlidingWindowLayer on
	// every layer, keeping the last W-1 tokens.
	SlidingCachePrefix = "sliding:"
	// QuantizedCachePrefix starts "quantized:BITS": QuantizedCache (quanto
	// or HQQ backend): tokens quantized to BITS with a scale and a zero
	// point per group of QuantGroup values, and up to QuantResidual-1 of
	// the newest tokens kept in the model's dtype.
	QuantizedCachePrefix = "quantized:"
)

// QuantizedCache's defaults (transformers/cache_utils.py, QuantizedLayer:
// q_group_size=64, residual_length=128).
const (
	QuantGroup    = 64
	QuantResidual = 128
)

// Logits kept by each forward of a generation (Workload.Logits); "" is
// LastLogits.
const (
	// LastLogits: generate() passes logits_to_keep=1 when the model's
	// forward takes it (transformers/generation/utils.py:
	// model_kwargs["logits_to_keep"] = 1), so the prefill computes the
	// logits of the last prompt position only.
	LastLogits = "last"
	// AllLogits: every prompt position's logits (a model without
	// logits_to_keep, or a caller asking for them).
	AllLogits = "all"
)

// KVCaches lists the cache kinds for flag help and errors.
func KVCaches() []string {
	return []string{DynamicCache, StaticCache, SlidingCachePrefix + "W", QuantizedCachePrefix + "BITS"}
}

// LogitsChoices lists the Logits values a Workload accepts.
func LogitsChoices() []string { return []string{LastLogits, AllLogits} }

// quantBits are the bits QuantizedCache's backends take (quanto: 2, 4;
// HQQ: 1, 2, 3, 4, 8).
var quantBits = []int{1, 2, 3, 4, 8}

// ParseKVCache returns the kind ("dynamic", "static", "sliding" or
// "quantized") and its number (W, BITS; 0 for the others) of s ("" is
// dynamic), or an error saying what to write.
func ParseKVCache(s string) (kind string, n int, err error) {
	switch s {
	case "", DynamicCache:
		return DynamicCache, 0, nil
	case StaticCache:
		return StaticCache, 0, nil
	}
	for _, p := range []string{SlidingCachePrefix, QuantizedCachePrefix} {
		v, ok := strings.CutPrefix(s, p)
		if !ok {
			continue
		}
		k := strings.TrimSuffix(p, ":")
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 1:
			return "", 0, fmt.Errorf("%q: %s needs a positive integer after the colon, e.g. %s%d", s, k, p, map[string]int{"sliding": 4096, "quantized": 4}[k])
		case k == "sliding" && n < 2:
			return "", 0, fmt.Errorf("%q: the window keeps W-1 tokens; use W of at least 2", s)
		case k == "quantized" && !slices.Contains(quantBits, n):
			return "", 0, fmt.Errorf("%q: bits must be one of 1, 2, 3, 4, 8 (quanto: 2, 4; HQQ: 1, 2, 3, 4, 8)", s)
		case n > MaxDim:
			return "", 0, fmt.Errorf("%q: out of range: at most %d", s, MaxDim)
		}
		return k, n, nil
	}
	return "", 0, fmt.Errorf("%q: unknown cache kind; use one of %s", s, strings.Join(KVCaches(), ", "))
}

// ParsePromptLengths reads "a,b,c" (one positive length per prompt of the
// batch).
func ParsePromptLengths(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > MaxDim {
			return nil, fmt.Errorf("%q: each length must be a positive integer up to %d, comma-separated, e.g. 512,300,17", p, MaxDim)
		}
		out = append(out, n)
	}
	return out, nil
}

// Generating reports whether w is a generation (prompt, generated tokens,
// a cache kind, ragged prompts or a logits choice given).
func (w *Workload) Generating() bool {
	return w.Prompt != 0 || w.Generate != 0 || w.KVCache != "" || w.PromptLengths != "" || w.Logits != ""
}

// GenPrompt is the padded prompt length: the longest of PromptLengths,
// else Prompt, else Seq.
func (w *Workload) GenPrompt() int {
	if ls, err := ParsePromptLengths(w.PromptLengths); err == nil && len(ls) > 0 {
		return slices.Max(ls)
	}
	if w.Prompt > 0 {
		return w.Prompt
	}
	return w.Seq
}

// checkGeneration checks the generation fields (WithDefaults' hook).
func (w *Workload) checkGeneration() error {
	if !w.Generating() {
		return nil
	}
	if !w.Inference {
		field, v := "generate", any(w.Generate)
		switch {
		case w.Prompt > 0:
			field, v = "prompt", w.Prompt
		case w.KVCache != "":
			field, v = "kv_cache", w.KVCache
		case w.PromptLengths != "":
			field, v = "prompt_lengths", w.PromptLengths
		case w.Logits != "":
			field, v = "logits", w.Logits
		}
		return &FieldError{Field: field, Value: v, Reason: "applies to inference only; add inference"}
	}
	if w.Prompt < 0 || w.Prompt > MaxDim {
		return &FieldError{Field: "prompt", Value: w.Prompt, Reason: fmt.Sprintf("must be a positive integer up to %d", MaxDim)}
	}
	if w.Generate < 0 || w.Generate > MaxDim {
		return &FieldError{Field: "generate", Value: w.Generate, Reason: fmt.Sprintf("must be 0 or a positive integer up to %d", MaxDim)}
	}
	if _, _, err := ParseKVCache(w.KVCache); err != nil {
		return &FieldError{Field: "kv_cache", Value: w.KVCache, Reason: err.Error()}
	}
	if w.Logits != "" && !slices.Contains(LogitsChoices(), w.Logits) {
		return enumError("logits", w.Logits, LogitsChoices())
	}
	ls, err := ParsePromptLengths(w.PromptLengths)
	if err != nil {
		return &FieldError{Field: "prompt_lengths", Value: w.PromptLengths, Reason: err.Error()}
	}
	if len(ls) > 0 {
		if len(ls) != w.Batch {
			return &FieldError{Field: "prompt_lengths", Value: w.PromptLengths,
				Reason: fmt.Sprintf("gives %d prompts but the batch is %d; give one length per prompt or set the batch to %d", len(ls), w.Batch, len(ls))}
		}
		if w.Prompt > 0 && w.Prompt != slices.Max(ls) {
			return &FieldError{Field: "prompt", Value: w.Prompt,
				Reason: fmt.Sprintf("differs from the longest of prompt_lengths (%d), to which the batch is padded; drop prompt or make it %d", slices.Max(ls), slices.Max(ls))}
		}
	}
	if p := w.GenPrompt(); p+w.Generate > MaxDim {
		return &FieldError{Field: "generate", Value: w.Generate, Reason: fmt.Sprintf("prompt %d + generate is over %d tokens", p, MaxDim)}
	}
	return nil
}
