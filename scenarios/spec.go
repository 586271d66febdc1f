package scenarios

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// Defaults for the optional fields of a Spec.
const (
	DefaultSteps     = 6
	DefaultWarmup    = 2
	DefaultTolerance = 0.10
	DefaultFormula   = "breakdown"
)

// Expectations a spec may declare about its own outcome.
const (
	ExpectFit = "fit" // the scenario is meant to fit on an 80 GB H100 (default)
	ExpectOOM = "oom" // the scenario is meant to run out of memory
)

// Spec is one scenario: a model, one training step's shape and settings,
// how long to run it and how strictly to judge the formulas. It is read
// from YAML (ParseSpec, LoadSpec) and written into result.json as JSON.
// The zero value of each optional field means the default documented on it.
type Spec struct {
	Name  string    `json:"name"`
	Model ModelSpec `json:"model"`

	Batch         int                 `json:"batch"`
	Seq           int                 `json:"seq"`
	Precision     model.Precision     `json:"precision,omitempty"`     // default fp32
	Optimizer     model.Optimizer     `json:"optimizer,omitempty"`     // default adamw
	Dropout       *float64            `json:"dropout,omitempty"`       // nil: the model's own (Arch.Dropout)
	Checkpointing model.Checkpointing `json:"checkpointing,omitempty"` // default none
	Attention     model.Attention     `json:"attention,omitempty"`     // default math; "sdpa" is read as flash
	Backend       model.Backend       `json:"backend,omitempty"`       // default cuda
	// MoEImbalance is a mixture-of-experts model's busiest expert's routed
	// tokens over the mean (model.Workload.MoEImbalance); 0: balanced.
	MoEImbalance float64 `json:"moe_imbalance,omitempty"`

	// Distributed settings, as memval estimate takes them (model.Workload):
	// estimated per rank; train.py runs one process and refuses them.
	ZeRO         int           `json:"zero,omitempty"`
	DP           int           `json:"dp,omitempty"`
	TP           int           `json:"tp,omitempty"`
	SP           bool          `json:"sp,omitempty"`
	PP           int           `json:"pp,omitempty"`
	PPInterleave int           `json:"pp_interleave,omitempty"`
	Microbatches int           `json:"microbatches,omitempty"`
	CP           int           `json:"cp,omitempty"`
	Offload      model.Offload `json:"offload,omitempty"`
	Engine       model.Engine  `json:"engine,omitempty"`
	BucketView   bool          `json:"bucket_view,omitempty"`
	FSDPMixed    string        `json:"fsdp_mp,omitempty"`

	// Conventions of the training loop (model.Workload, spec_conventions.go).
	Loss               model.Loss     `json:"loss,omitempty"`
	FreeLogits         bool           `json:"free_logits,omitempty"`
	AttnImpl           model.AttnImpl `json:"attn_impl,omitempty"`
	OffloadActivations bool           `json:"offload_activations,omitempty"`
	// Fine-tuning settings (spec_finetune.go): LoRA, weight formats, task
	// heads, optimizer implementations, gradient accumulation.
	Finetune FinetuneSpec `json:"finetune,omitzero"`

	Steps     int     `json:"steps,omitempty"`     // training steps; default DefaultSteps
	Warmup    int     `json:"warmup,omitempty"`    // steps before "steady" is measured (at least 1: the first step allocates optimizer states); default DefaultWarmup
	Tolerance float64 `json:"tolerance,omitempty"` // relative peak error that passes; default DefaultTolerance
	Formula   string  `json:"formula,omitempty"`   // the formula whose miss fails validate; default DefaultFormula
	Seed      int     `json:"seed,omitempty"`
	Expect    string  `json:"expect,omitempty"` // fit (default) or oom: what the author meant to happen on an 80 GB H100

	// File is where the spec was read from ("" when parsed from bytes);
	// a model config path is relative to its folder.
	File string `json:"file,omitempty"`
}

// ModelSpec names the model: exactly one of Preset, Config, or explicit
// dimensions (Family, default gpt2, and the sizes, as `memval estimate`
// takes them).
type ModelSpec struct {
	Preset string `json:"preset,omitempty"`
	Config string `json:"config,omitempty"` // a Hugging Face config.json, relative to the spec file

	Family  string `json:"family,omitempty"`
	Layers  int    `json:"layers,omitempty"`
	Hidden  int    `json:"hidden,omitempty"`
	Heads   int    `json:"heads,omitempty"`
	KVHeads int    `json:"kv_heads,omitempty"`
	HeadDim int    `json:"head_dim,omitempty"`
	FFN     int    `json:"ffn,omitempty"`
	Vocab   int    `json:"vocab,omitempty"`
	SeqMax  int    `json:"seq_max,omitempty"`
	Tied    *bool  `json:"tied,omitempty"`
}

// explicit reports whether any explicit dimension is set.
func (m ModelSpec) explicit() bool {
	return m.Family != "" || m.Layers != 0 || m.Hidden != 0 || m.Heads != 0 || m.KVHeads != 0 ||
		m.HeadDim != 0 || m.FFN != 0 || m.Vocab != 0 || m.SeqMax != 0 || m.Tied != nil
}

// label is a short name of the model for generated scenario names.
func (m ModelSpec) label() string {
	switch {
	case m.Preset != "":
		return m.Preset
	case m.Config != "":
		return strings.TrimSuffix(filepath.Base(m.Config), filepath.Ext(m.Config))
	default:
		return fmt.Sprintf("%s-l%d-h%d", orDefault(m.Family, "gpt2"), m.Layers, m.Hidden)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FieldError is a spec or grid error tied to a place in a file:
// "gpt2.yaml:7: field precision: ...".
type FieldError struct {
	File  string
	Line  int
	Field string // dotted path: "precision", "model.layers", "axes.batch"
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: field %s: %v", e.File, e.Line, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ErrInvalid is wrapped by every spec and grid error that is the file's
// fault (as opposed to a failure to read it).
var ErrInvalid = errors.New("invalid scenario")

// LoadSpec reads and parses the spec file at path.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario spec: %w", err)
	}
	s, err := ParseSpec(data, path)
	if err != nil {
		return nil, err
	}
	s.File = path
	return s, nil
}

// ParseSpec parses a spec from YAML. name is used in error messages (the
// file name) and, without a name field, as the scenario's name (its base
// name without extension). Unknown keys and bad values are errors that name
// the file, line and field. Defaults are not filled in (see Resolve).
func ParseSpec(data []byte, name string) (*Spec, error) {
	p := &parser{file: name}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	s := &Spec{}
	if err := p.spec(root, "", s); err != nil {
		return nil, err
	}
	if s.Name == "" {
		base := filepath.Base(name)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
		if !validName(s.Name) {
			return nil, p.errf(root, "name", "missing, and the file name %q is not a usable scenario name: add name: with letters, digits, '.', '_' or '-'", base)
		}
	}
	if err := p.checkSpec(root, s); err != nil {
		return nil, err
	}
	return s, nil
}

// parser walks YAML nodes and reports errors with the file's name and the
// node's line.
type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &FieldError{File: p.file, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

// document parses data into its root mapping node.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &FieldError{File: p.file, Line: yamlErrLine(err), Err: fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &FieldError{File: p.file, Line: 1, Err: errors.New("empty file: want a YAML mapping of fields")}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "", "want a YAML mapping of fields, got %s", kindName(root))
	}
	return root, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	return 1
}

// deref follows aliases (a bounded number of times).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	default:
		return "nothing"
	}
}

// fields iterates a mapping's key/value pairs, refusing duplicate and
// non-scalar keys.
func (p *parser) fields(m *yaml.Node, prefix string, f func(key string, k, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if k == nil || v == nil || k.Kind != yaml.ScalarNode {
			return p.errf(m.Content[i], prefix, "keys must be plain names")
		}
		key := k.Value
		if line, dup := seen[key]; dup {
			return p.errf(k, join(prefix, key), "given twice (first on line %d)", line)
		}
		seen[key] = k.Line
		if err := f(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// specKeys are the fields a spec (or a grid's inline base) may hold.
var specKeys = []string{"name", "model", "batch", "seq", "precision", "optimizer", "dropout",
	"checkpointing", "attention", "backend", "steps", "warmup", "tolerance", "formula", "seed", "expect",
	"zero", "dp", "tp", "sp", "pp", "pp_interleave", "microbatches", "cp", "offload", "engine", "bucket_view", "fsdp_mp", "moe_imbalance",
	"loss", "free_logits", "attn_impl", "offload_activations",
	"lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "weights", "head", "optimizer_impl", "grad_accum", "zero_grad"}

var modelDimKeys = []string{"family", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "seq_max", "tied"}

// spec decodes the mapping m into s, field by field.
func (p *parser) spec(m *yaml.Node, prefix string, s *Spec) error {
	return p.fields(m, prefix, func(key string, k, v *yaml.Node) error {
		field := join(prefix, key)
		var err error
		switch key {
		case "name":
			s.Name, err = p.str(v, field)
			if err == nil && !validName(s.Name) {
				err = p.errf(v, field, "%q is not a usable scenario name: use letters, digits, '.', '_' or '-' (it names the result folder)", s.Name)
			}
		case "model":
			err = p.model(v, field, &s.Model)
		case "batch":
			s.Batch, err = p.positive(v, field)
		case "seq":
			s.Seq, err = p.positive(v, field)
		case "precision":
			var x string
			x, err = p.oneOf(v, field, precisions)
			s.Precision = model.Precision(x)
		case "optimizer":
			var x string
			x, err = p.oneOf(v, field, optimizers)
			s.Optimizer = model.Optimizer(x)
		case "dropout":
			var d float64
			d, err = p.float(v, field)
			if err == nil && (d < 0 || d >= 1) {
				err = p.errf(v, field, "%v is not a probability in [0, 1)", d)
			}
			s.Dropout = &d
		case "checkpointing":
			err = p.checkpointing(v, field, s) // spec_conventions.go
		case "attention":
			var x string
			x, err = p.oneOf(v, field, attentions)
			if x == "sdpa" {
				x = string(model.FlashAttention)
			}
			s.Attention = model.Attention(x)
		case "backend":
			var x string
			x, err = p.oneOf(v, field, backends)
			s.Backend = model.Backend(x)
		case "moe_imbalance":
			s.MoEImbalance, err = p.float(v, field)
			if err == nil && !(s.MoEImbalance >= 1) {
				err = p.errf(v, field, "%v: must be at least 1 (the busiest expert's tokens over the mean; 1 is balanced)", s.MoEImbalance)
			}
		case "steps":
			s.Steps, err = p.positive(v, field)
			if err == nil && s.Steps > MaxSteps {
				err = p.errf(v, field, "%d is out of range: at most %d steps", s.Steps, MaxSteps)
			}
		case "warmup":
			s.Warmup, err = p.positive(v, field)
		case "tolerance":
			s.Tolerance, err = p.tolerance(v, field)
		case "formula":
			s.Formula, err = p.str(v, field)
			if err == nil {
				err = p.checkFormula(v, field, s.Formula)
			}
		case "seed":
			s.Seed, err = p.nonNegative(v, field)
		case "expect":
			s.Expect, err = p.oneOf(v, field, []string{ExpectFit, ExpectOOM})
		case "zero", "dp", "tp", "sp", "pp", "pp_interleave", "microbatches", "cp", "offload", "engine", "bucket_view", "fsdp_mp":
			err = p.distributed(key, v, field, s)
		case "loss", "free_logits", "attn_impl", "offload_activations":
			err = p.conventions(key, v, field, s)
		case "lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "weights", "head", "optimizer_impl", "grad_accum", "zero_grad":
			err = p.finetune(key, v, field, s)
		default:
			err = p.errf(k, field, "unknown field: want one of %s", strings.Join(specKeys, ", "))
		}
		return err
	})
}

// checkSpec checks what needs the whole spec, reporting at root's line.
func (p *parser) checkSpec(root *yaml.Node, s *Spec) error {
	if field, err := s.check(); err != nil {
		return p.errf(root, field, "%v", err)
	}
	return nil
}

// check checks required fields and relations between fields, and returns
// the field at fault with the problem.
func (s *Spec) check() (field string, err error) {
	switch {
	case s.Model == (ModelSpec{}):
		return "model", errors.New("missing: give model: {preset: NAME}, {config: PATH} or explicit dimensions")
	case s.Batch == 0:
		return "batch", errors.New("missing: give the micro-batch size, e.g. batch: 8")
	case s.Seq == 0:
		return "seq", errors.New("missing: give the sequence length in tokens, e.g. seq: 1024")
	case s.WarmupOrDefault() >= s.StepsOrDefault():
		return "warmup", fmt.Errorf("%d warm-up steps leave none of %d steps to measure: make warmup smaller than steps",
			s.WarmupOrDefault(), s.StepsOrDefault())
	}
	return "", nil
}

// model decodes the model field: a preset name, or a mapping with exactly
// one of preset, config or explicit dimensions.
func (p *parser) model(v *yaml.Node, field string, m *ModelSpec) error {
	if v.Kind == yaml.ScalarNode {
		name, err := p.str(v, field)
		m.Preset = name
		return err
	}
	if v.Kind != yaml.MappingNode {
		return p.errf(v, field, "want a preset name or a mapping (preset, config, or family, layers, hidden, ...), got %s", kindName(v))
	}
	err := p.fields(v, field, func(key string, k, v *yaml.Node) error {
		f := join(field, key)
		var err error
		switch key {
		case "preset":
			m.Preset, err = p.str(v, f)
		case "config":
			m.Config, err = p.str(v, f)
		case "family":
			m.Family, err = p.str(v, f)
		case "layers":
			m.Layers, err = p.positive(v, f)
		case "hidden":
			m.Hidden, err = p.positive(v, f)
		case "heads":
			m.Heads, err = p.positive(v, f)
		case "kv_heads":
			m.KVHeads, err = p.positive(v, f)
		case "head_dim":
			m.HeadDim, err = p.positive(v, f)
		case "ffn":
			m.FFN, err = p.positive(v, f)
		case "vocab":
			m.Vocab, err = p.positive(v, f)
		case "seq_max":
			m.SeqMax, err = p.positive(v, f)
		case "tied":
			var b bool
			b, err = p.boolean(v, f)
			m.Tied = &b
		default:
			err = p.errf(k, f, "unknown field: want preset, config, or dimensions (%s)", strings.Join(modelDimKeys, ", "))
		}
		return err
	})
	if err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{m.Preset != "", m.Config != "", m.explicit()} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return p.errf(v, field, "empty: give preset: NAME, config: PATH or explicit dimensions")
	case n > 1:
		return p.errf(v, field, "give exactly one of preset, config or explicit dimensions, not several")
	case m.explicit():
		for _, req := range []struct {
			name string
			val  int
		}{{"layers", m.Layers}, {"hidden", m.Hidden}, {"heads", m.Heads}, {"vocab", m.Vocab}} {
			if req.val == 0 {
				return p.errf(v, join(field, req.name), "missing: explicit dimensions need layers, hidden, heads and vocab (family defaults to gpt2)")
			}
		}
	}
	return nil
}

// The values a spec accepts are the workload's own (model.Precisions and
// the others), so that a spec takes whatever memval estimate takes; a spec
// also reads "sdpa" as flash attention.
var (
	precisions     = model.Precisions()
	optimizers     = model.Optimizers()
	checkpointings = model.Checkpointings()
	attentions     = append(model.Attentions(), "sdpa")
	backends       = model.Backends()
)

func (p *parser) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", p.errf(v, field, "want a single value, got %s", kindName(v))
	}
	return v.Value, nil
}

func (p *parser) str(v *yaml.Node, field string) (string, error) {
	s, err := p.scalar(v, field)
	if err != nil {
		return "", err
	}
	if s == "" || v.Tag == "!!null" {
		return "", p.errf(v, field, "empty: give a value")
	}
	return s, nil
}

func (p *parser) oneOf(v *yaml.Node, field string, allowed []string) (string, error) {
	s, err := p.str(v, field)
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", p.errf(v, field, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

// MaxSteps bounds a spec's steps: the simulator plans every step ahead,
// and a validation needs a few dozen.
const MaxSteps = 100_000

func (p *parser) integer(v *yaml.Node, field string) (int, error) {
	s, err := p.str(v, field)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return 0, p.errf(v, field, "%s is out of range: a spec takes whole numbers up to %d", s, math.MaxInt32)
	}
	if err != nil {
		return 0, p.errf(v, field, "%q is not a whole number", s)
	}
	return int(n), nil
}

func (p *parser) positive(v *yaml.Node, field string) (int, error) {
	n, err := p.integer(v, field)
	if err == nil && n <= 0 {
		err = p.errf(v, field, "%d must be positive", n)
	}
	return n, err
}

func (p *parser) nonNegative(v *yaml.Node, field string) (int, error) {
	n, err := p.integer(v, field)
	if err == nil && n < 0 {
		err = p.errf(v, field, "%d must not be negative", n)
	}
	return n, err
}

func (p *parser) float(v *yaml.Node, field string) (float64, error) {
	s, err := p.str(v, field)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, p.errf(v, field, "%q is not a number", s)
	}
	return f, nil
}

// tolerance reads a relative tolerance: 0.1 or "10%".
func (p *parser) tolerance(v *yaml.Node, field string) (float64, error) {
	s, err := p.str(v, field)
	if err != nil {
		return 0, err
	}
	t, ok := ParseTolerance(s)
	if !ok {
		return 0, p.errf(v, field, "%q is not a relative tolerance: write 0.1 or 10%%, above 0 and below 10", s)
	}
	return t, nil
}

// ParseTolerance reads a relative tolerance written as a fraction ("0.1")
// or a percentage ("10%"). It must be above 0 and below 10 (1000%).
func ParseTolerance(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	scale := 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "%")), 0.01
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	f *= scale
	if !(f > 0 && f < 10) {
		return 0, false
	}
	return f, true
}

func (p *parser) boolean(v *yaml.Node, field string) (bool, error) {
	s, err := p.str(v, field)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, p.errf(v, field, "%q is not true or false", s)
}

func (p *parser) checkFormula(v *yaml.Node, field, name string) error {
	if err := CheckFormula(name); err != nil {
		return p.errf(v, field, "%v", err)
	}
	return nil
}

// CheckFormula returns an error unless name is one of analytic.Formulas().
func CheckFormula(name string) error {
	all := analytic.Formulas()
	for _, f := range all {
		if f == name {
			return nil
		}
	}
	sorted := append([]string(nil), all...)
	sort.Strings(sorted)
	return fmt.Errorf("%q is not one of %s", name, strings.Join(sorted, ", "))
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// validName reports whether s can name a scenario and its result folder.
func validName(s string) bool { return nameRE.MatchString(s) && !strings.Contains(s, "..") }

// Resolve turns the spec into the model's shape and the workload, with
// every default filled in: a preset, a config (relative to the spec's
// file) or explicit dimensions become a normalised model.Arch.
func (s *Spec) Resolve() (model.Arch, model.Workload, error) {
	a, err := s.arch()
	if err != nil {
		return model.Arch{}, model.Workload{}, fmt.Errorf("scenario %s: model: %w", s.Name, err)
	}
	if a.MaxPositions > 0 && s.Seq > a.MaxPositions {
		return model.Arch{}, model.Workload{}, fmt.Errorf("scenario %s: %w: seq %d is longer than the model's %d positions: use seq: %d or less",
			s.Name, ErrInvalid, s.Seq, a.MaxPositions, a.MaxPositions)
	}
	w := model.Workload{
		Batch:         s.Batch,
		Seq:           s.Seq,
		Precision:     s.Precision,
		Optimizer:     s.Optimizer,
		Dropout:       a.Dropout,
		Attention:     s.Attention,
		Checkpointing: s.Checkpointing,
		Backend:       s.Backend,
		MoEImbalance:  s.MoEImbalance,
	}
	if s.Dropout != nil {
		w.Dropout = *s.Dropout
	}
	s.conventionsInto(&w)
	if err := attnImplInto(&w, a); err != nil { // spec_conventions.go
		return model.Arch{}, model.Workload{}, fmt.Errorf("scenario %s: %w: %w", s.Name, ErrInvalid, err)
	}
	if err := s.distributedInto(&w); err != nil {
		return model.Arch{}, model.Workload{}, err
	}
	if err := s.finetuneInto(&a, &w); err != nil {
		return model.Arch{}, model.Workload{}, err
	}
	if w.Precision == "" {
		w.Precision = model.FP32
	}
	if w.Optimizer == "" {
		w.Optimizer = model.AdamW
	}
	if w.Attention == "" && !w.AttnImpl.Transformers() {
		w.Attention = model.MathAttention
	}
	if w.Checkpointing == "" {
		w.Checkpointing = model.NoCheckpointing
	}
	if w.Backend == "" {
		w.Backend = model.CUDA
	}
	return a, w, nil
}

func (s *Spec) arch() (model.Arch, error) {
	m := s.Model
	switch {
	case m.Preset != "":
		return model.Preset(m.Preset)
	case m.Config != "":
		path := m.Config
		if !filepath.IsAbs(path) && s.File != "" {
			path = filepath.Join(filepath.Dir(s.File), path)
		}
		return model.LoadConfig(path)
	case m.explicit():
		a := model.Arch{
			Name:          m.label(),
			Family:        orDefault(m.Family, "gpt2"),
			Layers:        m.Layers,
			Hidden:        m.Hidden,
			Heads:         m.Heads,
			KVHeads:       m.KVHeads,
			HeadDim:       m.HeadDim,
			FFN:           m.FFN,
			Vocab:         m.Vocab,
			ContextLength: m.SeqMax,
		}
		// Normalize fills the family's structure (overwriting booleans on
		// bare dimensions); an explicit tied is applied after it, and the
		// second Normalize keeps it.
		if err := a.Normalize(); err != nil {
			return model.Arch{}, err
		}
		if m.Tied != nil {
			a.TiedHead = *m.Tied
			if err := a.Normalize(); err != nil {
				return model.Arch{}, err
			}
		}
		return a, nil
	}
	return model.Arch{}, fmt.Errorf("%w: no model given", ErrInvalid)
}

// StepsOrDefault returns Steps, or DefaultSteps when unset.
func (s *Spec) StepsOrDefault() int {
	if s.Steps > 0 {
		return s.Steps
	}
	return DefaultSteps
}

// WarmupOrDefault returns Warmup, or DefaultWarmup when unset.
func (s *Spec) WarmupOrDefault() int {
	if s.Warmup > 0 {
		return s.Warmup
	}
	return DefaultWarmup
}

// ToleranceOrDefault returns Tolerance, or DefaultTolerance when unset.
func (s *Spec) ToleranceOrDefault() float64 {
	if s.Tolerance > 0 {
		return s.Tolerance
	}
	return DefaultTolerance
}

// FormulaOrDefault returns Formula, or DefaultFormula when unset.
func (s *Spec) FormulaOrDefault() string {
	if s.Formula != "" {
		return s.Formula
	}
	return DefaultFormula
}
