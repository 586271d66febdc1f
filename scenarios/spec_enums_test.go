package scenarios

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestSpecAcceptsEveryWorkloadValue checks that a spec takes every value
// memval estimate takes (the lists in analytic/model), and resolves it to
// a workload the formulas accept.
func TestSpecAcceptsEveryWorkloadValue(t *testing.T) {
	for _, tc := range []struct {
		field  string
		values []string
		got    func(*Spec) string
	}{
		{"precision", model.Precisions(), func(s *Spec) string { return string(s.Precision) }},
		{"optimizer", model.Optimizers(), func(s *Spec) string { return string(s.Optimizer) }},
		{"attention", model.Attentions(), func(s *Spec) string { return string(s.Attention) }},
		{"checkpointing", model.Checkpointings(), func(s *Spec) string { return string(s.Checkpointing) }},
		{"backend", model.Backends(), func(s *Spec) string { return string(s.Backend) }},
		{"attn_impl", model.AttnImpls(), func(s *Spec) string { return string(s.AttnImpl) }},
	} {
		for _, v := range tc.values {
			src := "model: gpt2\nbatch: 2\nseq: 128\n" + tc.field + ": " + v + "\n"
			s, err := ParseSpec([]byte(src), "s.yaml")
			if err != nil {
				t.Errorf("%s: %s: %v", tc.field, v, err)
				continue
			}
			if got := tc.got(s); got != v {
				t.Errorf("%s: got %q, want %q", tc.field, got, v)
			}
			_, w, err := s.Resolve()
			if err == nil {
				_, err = w.WithDefaults()
			}
			if err != nil {
				t.Errorf("%s %s: resolve: %v", tc.field, v, err)
			}
		}
	}
}

func TestGridAcceptsBF16Master(t *testing.T) {
	g, err := ParseGrid([]byte("base: {model: gpt2, batch: 1, seq: 8}\naxes:\n  precision: [bf16-pure, bf16-master]\n"), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := g.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[1].Precision != model.BF16Master {
		t.Errorf("got %v, want bf16-pure then bf16-master", names(specs))
	}
}

// TestBF16MasterIsRefusedForTorch: train.py keeps no fp32 master weights, so
// a bf16-master job is refused before a process starts, and the script
// itself refuses it with exit 2 (should it learn bf16-master, this test
// says to drop the refusal in TrainJob.Validate).
func TestBF16MasterIsRefusedForTorch(t *testing.T) {
	a, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	job := TrainJob{Arch: a, Workload: model.Workload{Batch: 1, Seq: 8, Precision: model.BF16Master}, Device: "cpu"}
	err = job.Validate()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "precision bf16-master is not supported by train.py") ||
		!strings.Contains(err.Error(), "--device sim") {
		t.Errorf("Validate: got %v, want an ErrInvalid naming precision bf16-master and --device sim", err)
	}

	needTorch(t)
	path := filepath.Join(t.TempDir(), "job.json")
	job.Workload.Precision = model.BF16Pure
	if err := WriteJob(path, job); err != nil {
		t.Fatal(err)
	}
	// Write the refused job past Validate, as an older memval might have.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(`"precision": "bf16-pure"`), []byte(`"precision": "bf16-master"`), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	argv, err := TrainCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "workload.precision 'bf16-master' is not supported") {
		t.Errorf("train.py: got %v, %q; want exit 2 naming workload.precision", err, out)
	}
}
