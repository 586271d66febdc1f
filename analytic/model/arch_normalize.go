package model

import (
	"fmt"
	"strings"
)

// MaxDim is the largest value Normalize accepts for any single size of an
// Arch (layers, hidden, heads, vocabulary, ...). Together with the checked
// arithmetic of Params it keeps every product of sizes below 1<<62.
const MaxDim = 1 << 31

// MaxParams is the largest parameter count Normalize accepts (about 1.1e15).
// At 16 bytes per parameter (fp32 weights, gradients and Adam states) that is
// 2^54 bytes, far inside uint64, so memory formulas built on Params cannot
// overflow through the parameter count.
const MaxParams int64 = 1 << 50

// FieldError is bad input in one named field of a model description. Field
// is the name the user wrote: an Arch JSON name ("heads"), a config.json key
// ("num_attention_heads") or a command-line flag ("--heads"), depending on
// who reports it.
type FieldError struct {
	Field  string
	Value  any
	Reason string // what is wrong and, where possible, what to do
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("field %q = %v: %s", e.Field, e.Value, e.Reason)
}

// Normalize fills the defaults of a's family and checks that a describes a
// model whose parameters can be counted.
//
// An Arch whose Norm is empty is taken as bare dimensions: Normalize then
// sets Norm and every structural field the family fixes (norms per layer,
// final and embedding norms, biases, gated MLP, head tying and bias, pooler,
// learned position table and its offset, token types, activation, q/k
// norms, a shared expert's gate), overwriting the booleans. MoE families
// default their routing as their configuration classes do (mixtral 8
// experts top-2, qwen2_moe 60 top-4, qwen3_moe 128 top-8). An Arch
// with Norm set keeps them as they are. In both cases zero sizes are
// defaulted: KVHeads = Heads, HeadDim = Hidden/Heads, FFN = 4*Hidden for
// the families whose configs default so (Family.FFN4H: vanilla, gpt2,
// gpt_neox, opt, bert, phi, gpt_neo, gptj, bloom, falcon; the others need
// FFN), ContextLength
// the family's default, and MaxPositions = ContextLength for families with a
// learned position table.
//
// It rejects unknown families, zero or negative sizes, sizes above MaxDim,
// heads that do not divide hidden (when HeadDim is not given), heads not a
// multiple of KVHeads, experts or shared experts outside MoE, top-k
// outside 1..experts, an unknown qk_norm,
// dropout outside [0, 1), and models of more than MaxParams parameters or
// whose counts would overflow int64. Errors are *FieldError naming the Arch
// JSON field. Normalize is idempotent.
func (a *Arch) Normalize() error {
	fam, ok := families[a.Family]
	if !ok {
		return &FieldError{Field: "family", Value: fmt.Sprintf("%q", a.Family),
			Reason: "unknown model family; use one of " + strings.Join(Families(), ", ")}
	}
	if a.Norm == "" {
		fam.apply(a)
	}
	if a.Norm != LayerNorm && a.Norm != RMSNorm {
		return &FieldError{Field: "norm", Value: fmt.Sprintf("%q", a.Norm), Reason: `unknown norm; use "layernorm" or "rmsnorm"`}
	}

	if err := a.normalizeVision(fam); err != nil { // family_vision.go
		return err
	}
	// Sizes that must be given.
	for _, f := range []struct {
		name string
		v    int
	}{{"layers", a.Layers}, {"hidden", a.Hidden}, {"heads", a.Heads}, {"vocab", a.Vocab}} {
		if f.v <= 0 && !(f.name == "vocab" && fam.Vision != nil) {
			return &FieldError{Field: f.name, Value: f.v, Reason: "must be a positive integer"}
		}
	}
	// Sizes that may be zero (defaulted or absent) but never negative.
	for _, f := range []struct {
		name string
		v    int
	}{
		{"kv_heads", a.KVHeads}, {"head_dim", a.HeadDim}, {"ffn", a.FFN}, {"context_length", a.ContextLength},
		{"max_positions", a.MaxPositions}, {"position_offset", a.PositionOffset}, {"token_types", a.TokenTypes},
		{"embed_proj", a.EmbedProj}, {"norms_per_layer", a.NormsPerLayer}, {"experts", a.Experts},
		{"experts_per_token", a.ExpertsPerToken}, {"shared_ffn", a.SharedFFN},
	} {
		if f.v < 0 {
			return &FieldError{Field: f.name, Value: f.v, Reason: "must not be negative"}
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"layers", a.Layers}, {"hidden", a.Hidden}, {"heads", a.Heads}, {"vocab", a.Vocab},
		{"kv_heads", a.KVHeads}, {"head_dim", a.HeadDim}, {"ffn", a.FFN}, {"context_length", a.ContextLength},
		{"max_positions", a.MaxPositions}, {"position_offset", a.PositionOffset}, {"token_types", a.TokenTypes},
		{"embed_proj", a.EmbedProj}, {"experts", a.Experts}, {"experts_per_token", a.ExpertsPerToken},
		{"shared_ffn", a.SharedFFN},
	} {
		if f.v > MaxDim {
			return &FieldError{Field: f.name, Value: f.v, Reason: fmt.Sprintf("is larger than %d, the largest size memval accepts", MaxDim)}
		}
	}

	if a.HeadDim == 0 {
		if a.Hidden%a.Heads != 0 {
			return &FieldError{Field: "heads", Value: a.Heads,
				Reason: fmt.Sprintf("does not divide hidden %d; choose a divisor of %d or give head_dim", a.Hidden, a.Hidden)}
		}
		a.HeadDim = a.Hidden / a.Heads
	}
	if a.KVHeads == 0 {
		a.KVHeads = a.Heads
	}
	if a.Heads%a.KVHeads != 0 {
		return &FieldError{Field: "kv_heads", Value: a.KVHeads,
			Reason: fmt.Sprintf("does not divide heads %d; grouped-query attention needs heads to be a multiple of kv_heads", a.Heads)}
	}
	if a.FFN == 0 {
		if !fam.FFN4H {
			return &FieldError{Field: "ffn", Value: 0,
				Reason: fmt.Sprintf("the %s family has no default intermediate size; give it", a.Family)}
		}
		a.FFN = 4 * a.Hidden
	}
	if a.NormsPerLayer == 0 {
		a.NormsPerLayer = fam.NormsPerLayer
	}
	if a.NormsPerLayer > 4 {
		return &FieldError{Field: "norms_per_layer", Value: a.NormsPerLayer, Reason: "must be between 1 and 4"}
	}
	if a.ContextLength == 0 {
		a.ContextLength = fam.Context
	}
	if fam.Positions == LearnedPositions && a.MaxPositions == 0 {
		a.MaxPositions = a.ContextLength
	}
	if fam.Positions == LearnedPositions && a.MaxPositions == 0 {
		return &FieldError{Field: "max_positions", Value: 0, Reason: fmt.Sprintf("the %s family has a learned position table; give its size", a.Family)}
	}
	if a.EmbedProj == a.Hidden {
		a.EmbedProj = 0
	}
	if a.EmbedProj != 0 && !fam.EmbedProj {
		return &FieldError{Field: "embed_proj", Value: a.EmbedProj, Reason: "only the " + strings.Join(familiesWith(func(f *Family) bool { return f.EmbedProj }), ", ") + " family projects its embeddings; leave it 0"}
	}

	if a.QKNorm != "" && a.QKNorm != QKNormHead && a.QKNorm != QKNormFull {
		return &FieldError{Field: "qk_norm", Value: fmt.Sprintf("%q", a.QKNorm),
			Reason: fmt.Sprintf("unknown q/k norm; use %q, %q or leave it empty", QKNormHead, QKNormFull)}
	}
	if err := a.checkWindow(fam); err != nil { // family_window.go
		return err
	}
	if fam.MoE {
		if a.Experts == 0 {
			a.Experts = fam.defaultExperts()
		}
		if a.ExpertsPerToken == 0 {
			a.ExpertsPerToken = fam.defaultTopK()
		}
		if a.ExpertsPerToken > a.Experts {
			return &FieldError{Field: "experts_per_token", Value: a.ExpertsPerToken,
				Reason: fmt.Sprintf("is more than the %d experts; choose 1 to %d", a.Experts, a.Experts)}
		}
	} else if a.Experts != 0 || a.ExpertsPerToken != 0 || a.SharedFFN != 0 || a.SharedExpertGate {
		field, v := "experts", any(a.Experts)
		if a.Experts == 0 && a.ExpertsPerToken == 0 {
			field, v = "shared_ffn", a.SharedFFN
		}
		return &FieldError{Field: field, Value: v,
			Reason: fmt.Sprintf("the %s family is dense; experts apply to %s only", a.Family, strings.Join(familiesWith(func(f *Family) bool { return f.MoE }), ", "))}
	}

	if err := a.normalizeHead(fam); err != nil {
		return err
	}
	if !(a.Dropout >= 0 && a.Dropout < 1) { // also rejects NaN
		return &FieldError{Field: "dropout", Value: a.Dropout, Reason: "must be a probability in [0, 1)"}
	}

	n, err := TotalParams(*a)
	if err != nil {
		return err
	}
	if n > MaxParams {
		return &FieldError{Field: "hidden", Value: a.Hidden,
			Reason: fmt.Sprintf("the model would have %d parameters, more than the %d memval accepts", n, MaxParams)}
	}
	return nil
}
