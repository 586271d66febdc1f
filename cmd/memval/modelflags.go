package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/model"
)

// modelOptions are the flags that name a model, shared by every command
// that needs one (params, estimate, ...). A model is one of
//
//   - --model NAME: a built-in preset (model.Presets),
//   - --config FILE: a Hugging Face config.json (or a folder holding one),
//   - explicit dimensions: --layers, --hidden, --heads and --vocab, with
//     --family (default gpt2) giving the structure (biases, norms, tying).
//
// Dimension flags given with --model or --config override the preset's or
// config's values; the others are kept, except that --head-dim follows
// --hidden/--heads unless given, and --kv-heads follows --heads for a
// multi-head (not grouped-query) model unless given. --seq-max sets the
// context length and, for models with a learned position table, its size.
// --tied overrides whether the LM head shares the token embedding.
type modelOptions struct {
	model  string
	config string
	family string

	layers, hidden, heads, kvHeads, headDim, ffn, vocab, seqMax int
	tied                                                        bool

	fs *pflag.FlagSet // to tell flags given from defaults
}

// modelDimFlags are the dimension flags in the order they are reported.
var modelDimFlags = []string{"layers", "hidden", "heads", "kv-heads", "head-dim", "ffn", "vocab", "seq-max", "tied"}

// bind registers the model flags on fs.
func (m *modelOptions) bind(fs *pflag.FlagSet) {
	m.fs = fs
	fs.StringVar(&m.model, "model", "", "built-in model preset: "+strings.Join(model.Presets(), ", "))
	fs.StringVar(&m.config, "config", "", "Hugging Face config.json of the model (or a folder holding one)")
	fs.StringVar(&m.family, "family", "gpt2", "model family for explicit dimensions: "+strings.Join(model.Families(), ", "))
	fs.IntVar(&m.layers, "layers", 0, "number of transformer layers L")
	fs.IntVar(&m.hidden, "hidden", 0, "hidden size H (d_model)")
	fs.IntVar(&m.heads, "heads", 0, "attention (query) heads")
	fs.IntVar(&m.kvHeads, "kv-heads", 0, "key/value heads for grouped-query attention (default: --heads)")
	fs.IntVar(&m.headDim, "head-dim", 0, "width of one head (default: hidden/heads)")
	fs.IntVar(&m.ffn, "ffn", 0, "feed-forward (intermediate) size d_ff, per expert (default 4*hidden where the family does so)")
	fs.IntVar(&m.vocab, "vocab", 0, "vocabulary size V")
	fs.IntVar(&m.seqMax, "seq-max", 0, "longest sequence (max_position_embeddings); sizes a learned position table")
	fs.BoolVar(&m.tied, "tied", false, "the LM head shares the token embedding (default: as the family or preset does)")
}

func (m *modelOptions) changed(name string) bool {
	return m.fs != nil && m.fs.Changed(name)
}

// overrides returns the dimension flags given, as "--name value".
func (m *modelOptions) overrides() []string {
	var out []string
	for _, name := range modelDimFlags {
		if m.changed(name) {
			out = append(out, "--"+name+" "+m.fs.Lookup(name).Value.String())
		}
	}
	return out
}

// resolve returns the model the flags name, normalized. Bad flags, an
// unknown preset or a bad config are usage errors naming the flag (or
// file and field) and the value.
func (m *modelOptions) resolve() (model.Arch, error) {
	if m.model != "" && m.config != "" {
		return model.Arch{}, usagef("--model %q and --config %q are exclusive; give one of them", m.model, m.config)
	}
	var a model.Arch
	switch {
	case m.model != "" || m.config != "":
		if m.changed("family") {
			return model.Arch{}, usagef("--family %q applies to explicit dimensions; a --model or --config sets its own family", m.family)
		}
		var err error
		if m.model != "" {
			a, err = model.Preset(m.model)
			if err != nil {
				return model.Arch{}, usagef("--model: %w", err)
			}
		} else {
			a, err = model.LoadConfig(m.config)
			if err != nil {
				return model.Arch{}, usagef("--config: %w", err)
			}
		}
		if ov := m.overrides(); len(ov) > 0 {
			a.Name += " (" + strings.Join(ov, " ") + ")"
		}
	default:
		var missing []string
		for _, name := range []string{"layers", "hidden", "heads", "vocab"} {
			if f, ok := model.FamilyOf(m.family); !m.changed(name) && !(name == "vocab" && ok && f.Vision != nil) {
				missing = append(missing, "--"+name)
			}
		}
		if len(missing) == 4 {
			return model.Arch{}, usagef("no model given; give --model NAME, --config FILE or the dimensions --layers, --hidden, --heads and --vocab")
		}
		if len(missing) > 0 {
			return model.Arch{}, usagef("explicit dimensions need %s too (or give --model NAME or --config FILE)", strings.Join(missing, ", "))
		}
		if !modelFamilyKnown(m.family) {
			return model.Arch{}, usagef("--family %q: unknown; use one of %s", m.family, strings.Join(model.Families(), ", "))
		}
		a = model.Arch{Family: m.family} // bare: Normalize applies the family's structure
	}
	m.apply(&a)
	if err := a.Normalize(); err != nil {
		return model.Arch{}, m.flagError(err)
	}
	if m.changed("tied") {
		a.TiedHead = m.tied
	}
	return a, nil
}

// apply writes the dimension flags given onto a.
func (m *modelOptions) apply(a *model.Arch) {
	oldHeads := a.Heads
	if m.changed("layers") {
		a.Layers = m.layers
	}
	if m.changed("hidden") {
		a.Hidden = m.hidden
		if !m.changed("head-dim") {
			a.HeadDim = 0
		}
	}
	if m.changed("heads") {
		a.Heads = m.heads
		if !m.changed("head-dim") {
			a.HeadDim = 0
		}
		if !m.changed("kv-heads") && a.KVHeads == oldHeads {
			a.KVHeads = 0
		}
	}
	if m.changed("kv-heads") {
		a.KVHeads = m.kvHeads
	}
	if m.changed("head-dim") {
		a.HeadDim = m.headDim
	}
	if m.changed("ffn") {
		a.FFN = m.ffn
	}
	if m.changed("vocab") {
		a.Vocab = m.vocab
	}
	if m.changed("seq-max") {
		a.ContextLength = m.seqMax
		if a.MaxPositions > 0 {
			a.MaxPositions = m.seqMax
		}
	}
}

// modelArchFlags maps Arch fields, as Normalize names them, to the flags that
// set them.
var modelArchFlags = map[string]string{
	"layers": "--layers", "hidden": "--hidden", "heads": "--heads", "kv_heads": "--kv-heads",
	"head_dim": "--head-dim", "ffn": "--ffn", "vocab": "--vocab", "context_length": "--seq-max",
	"max_positions": "--seq-max", "family": "--family",
}

var modelArchFlagWord = regexp.MustCompile(`\b(layers|hidden|heads|kv_heads|head_dim|ffn|vocab)\b`)

// flagError turns Normalize's error into a usage error naming flags where
// a flag set the field at fault.
func (m *modelOptions) flagError(err error) error {
	var fe *model.FieldError
	if !errors.As(err, &fe) {
		return asUsage(err)
	}
	flag, ok := modelArchFlags[fe.Field]
	if !ok || (!m.changed(strings.TrimPrefix(flag, "--")) && (m.model != "" || m.config != "")) {
		return usagef("model %s: %w", m.describe(), err)
	}
	reason := modelArchFlagWord.ReplaceAllStringFunc(fe.Reason, func(w string) string { return modelArchFlags[w] })
	return usagef("%s %v: %s", flag, fe.Value, reason)
}

// describe names the model source for messages.
func (m *modelOptions) describe() string {
	switch {
	case m.model != "":
		return fmt.Sprintf("--model %s", m.model)
	case m.config != "":
		return fmt.Sprintf("--config %s", m.config)
	}
	return "given by dimensions"
}

func modelFamilyKnown(f string) bool {
	for _, k := range model.Families() {
		if k == f {
			return true
		}
	}
	return false
}
