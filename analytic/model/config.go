package model

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
	"strconv"
	"strings"
)

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

// ParseConfig reads a Hugging Face config.json of a model_type in the family
// table (ConfigFamilies) into a normalized Arch whose Params equal the
// parameter count of the model the Hugging Face modeling code builds from
// it (the *ForCausalLM / *LMHeadModel class; for the encoders bert,
// roberta and xlm-roberta the base model with its pooler, for distilbert
// DistilBertModel, none with an MLM head).
//
// Fields the modeling code defaults are defaulted the same way (for example
// tie_word_embeddings, attention_bias, num_key_value_heads, n_inner); the
// sizes it cannot do without (hidden, layers, heads, vocabulary and the
// intermediate size of all but gpt2) must be present. Integers must be JSON
// integers: 3.5 or 1e309 for a size is an error, not a rounded value. A key
// and its alias given with different values (gpt2's n_embd and hidden_size)
// is an error. Errors are *FieldError naming the config key where one is at
// fault; a config lacking sizes names its model_type and every size it
// lacks. Dropout is the largest of the config's hidden, embedding and
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

func (c *config) arch() (Arch, error) {
	mt, err := c.str("model_type")
	if err != nil {
		return Arch{}, err
	}
	if mt == "" {
		return Arch{}, &FieldError{Field: "model_type", Reason: "missing; supported: " + strings.Join(ConfigFamilies(), ", ")}
	}
	fam, ok := families[mt]
	if !ok || fam.Config == nil {
		return Arch{}, &FieldError{Field: "model_type", Value: fmt.Sprintf("%q", mt),
			Reason: "not supported; supported: " + strings.Join(ConfigFamilies(), ", ")}
	}
	k := fam.Config
	if err := c.checkRequired(mt, k); err != nil {
		return Arch{}, err
	}
	a := Arch{Family: mt}
	fam.apply(&a) // structure as the family builds it; adjusted below from the config's switches
	if a.Name, err = c.str("_name_or_path"); err != nil {
		return Arch{}, err
	}
	if a.Vocab, err = c.int("vocab", fam.Vision == nil, 0, "vocab_size"); err != nil { // images have no vocabulary
		return Arch{}, err
	}
	if a.Hidden, err = c.int("hidden", true, 0, k.Hidden...); err != nil {
		return Arch{}, err
	}
	if a.Layers, err = c.int("layers", true, 0, k.Layers...); err != nil {
		return Arch{}, err
	}
	if a.Heads, err = c.int("heads", true, 0, k.Heads...); err != nil {
		return Arch{}, err
	}
	if a.FFN, err = c.int("ffn", !k.FFNOptional, 0, k.FFN...); err != nil {
		return Arch{}, err
	}
	if a.ContextLength, err = c.int("context_length", false, fam.Context, k.Positions...); err != nil {
		return Arch{}, err
	}
	if fam.Positions == LearnedPositions {
		a.MaxPositions = a.ContextLength
		c.keys["max_positions"] = c.keys["context_length"]
	}
	if k.KVHeads {
		if a.KVHeads, err = c.int("kv_heads", false, 0, "num_key_value_heads"); err != nil {
			return Arch{}, err
		}
	}
	if k.HeadDim {
		if a.HeadDim, err = c.int("head_dim", false, k.HeadDimDefault, "head_dim"); err != nil {
			return Arch{}, err
		}
	}
	if a.TiedHead, err = c.bool("tie_word_embeddings", fam.TiedHead); err != nil {
		return Arch{}, err
	}
	if a.Act, err = c.firstString(fam.Act, "activation_function", "hidden_activation", "hidden_act"); err != nil {
		return Arch{}, err
	}
	if k.Read != nil {
		if err := k.Read(c, &a); err != nil {
			return Arch{}, err
		}
	}
	if err := k.readDropouts(c, &a); err != nil {
		return Arch{}, err
	}
	if err := c.readAttnImpl(&a); err != nil { // attention_impl.go
		return Arch{}, err
	}
	return a, c.readHead(&a)
}

// checkRequired reports every size the family's reader cannot do without
// and the config lacks, in one error naming the model_type: the first
// missing key is the error's Field.
func (c *config) checkRequired(mt string, k *ConfigKeys) error {
	required := [][]string{k.Hidden, k.Layers, k.Heads}
	if families[mt].Vision == nil {
		required = append([][]string{{"vocab_size"}}, required...)
	}
	if !k.FFNOptional {
		required = append(required, k.FFN)
	}
	var missing []string
	first := ""
	for _, aliases := range required {
		present := false
		for _, key := range aliases {
			if v, ok := c.m[key]; ok && v != nil {
				present = true
			}
		}
		if !present {
			if first == "" {
				first = aliases[0]
			}
			missing = append(missing, strings.Join(aliases, " or "))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &FieldError{Field: first, Reason: fmt.Sprintf("missing; a %s config needs %s to be counted, and this one lacks %s",
		mt, strings.Join(requiredNames(required), ", "), strings.Join(missing, ", "))}
}

// requiredNames are the canonical keys of required.
func requiredNames(required [][]string) []string {
	names := make([]string, len(required))
	for i, aliases := range required {
		names[i] = aliases[0]
	}
	return names
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
