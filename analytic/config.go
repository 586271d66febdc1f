package analytic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ConfigFamilies lists the Hugging Face model_type values ParseConfig reads,
// sorted.
func ConfigFamilies() []string {
	var names []string
	for n := range families {
		if n != "vanilla" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// LoadConfig reads a Hugging Face config.json (or the config.json inside a
// model folder) and returns its Arch, normalized. The Arch's Name is the
// config's _name_or_path, else the file's (or folder's) base name. Errors
// name the file.
func LoadConfig(path string) (Arch, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Arch{}, fmt.Errorf("read model config: %w", err)
	}
	a, err := ParseConfig(data)
	if err != nil {
		return Arch{}, fmt.Errorf("model config %s: %w", path, err)
	}
	if a.Name == "" {
		base := filepath.Base(path)
		if base == "config.json" {
			base = filepath.Base(filepath.Dir(path))
		}
		a.Name = strings.TrimSuffix(base, ".json")
	}
	return a, nil
}

// ParseConfig reads a Hugging Face config.json of model_type gpt2, gpt_neox,
// opt, bert, llama, mistral, mixtral, qwen2, gemma or phi into a normalized
// Arch whose Params equal the parameter count of the model the Hugging Face
// modeling code builds from it (the *ForCausalLM / *LMHeadModel class; for
// bert, BertModel with its pooler and without an MLM head).
//
// Fields the modeling code defaults are defaulted the same way (for example
// tie_word_embeddings, attention_bias, num_key_value_heads, n_inner); the
// sizes it cannot do without (hidden, layers, heads, vocabulary and the
// intermediate size of all but gpt2) must be present. Integers must be JSON
// integers: 3.5 or 1e309 for a size is an error, not a rounded value. A key
// and its alias given with different values (gpt2's n_embd and hidden_size)
// is an error. Errors are *FieldError naming the config key where one is at
// fault. Dropout is the largest of the config's hidden, embedding and
// attention dropout probabilities (with the family's default where absent).
func ParseConfig(data []byte) (Arch, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return Arch{}, fmt.Errorf("parse config.json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Arch{}, errors.New("parse config.json: data after the top-level object; give one JSON object")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return Arch{}, errors.New("parse config.json: the top level is not a JSON object")
	}
	c := &config{m: m, keys: map[string]string{}}
	a, err := c.arch()
	if err != nil {
		return Arch{}, err
	}
	if err := a.Normalize(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			if key, ok := c.keys[fe.Field]; ok {
				fe.Field = key
				fe.Reason = c.rename(fe.Reason)
			}
		}
		return Arch{}, err
	}
	return a, nil
}

// archWord matches the Arch field names Normalize's reasons mention.
var archWord = regexp.MustCompile(`\b(hidden|heads|kv_heads)\b`)

// config is a decoded config.json and, for error messages, which key
// supplied each Arch field.
type config struct {
	m    map[string]any
	keys map[string]string // Arch JSON field -> config key
}

// rename replaces Arch field names in a Normalize error's reason with the
// config keys that supplied them.
func (c *config) rename(reason string) string {
	return archWord.ReplaceAllStringFunc(reason, func(w string) string {
		if key, ok := c.keys[w]; ok {
			return key
		}
		return w
	})
}

// lookup returns the value of the first present, non-null key among
// aliases, and an error if two aliases hold different values.
func (c *config) lookup(aliases ...string) (any, string, error) {
	var val any
	var at string
	for _, k := range aliases {
		v, ok := c.m[k]
		if !ok || v == nil {
			continue
		}
		if at == "" {
			val, at = v, k
			continue
		}
		if fmt.Sprint(v) != fmt.Sprint(val) {
			return nil, "", &FieldError{Field: k, Value: v,
				Reason: fmt.Sprintf("contradicts %q = %v; keep one of the two", at, val)}
		}
	}
	return val, at, nil
}

// int reads an integer size for Arch field field from the first of aliases.
// With required, absence is an error; otherwise absence returns def.
func (c *config) int(field string, required bool, def int, aliases ...string) (int, error) {
	v, key, err := c.lookup(aliases...)
	if err != nil {
		return 0, err
	}
	if key == "" {
		if required {
			return 0, &FieldError{Field: aliases[0], Reason: "missing; the config must give it"}
		}
		return def, nil
	}
	c.keys[field] = key
	n, ok := v.(json.Number)
	if !ok {
		return 0, &FieldError{Field: key, Value: jsonValue(v), Reason: "is " + jsonKind(v) + " where an integer is expected; write the number without quotes"}
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, &FieldError{Field: key, Value: n, Reason: "must be an integer that fits 64 bits"}
	}
	if i <= 0 {
		return 0, &FieldError{Field: key, Value: i, Reason: "must be positive"}
	}
	if i > MaxDim {
		return 0, &FieldError{Field: key, Value: i, Reason: fmt.Sprintf("is larger than %d, the largest size memval accepts", MaxDim)}
	}
	return int(i), nil
}

// bool reads a boolean, def when absent or null.
func (c *config) bool(key string, def bool) (bool, error) {
	v, ok := c.m[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, &FieldError{Field: key, Value: v, Reason: "must be true or false"}
	}
	return b, nil
}

// prob reads a probability in [0, 1], def when absent or null.
func (c *config) prob(key string, def float64) (float64, error) {
	v, ok := c.m[key]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, &FieldError{Field: key, Value: v, Reason: "must be a number"}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= 1 {
		return 0, &FieldError{Field: key, Value: n, Reason: "must be a probability in [0, 1)"}
	}
	return f, nil
}

// str reads a string, "" when absent or null.
func (c *config) str(key string) (string, error) {
	v, ok := c.m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &FieldError{Field: key, Value: v, Reason: "must be a string"}
	}
	return s, nil
}

// dimKeys are the config keys (first the canonical one, then aliases) of
// the sizes every family has.
type dimKeys struct {
	hidden, layers, heads, ffn, positions []string
	ffnRequired                           bool
}

func (c *config) arch() (Arch, error) {
	mt, err := c.str("model_type")
	if err != nil {
		return Arch{}, err
	}
	if mt == "" {
		return Arch{}, &FieldError{Field: "model_type", Reason: "missing; supported: " + strings.Join(ConfigFamilies(), ", ")}
	}
	fam, ok := families[mt]
	if !ok || mt == "vanilla" {
		return Arch{}, &FieldError{Field: "model_type", Value: fmt.Sprintf("%q", mt),
			Reason: "not supported; supported: " + strings.Join(ConfigFamilies(), ", ")}
	}
	a := Arch{Family: mt}
	a.applyFamily(fam) // structure as the family builds it; adjusted below from the config's switches
	if a.Name, err = c.str("_name_or_path"); err != nil {
		return Arch{}, err
	}

	k := dimKeys{
		hidden: []string{"hidden_size"}, layers: []string{"num_hidden_layers"}, heads: []string{"num_attention_heads"},
		ffn: []string{"intermediate_size"}, positions: []string{"max_position_embeddings"}, ffnRequired: true,
	}
	switch mt {
	case "gpt2":
		// GPT2Config's attribute_map makes hidden_size etc. aliases.
		k = dimKeys{
			hidden: []string{"n_embd", "hidden_size"}, layers: []string{"n_layer", "num_hidden_layers"},
			heads: []string{"n_head", "num_attention_heads"}, ffn: []string{"n_inner"},
			positions: []string{"n_positions", "max_position_embeddings"},
		}
	case "opt":
		k.ffn = []string{"ffn_dim"}
	}
	if a.Vocab, err = c.int("vocab", true, 0, "vocab_size"); err != nil {
		return Arch{}, err
	}
	if a.Hidden, err = c.int("hidden", true, 0, k.hidden...); err != nil {
		return Arch{}, err
	}
	if a.Layers, err = c.int("layers", true, 0, k.layers...); err != nil {
		return Arch{}, err
	}
	if a.Heads, err = c.int("heads", true, 0, k.heads...); err != nil {
		return Arch{}, err
	}
	if a.FFN, err = c.int("ffn", k.ffnRequired, 0, k.ffn...); err != nil {
		return Arch{}, err
	}
	if a.ContextLength, err = c.int("context_length", false, fam.context, k.positions...); err != nil {
		return Arch{}, err
	}
	if fam.learnedPos {
		a.MaxPositions = a.ContextLength
		c.keys["max_positions"] = c.keys["context_length"]
	}
	switch mt {
	case "llama", "mistral", "mixtral", "qwen2", "gemma", "phi":
		if a.KVHeads, err = c.int("kv_heads", false, 0, "num_key_value_heads"); err != nil {
			return Arch{}, err
		}
	}
	switch mt {
	case "llama", "mistral", "mixtral", "qwen2", "gemma":
		def := 0
		if mt == "gemma" {
			def = 256 // GemmaConfig's default head_dim
		}
		if a.HeadDim, err = c.int("head_dim", false, def, "head_dim"); err != nil {
			return Arch{}, err
		}
	}
	if a.TiedHead, err = c.bool("tie_word_embeddings", fam.tied); err != nil {
		return Arch{}, err
	}
	if a.Act, err = c.firstString(fam.act, "activation_function", "hidden_activation", "hidden_act"); err != nil {
		return Arch{}, err
	}

	type drop struct {
		key string
		def float64 // the configuration class's default
	}
	var drops []drop
	switch mt {
	case "gpt2":
		drops = []drop{{"resid_pdrop", 0.1}, {"embd_pdrop", 0.1}, {"attn_pdrop", 0.1}}
		if a.TiedHead, err = c.bool("tie_word_embeddings", true); err != nil {
			return Arch{}, err
		}
	case "gpt_neox":
		drops = []drop{{"hidden_dropout", 0}, {"attention_dropout", 0}}
		if a.QKVBias, err = c.bool("attention_bias", true); err != nil {
			return Arch{}, err
		}
		a.OutBias = a.QKVBias
		// use_parallel_residual changes the data flow, not the parameters:
		// both norms are kept either way.
		if _, err := c.bool("use_parallel_residual", true); err != nil {
			return Arch{}, err
		}
	case "opt":
		drops = []drop{{"dropout", 0.1}, {"attention_dropout", 0}}
		if a.EmbedProj, err = c.int("embed_proj", false, 0, "word_embed_proj_dim"); err != nil {
			return Arch{}, err
		}
		before, err := c.bool("do_layer_norm_before", true)
		if err != nil {
			return Arch{}, err
		}
		remove, err := c.bool("_remove_final_layer_norm", false)
		if err != nil {
			return Arch{}, err
		}
		a.FinalNorm = before && !remove
		bias, err := c.bool("enable_bias", true)
		if err != nil {
			return Arch{}, err
		}
		a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
		affine, err := c.bool("layer_norm_elementwise_affine", true)
		if err != nil {
			return Arch{}, err
		}
		if !affine {
			return Arch{}, &FieldError{Field: "layer_norm_elementwise_affine", Value: false,
				Reason: "layer norms without weights are not supported; remove the key to count them with weights"}
		}
	case "bert":
		drops = []drop{{"hidden_dropout_prob", 0.1}, {"attention_probs_dropout_prob", 0.1}}
		if a.TokenTypes, err = c.int("token_types", false, 2, "type_vocab_size"); err != nil {
			return Arch{}, err
		}
		a.TiedHead = true // BertModel has no LM head to tie or not
	case "llama":
		drops = []drop{{"attention_dropout", 0}}
		if a.QKVBias, err = c.bool("attention_bias", false); err != nil {
			return Arch{}, err
		}
		a.OutBias = a.QKVBias
		if a.MLPBias, err = c.bool("mlp_bias", false); err != nil {
			return Arch{}, err
		}
	case "mistral", "qwen2":
		drops = []drop{{"attention_dropout", 0}}
	case "mixtral":
		drops = []drop{{"attention_dropout", 0}}
		if a.Experts, err = c.int("experts", false, 8, "num_local_experts"); err != nil {
			return Arch{}, err
		}
		if a.ExpertsPerToken, err = c.int("experts_per_token", false, 2, "num_experts_per_tok"); err != nil {
			return Arch{}, err
		}
	case "gemma":
		drops = []drop{{"attention_dropout", 0}}
		if a.QKVBias, err = c.bool("attention_bias", false); err != nil {
			return Arch{}, err
		}
		a.OutBias = a.QKVBias
	case "phi":
		drops = []drop{{"resid_pdrop", 0}, {"embd_pdrop", 0}, {"attention_dropout", 0}}
		qk, err := c.bool("qk_layernorm", false)
		if err != nil {
			return Arch{}, err
		}
		if qk {
			return Arch{}, &FieldError{Field: "qk_layernorm", Value: true, Reason: "per-head q/k layer norms are not supported"}
		}
	}
	for _, d := range drops {
		p, err := c.prob(d.key, d.def)
		if err != nil {
			return Arch{}, err
		}
		a.Dropout = math.Max(a.Dropout, p)
	}
	return a, nil
}

// firstString returns the first present string among keys, def if none.
func (c *config) firstString(def string, keys ...string) (string, error) {
	for _, k := range keys {
		s, err := c.str(k)
		if err != nil {
			return "", err
		}
		if s != "" {
			return s, nil
		}
	}
	return def, nil
}
