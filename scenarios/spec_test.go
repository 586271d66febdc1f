package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func TestParseSpecAllFields(t *testing.T) {
	src := `name: full-spec
model:
  preset: gpt2-medium
batch: 8
seq: 512
precision: bf16
optimizer: adamw
dropout: 0.1
checkpointing: selective
attention: sdpa      # an alias of flash
backend: cuda
steps: 7
warmup: 3
tolerance: 15%
formula: seed
seed: 42
expect: fit
`
	s, err := ParseSpec([]byte(src), "full.yaml")
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if s.Name != "full-spec" || s.Model.Preset != "gpt2-medium" || s.Batch != 8 || s.Seq != 512 {
		t.Errorf("got name %q, preset %q, batch %d, seq %d; want full-spec, gpt2-medium, 8, 512", s.Name, s.Model.Preset, s.Batch, s.Seq)
	}
	if s.Precision != model.BF16Mixed || s.Optimizer != model.AdamW || s.Checkpointing != model.SelectiveCheckpointing {
		t.Errorf("got precision %q, optimizer %q, checkpointing %q", s.Precision, s.Optimizer, s.Checkpointing)
	}
	if s.Attention != model.FlashAttention {
		t.Errorf("attention: got %q, want flash (sdpa is its alias)", s.Attention)
	}
	if s.Dropout == nil || *s.Dropout != 0.1 {
		t.Errorf("dropout: got %v, want 0.1", s.Dropout)
	}
	if s.Steps != 7 || s.Warmup != 3 || s.Seed != 42 || s.Formula != "seed" || s.Expect != ExpectFit {
		t.Errorf("got steps %d, warmup %d, seed %d, formula %q, expect %q", s.Steps, s.Warmup, s.Seed, s.Formula, s.Expect)
	}
	if d := s.Tolerance - 0.15; d > 1e-12 || d < -1e-12 {
		t.Errorf("tolerance: got %v, want 0.15", s.Tolerance)
	}
}

func TestParseSpecDefaultsAndNameFromFile(t *testing.T) {
	s, err := ParseSpec([]byte("model: gpt2\nbatch: 2\nseq: 128\n"), "dir/tiny-run.yaml")
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if s.Name != "tiny-run" {
		t.Errorf("name: got %q, want tiny-run (the file's base name)", s.Name)
	}
	if s.StepsOrDefault() != DefaultSteps || s.WarmupOrDefault() != DefaultWarmup ||
		s.ToleranceOrDefault() != DefaultTolerance || s.FormulaOrDefault() != DefaultFormula {
		t.Errorf("defaults: got steps %d, warmup %d, tolerance %v, formula %q",
			s.StepsOrDefault(), s.WarmupOrDefault(), s.ToleranceOrDefault(), s.FormulaOrDefault())
	}
}

func TestParseSpecErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		field     string
		want      string // exact message, or a substring when it starts with "~"
	}{
		{"bad precision", "name: gpt2\nmodel: gpt2\nbatch: 8\nseq: 1024\n\n\nprecision: fp8\n", 7, "precision",
			`gpt2.yaml:7: field precision: "fp8" is not one of fp32, fp16, bf16, bf16-pure, bf16-master`},
		{"unknown key", "model: gpt2\nbatch: 8\nseq: 64\nbatchsize: 4\n", 4, "batchsize", "~unknown field: want one of name, model"},
		{"unknown model key", "model:\n  preset: gpt2\n  layer: 3\nbatch: 1\nseq: 8\n", 3, "model.layer", "~unknown field"},
		{"negative batch", "model: gpt2\nbatch: -1\nseq: 8\n", 2, "batch", "~-1 must be positive"},
		{"text batch", "model: gpt2\nbatch: eight\nseq: 8\n", 2, "batch", `~"eight" is not a whole number`},
		{"list batch", "model: gpt2\nbatch: [1, 2]\nseq: 8\n", 2, "batch", "~want a single value, got a list"},
		{"missing batch", "model: gpt2\nseq: 8\n", 1, "batch", "~missing"},
		{"missing seq", "model: gpt2\nbatch: 8\n", 1, "seq", "~missing"},
		{"missing model", "batch: 1\nseq: 8\n", 1, "model", "~missing"},
		{"two models", "model:\n  preset: gpt2\n  config: x.json\nbatch: 1\nseq: 8\n", 2, "model", "~exactly one of preset, config"},
		{"dims without heads", "model:\n  family: gpt2\n  layers: 2\n  hidden: 64\n  vocab: 100\nbatch: 1\nseq: 8\n", 2, "model.heads", "~missing"},
		{"bad attention", "model: gpt2\nbatch: 1\nseq: 8\nattention: fast\n", 4, "attention", `~"fast" is not one of math, flash, sdpa`},
		{"bad checkpointing", "model: gpt2\nbatch: 1\nseq: 8\ncheckpointing: some\n", 4, "checkpointing", "~is not one of none, full, selective"},
		{"bad dropout", "model: gpt2\nbatch: 1\nseq: 8\ndropout: 1.5\n", 4, "dropout", "~not a probability"},
		{"bad tolerance", "model: gpt2\nbatch: 1\nseq: 8\ntolerance: -3\n", 4, "tolerance", "~not a relative tolerance"},
		{"bad formula", "model: gpt2\nbatch: 1\nseq: 8\nformula: guess\n", 4, "formula", `~"guess" is not one of`},
		{"warmup too long", "model: gpt2\nbatch: 1\nseq: 8\nsteps: 3\nwarmup: 3\n", 1, "warmup", "~make warmup smaller than steps"},
		{"twice", "model: gpt2\nbatch: 1\nbatch: 2\nseq: 8\n", 3, "batch", "~given twice (first on line 2)"},
		{"bad name", "name: ../up\nmodel: gpt2\nbatch: 1\nseq: 8\n", 1, "name", "~not a usable scenario name"},
		{"not a mapping", "- a\n- b\n", 1, "", "~want a YAML mapping"},
		{"bad yaml", "model: gpt2\nbatch: [1\n", 0, "", "~not valid YAML"},
		{"empty", "", 1, "", "~empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.src), "gpt2.yaml")
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want an error that is ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T %v, want a *FieldError", err, err)
			}
			if tt.line != 0 && fe.Line != tt.line {
				t.Errorf("line: got %d, want %d (%v)", fe.Line, tt.line, err)
			}
			if fe.Field != tt.field {
				t.Errorf("field: got %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if sub, ok := strings.CutPrefix(tt.want, "~"); ok {
				if !strings.Contains(err.Error(), sub) || !strings.HasPrefix(err.Error(), "gpt2.yaml:") {
					t.Errorf("got %q, want it to start with gpt2.yaml: and contain %q", err, sub)
				}
			} else if err.Error() != tt.want {
				t.Errorf("got %q, want %q", err, tt.want)
			}
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	s, err := ParseSpec([]byte("model: gpt2\nbatch: 4\nseq: 256\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, w, err := s.Resolve()
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if a.Family != "gpt2" || a.Layers != 12 || a.Hidden != 768 {
		t.Errorf("arch: got %s L%d H%d, want gpt2 L12 H768", a.Family, a.Layers, a.Hidden)
	}
	want := model.Workload{Batch: 4, Seq: 256, Precision: model.FP32, Optimizer: model.AdamW,
		Dropout: a.Dropout, Attention: model.MathAttention, Checkpointing: model.NoCheckpointing, Backend: model.CUDA}
	if w != want {
		t.Errorf("workload: got %+v, want %+v", w, want)
	}
}

func TestResolveExplicitDims(t *testing.T) {
	src := `model:
  family: gpt2
  layers: 2
  hidden: 128
  heads: 4
  vocab: 1000
  seq_max: 256
  tied: false
batch: 2
seq: 256
dropout: 0
`
	s, err := ParseSpec([]byte(src), "dims.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, w, err := s.Resolve()
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if a.TiedHead {
		t.Errorf("tied: got true, want false as the spec says")
	}
	if a.FFN != 512 || a.MaxPositions != 256 || a.HeadDim != 32 {
		t.Errorf("got ffn %d, max positions %d, head dim %d; want 512, 256, 32", a.FFN, a.MaxPositions, a.HeadDim)
	}
	if w.Dropout != 0 {
		t.Errorf("dropout: got %v, want 0", w.Dropout)
	}
	s.Seq = 512
	if _, _, err := s.Resolve(); err == nil || !strings.Contains(err.Error(), "longer than the model's 256 positions") {
		t.Errorf("seq 512 on 256 positions: got %v, want an error naming the 256 positions", err)
	}
}

func TestResolveConfigRelativeToSpec(t *testing.T) {
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join("..", "analytic", "model", "testdata", "hf-configs", "gpt2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "configs", "gpt2.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "from-config.yaml")
	if err := os.WriteFile(path, []byte("model:\n  config: configs/gpt2.json\nbatch: 1\nseq: 64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.Resolve()
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	p, err := model.Params(a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 124439808 {
		t.Errorf("params of gpt2 from its config: got %d, want 124439808", p.Total)
	}
}

func TestLoadSpecMissingFile(t *testing.T) {
	_, err := LoadSpec(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestParseTolerance(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{{"0.1", 0.1, true}, {"10%", 0.1, true}, {" 5 % ", 0.05, true}, {"0", 0, false}, {"-1", 0, false}, {"x", 0, false}, {"1000%", 0, false}}
	for _, tt := range tests {
		got, ok := ParseTolerance(tt.in)
		if ok != tt.ok || (ok && (got-tt.want > 1e-12 || tt.want-got > 1e-12)) {
			t.Errorf("ParseTolerance(%q): got %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func ExampleParseSpec() {
	_, err := ParseSpec([]byte("model: gpt2\nbatch: 8\nseq: 1024\nprecision: fp8\n"), "gpt2.yaml")
	fmt.Println(err)
	// Output: gpt2.yaml:4: field precision: "fp8" is not one of fp32, fp16, bf16, bf16-pure, bf16-master
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte("model: gpt2\nbatch: 8\nseq: 1024\nprecision: bf16\n"))
	f.Add([]byte("model:\n  family: gpt2\n  layers: 2\n  hidden: 64\n  heads: 2\n  vocab: 10\nbatch: 1\nseq: 8\n"))
	f.Add([]byte("a: &x [1, 2]\nb: *x\n"))
	f.Add([]byte("model: {preset: gpt2}\nbatch: 1\nseq: 1\ntolerance: 10%\nattention: sdpa\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if s.Batch <= 0 || s.Seq <= 0 || s.Model == (ModelSpec{}) || !validName(s.Name) {
			t.Fatalf("accepted an incomplete spec: %+v", s)
		}
	})
}

// TestSpecMoEImbalance: moe_imbalance reaches the workload; below 1 it is
// refused naming the field.
func TestSpecMoEImbalance(t *testing.T) {
	s, err := ParseSpec([]byte("model: mixtral-8x7b\nbatch: 1\nseq: 128\nmoe_imbalance: 2.5\n"), "moe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, w, err := s.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if w.MoEImbalance != 2.5 {
		t.Errorf("workload moe_imbalance %v, want 2.5", w.MoEImbalance)
	}
	for _, bad := range []string{"0.5", "-1", "x"} {
		_, err := ParseSpec([]byte("model: mixtral-8x7b\nbatch: 1\nseq: 128\nmoe_imbalance: "+bad+"\n"), "moe.yaml")
		if err == nil || !strings.Contains(err.Error(), "moe_imbalance") {
			t.Errorf("moe_imbalance %s: got %v, want an error naming moe_imbalance", bad, err)
		}
	}
}
