package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func names(specs []*Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

func TestGridExpandOrderAndNames(t *testing.T) {
	src := `name: g
base:
  model: gpt2
  seq: 128
  steps: 4
axes:
  checkpointing: [none, full]
  batch: [1, 4]
  precision: fp32
`
	g, err := ParseGrid([]byte(src), "g.yaml")
	if err != nil {
		t.Fatalf("ParseGrid: %v", err)
	}
	specs, err := g.Expand()
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	// Axes nest in the fixed order (batch before precision before
	// checkpointing), whatever order the file lists them in.
	want := []string{"g-b1-fp32-ckpt-none", "g-b1-fp32-ckpt-full", "g-b4-fp32-ckpt-none", "g-b4-fp32-ckpt-full"}
	if got := names(specs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
	last := specs[3]
	if last.Batch != 4 || last.Checkpointing != model.FullCheckpointing || last.Seq != 128 || last.Steps != 4 || last.Model.Preset != "gpt2" {
		t.Errorf("got %+v, want batch 4, full checkpointing and the base's seq, steps and model", last)
	}
	if specs[0].Checkpointing != model.NoCheckpointing {
		t.Errorf("specs share state: first spec's checkpointing is %q", specs[0].Checkpointing)
	}
}

func TestGridModelsAndSpecFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("specs/b.yaml", "model: gpt2\nbatch: 2\nseq: 64\n")
	write("specs/a.yaml", "model: gpt2\nbatch: 1\nseq: 64\n")
	write("base.yaml", "name: ignored\nmodel: gpt2\nbatch: 1\nseq: 32\n")
	path := write("grids/mix.yaml", `specs:
  - ../specs/*.yaml
base: ../base.yaml
axes:
  model:
    - gpt2-medium
    - {family: gpt2, layers: 2, hidden: 64, heads: 2, vocab: 100}
`)
	g, err := LoadGrid(path)
	if err != nil {
		t.Fatalf("LoadGrid: %v", err)
	}
	specs, err := g.Expand()
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	want := []string{"a", "b", "mix-gpt2-medium", "mix-gpt2-l2-h64"}
	if got := names(specs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if specs[3].Model.Layers != 2 || specs[3].Seq != 32 {
		t.Errorf("got model %+v seq %d, want the explicit 2-layer model at the base's seq 32", specs[3].Model, specs[3].Seq)
	}
	for _, s := range specs {
		if _, _, err := s.Resolve(); err != nil {
			t.Errorf("%s: Resolve: %v", s.Name, err)
		}
	}
}

func TestGridErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown axis", "base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  heads: [1]\n", "g.yaml:3: field axes.heads: unknown axis"},
		{"bad value", "base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  precision: [fp32, int3]\n", `g.yaml:3: field axes.precision[1]: "int3" is not one of`},
		{"duplicate value", "base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  batch: [1, 1]\n", "field axes.batch[1]: 1 is listed twice"},
		{"axes without base", "specs: [a.yaml]\naxes:\n  batch: [1]\n", "field axes: axes vary a base"},
		{"nothing", "name: x\n", "nothing to run"},
		{"unknown key", "base: {model: gpt2, batch: 1, seq: 8}\nextra: 1\n", "g.yaml:2: field extra: unknown field"},
		{"bad base field", "base:\n  model: gpt2\n  batch: 0\n", "g.yaml:3: field base.batch: 0 must be positive"},
		{"empty list", "base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  batch: []\n", "empty list"},
		{"too many", "base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  batch: [1,2,3,4,5,6,7,8,9,10]\n  seq: [1,2,3,4,5,6,7,8,9,10]\n  model: [a,b,c,d,e,f,g,h,i,j]\n  precision: [fp32, bf16, fp16, bf16-pure]\n  attention: [math, flash]\n  checkpointing: [none, full]\n", "more than 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGrid([]byte(tt.src), "g.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestGridExpandErrors(t *testing.T) {
	// A base without seq is fine until a combination lacks it.
	g, err := ParseGrid([]byte("name: g\nbase:\n  model: gpt2\naxes:\n  batch: [1, 2]\n"), "g.yaml")
	if err != nil {
		t.Fatalf("ParseGrid: %v", err)
	}
	_, err = g.Expand()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "base.seq" || fe.Line != 2 {
		t.Errorf("got %v, want a field error on base.seq at line 2", err)
	}
	g, err = ParseGrid([]byte("specs: [missing.yaml]\n"), filepath.Join(t.TempDir(), "g.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Expand(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing spec file: got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func FuzzParseGrid(f *testing.F) {
	f.Add([]byte("name: g\nbase: {model: gpt2, batch: 1, seq: 8}\naxes:\n  batch: [1, 2]\n  precision: [fp32, bf16]\n"))
	f.Add([]byte("specs:\n  - a.yaml\n  - b/*.yaml\n"))
	f.Add([]byte("base: x.yaml\naxes:\n  model: [gpt2, {family: gpt2, layers: 1, hidden: 8, heads: 1, vocab: 4}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGrid(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if g.Base != nil && g.BaseFile == "" && len(g.Specs) == 0 {
			// An inline base expands without reading files: it must not panic.
			specs, err := g.Expand()
			if err == nil && len(specs) != g.Axes.size() {
				t.Fatalf("got %d specs, want %d", len(specs), g.Axes.size())
			}
		}
	})
}
