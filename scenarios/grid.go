package scenarios

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/memval/memval/analytic/model"
)

// Grid is a set of scenarios: a list of spec files, and/or a base spec
// with axes whose cartesian product is expanded into specs.
//
//	name: ci
//	base:                 # inline spec fields, or the path of a spec file
//	  model: gpt2
//	  seq: 256
//	axes:                 # each a list; every combination becomes a scenario
//	  batch: [1, 4]
//	  precision: [fp32, bf16]
//	specs:                # spec files (globs allowed), relative to the grid file
//	  - ../gpt2-b1-s256-fp32.yaml
type Grid struct {
	Name string
	File string // where the grid was read from; spec paths are relative to its folder

	Base     *Spec  // inline base spec (nil when none or when BaseFile is set)
	BaseFile string // a spec file used as the base, relative to File's folder
	Axes     Axes
	Specs    []string // spec files or globs, relative to File's folder

	baseLine int // line of the base field, for errors in expanded specs
}

// Axes are the values a grid varies. Expansion nests them in this order,
// Model outermost and Checkpointing innermost; an empty axis keeps the
// base's value.
type Axes struct {
	Model         []ModelSpec
	Batch         []int
	Seq           []int
	Precision     []model.Precision
	Attention     []model.Attention
	Checkpointing []model.Checkpointing
}

// MaxGridScenarios bounds a grid's expansion, to catch a runaway product.
const MaxGridScenarios = 10000

var gridKeys = []string{"name", "base", "axes", "specs"}
var axisKeys = []string{"model", "batch", "seq", "precision", "attention", "checkpointing"}

// LoadGrid reads and parses the grid file at path.
func LoadGrid(path string) (*Grid, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sweep grid: %w", err)
	}
	return ParseGrid(data, path)
}

// ParseGrid parses a grid from YAML; name is its file (File: used in error
// messages, spec paths are relative to its folder) and, without a name
// field, gives the grid's name. It reads no files: spec files and a base
// file are read by Expand.
func ParseGrid(data []byte, name string) (*Grid, error) {
	p := &parser{file: name}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	g := &Grid{File: name}
	var axesNode *yaml.Node
	err = p.fields(root, "", func(key string, k, v *yaml.Node) error {
		switch key {
		case "name":
			n, err := p.str(v, key)
			if err == nil && !validName(n) {
				err = p.errf(v, key, "%q is not a usable grid name: use letters, digits, '.', '_' or '-'", n)
			}
			g.Name = n
			return err
		case "base":
			g.baseLine = k.Line
			if v.Kind == yaml.ScalarNode {
				f, err := p.str(v, key)
				g.BaseFile = f
				return err
			}
			if v.Kind != yaml.MappingNode {
				return p.errf(v, key, "want a spec file's path or a mapping of spec fields, got %s", kindName(v))
			}
			g.Base = &Spec{}
			return p.spec(v, key, g.Base)
		case "axes":
			axesNode = v
			return p.axes(v, key, &g.Axes)
		case "specs":
			list, err := p.list(v, key)
			if err != nil {
				return err
			}
			for i, item := range list {
				f, err := p.str(item, fmt.Sprintf("%s[%d]", key, i))
				if err != nil {
					return err
				}
				g.Specs = append(g.Specs, f)
			}
			return nil
		default:
			return p.errf(k, key, "unknown field: want one of %s", strings.Join(gridKeys, ", "))
		}
	})
	if err != nil {
		return nil, err
	}
	if g.Name == "" {
		base := filepath.Base(name)
		g.Name = strings.TrimSuffix(base, filepath.Ext(base))
		if !validName(g.Name) {
			g.Name = "grid"
		}
	}
	hasBase := g.Base != nil || g.BaseFile != ""
	switch {
	case !hasBase && len(g.Specs) == 0:
		return nil, p.errf(root, "", "nothing to run: give specs: (spec files) or base: with axes:")
	case axesNode != nil && !hasBase:
		return nil, p.errf(axesNode, "axes", "axes vary a base: add base: (a spec file or spec fields)")
	}
	if n := g.Axes.size(); n > MaxGridScenarios {
		return nil, p.errf(axesNode, "axes", "%d combinations are more than %d: split the grid", n, MaxGridScenarios)
	}
	return g, nil
}

func (p *parser) list(v *yaml.Node, field string) ([]*yaml.Node, error) {
	if v.Kind == yaml.ScalarNode {
		return []*yaml.Node{v}, nil // a single value stands for a list of one
	}
	if v.Kind != yaml.SequenceNode {
		return nil, p.errf(v, field, "want a list, got %s", kindName(v))
	}
	if len(v.Content) == 0 {
		return nil, p.errf(v, field, "empty list: give at least one value or leave the field out")
	}
	out := make([]*yaml.Node, len(v.Content))
	for i, n := range v.Content {
		out[i] = deref(n)
		if out[i] == nil {
			return nil, p.errf(v, field, "item %d is empty", i)
		}
	}
	return out, nil
}

func (p *parser) axes(v *yaml.Node, field string, a *Axes) error {
	if v.Kind != yaml.MappingNode {
		return p.errf(v, field, "want a mapping of axis: [values], got %s", kindName(v))
	}
	return p.fields(v, field, func(key string, k, v *yaml.Node) error {
		f := join(field, key)
		items, err := p.list(v, f)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for i, item := range items {
			fi := fmt.Sprintf("%s[%d]", f, i)
			var label string
			switch key {
			case "model":
				var m ModelSpec
				if err := p.model(item, fi, &m); err != nil {
					return err
				}
				a.Model = append(a.Model, m)
				label = m.label()
			case "batch", "seq":
				n, err := p.positive(item, fi)
				if err != nil {
					return err
				}
				if key == "batch" {
					a.Batch = append(a.Batch, n)
				} else {
					a.Seq = append(a.Seq, n)
				}
				label = strconv.Itoa(n)
			case "precision":
				x, err := p.oneOf(item, fi, precisions)
				if err != nil {
					return err
				}
				a.Precision = append(a.Precision, model.Precision(x))
				label = x
			case "attention":
				x, err := p.oneOf(item, fi, attentions)
				if err != nil {
					return err
				}
				if x == "sdpa" {
					x = string(model.FlashAttention)
				}
				a.Attention = append(a.Attention, model.Attention(x))
				label = x
			case "checkpointing":
				x, err := p.oneOf(item, fi, checkpointings)
				if err != nil {
					return err
				}
				a.Checkpointing = append(a.Checkpointing, model.Checkpointing(x))
				label = x
			default:
				return p.errf(k, f, "unknown axis: want one of %s", strings.Join(axisKeys, ", "))
			}
			if seen[label] {
				return p.errf(item, fi, "%s is listed twice", label)
			}
			seen[label] = true
		}
		return nil
	})
}

// size is the number of combinations the axes make (1 with no axes).
func (a Axes) size() int {
	n := 1
	for _, k := range []int{len(a.Model), len(a.Batch), len(a.Seq), len(a.Precision), len(a.Attention), len(a.Checkpointing)} {
		if k > 0 {
			n *= k
			if n > MaxGridScenarios {
				return n
			}
		}
	}
	return n
}

// Expand returns the grid's scenarios in a stable order: the listed spec
// files first (in list order; a glob's matches sorted), then the base's
// combinations, nested in Axes order. Product specs are named
// "<grid>-<model>-b<batch>-s<seq>-<precision>-<attention>-ckpt-<mode>",
// naming only the axes the grid varies ("<grid>-base" with none). Names
// must be unique: they name the result folders.
func (g *Grid) Expand() ([]*Spec, error) {
	dir := ""
	if g.File != "" {
		dir = filepath.Dir(g.File)
	}
	rel := func(p string) string {
		if filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	var specs []*Spec
	for _, pattern := range g.Specs {
		paths := []string{rel(pattern)}
		if strings.ContainsAny(pattern, "*?[") {
			m, err := filepath.Glob(rel(pattern))
			if err != nil || len(m) == 0 {
				return nil, fmt.Errorf("%s: %w: specs: %q matches no file", g.File, ErrInvalid, pattern)
			}
			paths = m // Glob sorts
		}
		for _, path := range paths {
			s, err := LoadSpec(path)
			if err != nil {
				return nil, fmt.Errorf("%s: spec %s: %w", g.File, pattern, err)
			}
			specs = append(specs, s)
		}
	}
	base := g.Base
	if g.BaseFile != "" {
		b, err := LoadSpec(rel(g.BaseFile))
		if err != nil {
			return nil, fmt.Errorf("%s: base: %w", g.File, err)
		}
		base = b
	}
	if base != nil {
		product, err := g.product(base)
		if err != nil {
			return nil, err
		}
		specs = append(specs, product...)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: %w: scenario name %q comes twice: give the specs distinct names", g.File, ErrInvalid, s.Name)
		}
		seen[s.Name] = true
	}
	return specs, nil
}

// product expands base over the axes.
func (g *Grid) product(base *Spec) ([]*Spec, error) {
	file := g.File
	if base.File == "" {
		// An inline base: model configs are relative to the grid file.
		b := *base
		b.File = g.File
		base = &b
	}
	a := g.Axes
	specs := []*Spec{}
	type step struct {
		n     int
		apply func(s *Spec, i int) string
	}
	steps := []step{
		{len(a.Model), func(s *Spec, i int) string { s.Model = a.Model[i]; return a.Model[i].label() }},
		{len(a.Batch), func(s *Spec, i int) string { s.Batch = a.Batch[i]; return fmt.Sprintf("b%d", a.Batch[i]) }},
		{len(a.Seq), func(s *Spec, i int) string { s.Seq = a.Seq[i]; return fmt.Sprintf("s%d", a.Seq[i]) }},
		{len(a.Precision), func(s *Spec, i int) string { s.Precision = a.Precision[i]; return string(a.Precision[i]) }},
		{len(a.Attention), func(s *Spec, i int) string { s.Attention = a.Attention[i]; return string(a.Attention[i]) }},
		{len(a.Checkpointing), func(s *Spec, i int) string {
			s.Checkpointing = a.Checkpointing[i]
			return "ckpt-" + string(a.Checkpointing[i])
		}},
	}
	var rec func(k int, s Spec, parts []string) error
	rec = func(k int, s Spec, parts []string) error {
		if k == len(steps) {
			if len(parts) == 0 {
				parts = []string{"base"}
			}
			s.Name = g.Name + "-" + strings.Join(parts, "-")
			if !validName(s.Name) {
				return fmt.Errorf("%s:%d: %w: generated scenario name %q is not usable: shorten the grid name or the model labels", file, g.baseLine, ErrInvalid, s.Name)
			}
			if field, err := s.check(); err != nil {
				return &FieldError{File: file, Line: g.baseLine, Field: "base." + field, Err: fmt.Errorf("scenario %s: %w", s.Name, err)}
			}
			out := s
			specs = append(specs, &out)
			return nil
		}
		st := steps[k]
		if st.n == 0 {
			return rec(k+1, s, parts)
		}
		for i := 0; i < st.n; i++ {
			c := s
			label := st.apply(&c, i)
			if err := rec(k+1, c, append(append([]string(nil), parts...), label)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := rec(0, *base, nil); err != nil {
		return nil, err
	}
	return specs, nil
}
