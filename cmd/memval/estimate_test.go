package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/estimate"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestEstimateFlagParsing(t *testing.T) {
	cmd := newEstimateCmd(streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	err := cmd.ParseFlags([]string{"--model", "gpt2", "--batch", "8", "--seq", "512", "--precision", "bf16",
		"--optimizer", "sgd", "--zero", "2", "--dp", "4", "--tp", "2", "--sp", "--formula", "all",
		"--budget", "24GiB", "--max-batch", "--decimal", "--json", "--dropout", "0.2"})
	if err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	for name, want := range map[string]string{"model": "gpt2", "batch": "8", "seq": "512", "precision": "bf16",
		"optimizer": "sgd", "zero": "2", "dp": "4", "tp": "2", "sp": "true", "formula": "all", "budget": "24GiB",
		"max-batch": "true", "decimal": "true", "json": "true", "dropout": "0.2", "checkpointing": "none", "attention": "math"} {
		if got := f.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s: got %q, want %q", name, got, want)
		}
	}
}

func TestEstimateHuman(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "gpt2", "--batch", "8", "--seq", "1024", "--precision", "bf16", "--gpu", "h100-80gb")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"formula breakdown", "cuda_context", "500.0 MiB", "peak", "fits on h100-80gb (79.6 GiB): yes,", "GiB free"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "estimate", "--model", "llama-2-7b", "--batch", "4", "--seq", "4096", "--precision", "bf16", "--gpu", "l4", "--formula", "korthikanti", "--decimal")
	if code != 0 || !strings.Contains(out, "fits on l4 (24.2 GB): no,") || !strings.Contains(out, "GB short") {
		t.Errorf("l4: got exit %d, output\n%s", code, out)
	}
}

func TestEstimateJSONGolden(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "gpt2", "--batch", "8", "--seq", "1024", "--precision", "bf16",
		"--formula", "korthikanti", "--gpu", "h100-80gb", "--json")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	golden := filepath.Join("testdata", "estimate_gpt2_korthikanti.json")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("--json output differs from %s (run go test -update after checking):\n%s", golden, out)
	}
	var rep struct {
		Schema    int                 `json:"schema"`
		Model     map[string]any      `json:"model"`
		Estimates []analytic.Estimate `json:"estimates"`
		GPU       estimate.GPU        `json:"gpu"`
		Fits      *bool               `json:"fits"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != 1 || rep.Model["params"] != float64(124439808) || len(rep.Estimates) != 1 ||
		rep.GPU.Name != "h100-80gb" || rep.GPU.TotalBytes != 81559<<20 || rep.Fits == nil || !*rep.Fits {
		t.Errorf("schema fields: got %+v", rep)
	}
}

func TestEstimateMaxBatch(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "gpt2", "--seq", "1024", "--precision", "bf16",
		"--formula", "korthikanti", "--budget", "24GiB", "--max-batch", "--json")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	var rep estimate.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.MaxBatch == nil || *rep.MaxBatch != 18 {
		t.Errorf("max batch: got %v, want 18", rep.MaxBatch)
	}
	code, out, _ = runCLI(t, "estimate", "--model", "llama-2-7b", "--formula", "all", "--gpu", "mi300x", "--max-batch")
	if code != 0 || !strings.Contains(out, "max batch on mi300x") || !strings.Contains(out, "not bounded") {
		t.Errorf("mi300x: got exit %d, output\n%s", code, out)
	}
	code, out, _ = runCLI(t, "estimate", "--model", "gpt2", "--formula", "korthikanti", "--gpu", "h100", "--max-seq")
	if code != 0 || !strings.Contains(out, "max seq on h100-80gb (79.6 GiB): 1024") {
		t.Errorf("max seq: got exit %d, output\n%s", code, out)
	}
}

func TestEstimateInferenceAll(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "llama-3-8b", "--batch", "2", "--seq", "8192", "--inference",
		"--precision", "bf16-pure", "--formula", "all")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"kv_cache", "skipped: korthikanti", "summary"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestEstimateBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--model", "gpt5"}, "gpt2"},
		{[]string{"--model", "gpt2", "--precision", "fp8"}, "--precision"},
		{[]string{"--model", "gpt2", "--optimizer", "lamb"}, "sgd-momentum"},
		{[]string{"--model", "gpt2", "--attention", "sparse"}, "flash"},
		{[]string{"--model", "gpt2", "--checkpointing", "some"}, "selective"},
		{[]string{"--model", "gpt2", "--backend", "tpu"}, "--backend"},
		{[]string{"--model", "gpt2", "--formula", "magic"}, "korthikanti"},
		{[]string{"--model", "gpt2", "--batch", "0"}, "--batch"},
		{[]string{"--model", "gpt2", "--seq", "-5"}, "--seq"},
		{[]string{"--model", "gpt2", "--seq", "2048"}, "position table"},
		{[]string{"--model", "gpt2", "--tp", "5"}, "--tp"},
		{[]string{"--model", "gpt2", "--dp", "0"}, "--dp"},
		{[]string{"--model", "gpt2", "--zero", "4"}, "--zero"},
		{[]string{"--model", "gpt2", "--dropout", "1.5"}, "--dropout"},
		{[]string{"--model", "gpt2", "--gpu", "tpu-v5"}, "h100-80gb"},
		{[]string{"--model", "gpt2", "--budget", "80G"}, "ambiguous"},
		{[]string{"--model", "gpt2", "--gpu", "t4", "--budget", "8GiB"}, "exclusive"},
		{[]string{"--model", "gpt2", "--max-batch"}, "--budget"},
		{[]string{"--model", "gpt2", "--budget", "1GiB", "--max-batch", "--max-seq"}, "exclusive"},
		{[]string{"--model", "gpt3", "--batch", "2000000000", "--seq", "2048", "--formula", "korthikanti"}, "overflow"},
		{[]string{"--model", "gpt2", "--formula", "megatron", "--inference"}, "inference"},
		{[]string{"--model", "gpt2", "--calibration", "no/such/file.json"}, "--calibration"},
		{[]string{"--model", "gpt2", "--torch", "2.1+cu121"}, "MAJOR.MINOR"},
		{[]string{"--model", "gpt2", "--torch", "1.6"}, "1.8 or later"},
		{[]string{"--model", "gpt2", "--bitsandbytes", "new"}, "MAJOR.MINOR"},
		{[]string{"--model", "llama-2-7b", "--precision", "bf16", "--lora-rank", "8", "--weights", "nf4", "--bitsandbytes", "0.42"}, "autocast"},
	}
	for _, c := range cases {
		code, _, errw := runCLI(t, append([]string{"estimate"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errw, c.want) {
			t.Errorf("%v: got exit %d, stderr %q; want %d naming %q", c.args, code, errw, exitUsage, c.want)
		}
	}
}

func FuzzEstimateFlags(f *testing.F) {
	f.Add(8, 1024, 1, 1, 0, "bf16", "80GiB", "breakdown", false)
	f.Add(0, -1, 3, 0, 5, "fp8", "1e40TB", "all", true)
	f.Add(1<<30, 1<<30, 12, 1<<20, 3, "bf16-master", "0", "seed", true)
	f.Fuzz(func(t *testing.T, batch, seq, tp, dp, zero int, precision, budget, formula string, inference bool) {
		args := []string{"estimate", "--model", "gpt2", "--batch", strconv.Itoa(batch), "--seq", strconv.Itoa(seq), "--tp", strconv.Itoa(tp),
			"--dp", strconv.Itoa(dp), "--zero", strconv.Itoa(zero), "--precision", precision, "--budget", budget, "--formula", formula}
		if inference {
			args = append(args, "--inference")
		}
		var out, errw bytes.Buffer
		code := run(t.Context(), args, strings.NewReader(""), &out, &errw)
		if code != 0 && code != exitUsage {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errw.String())
		}
		if code == exitUsage && errw.Len() == 0 {
			t.Fatalf("%v: usage error without a message", args)
		}
	})
}

// TestEstimateSeedRules checks the seed's model memory per dtype and its 2x
// and 4x rules on the seed's own example (123,417,600 parameters
// recomputed: fp32 493,670,400 B).
func TestEstimateSeedRules(t *testing.T) {
	code, out, errw := runCLI(t, "estimate", "--model", "seed-example", "--batch", "1", "--seq", "512", "--formula", "seed", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errw)
	}
	var rep estimate.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"fp32": 493670400, "fp16": 246835200, "bf16": 246835200, "int8": 123417600, "int4": 61708800}
	if len(rep.SeedRules) != len(want) {
		t.Fatalf("got %d seed rules, want %d", len(rep.SeedRules), len(want))
	}
	for _, r := range rep.SeedRules {
		if r.ModelBytes != want[r.DType] || r.InferenceBytes != 2*want[r.DType] || r.TrainingBytes != 4*want[r.DType] {
			t.Errorf("%s: got model %d, inference %d, training %d; want %d, 2x, 4x", r.DType, r.ModelBytes, r.InferenceBytes, r.TrainingBytes, want[r.DType])
		}
	}
	code, out, _ = runCLI(t, "estimate", "--model", "gpt2", "--formula", "breakdown", "--json")
	if code != 0 || strings.Contains(out, "seed_rules") {
		t.Errorf("breakdown alone: exit %d, seed_rules present %v; want 0 and absent", code, strings.Contains(out, "seed_rules"))
	}
}
