package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/scenarios/torchtest"
)

// needTorch skips (or, when CI=true, fails) unless Python() has torch.
func needTorch(t *testing.T) {
	t.Helper()
	torchtest.Need(t, Python())
}

type scriptResult struct {
	Job        int      `json:"job"`
	Params     int64    `json:"params"`
	SavedBytes []uint64 `json:"saved_bytes"`
	Attention  string   `json:"attention"`
}

// runJobs runs train.py --jobs on jobs in one Python process and returns
// one result per job.
func runJobs(t *testing.T, jobs []TrainJob) []scriptResult {
	t.Helper()
	lines := runJobLines(t, jobs)
	res := make([]scriptResult, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal(l, &res[i]); err != nil {
			t.Fatalf("train.py printed %s: %v", l, err)
		}
	}
	return res
}

// runJobLines runs train.py --jobs on jobs in one Python process and
// returns its output line of each job.
func runJobLines(t *testing.T, jobs []TrainJob) [][]byte {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "jobs.json")
	if err := WriteJobs(path, jobs); err != nil {
		t.Fatal(err)
	}
	argv, err := TrainJobsCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "MEMVAL_EVENTS="+filepath.Join(dir, "events.jsonl"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("train.py: %v\n%s", err, stderr.String())
	}
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		res = append(res, append([]byte(nil), sc.Bytes()...))
	}
	if len(res) != len(jobs) {
		t.Fatalf("got %d results, want %d\n%s", len(res), len(jobs), stderr.String())
	}
	return res
}

func normalized(t *testing.T, a model.Arch) model.Arch {
	t.Helper()
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTrainScriptMatchesAnalytic runs small models through train.py on the
// CPU and checks its parameter count against model.Params and its
// saved-for-backward bytes against analytic.SavedActivations.
func TestTrainScriptMatchesAnalytic(t *testing.T) {
	needTorch(t)
	small := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	long := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 32, Heads: 2, Vocab: 500, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		name string
		a    model.Arch
		w    model.Workload
	}
	var cases []tc
	for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
		for _, p := range []float64{0, 0.1} {
			for _, ck := range []model.Checkpointing{model.NoCheckpointing, model.FullCheckpointing, model.SelectiveCheckpointing} {
				cases = append(cases, tc{"small", small, model.Workload{Batch: 2, Seq: 32, Precision: prec, Dropout: p, Checkpointing: ck}})
			}
		}
	}
	cases = append(cases,
		tc{"S>H", long, model.Workload{Batch: 2, Seq: 96, Dropout: 0.1}},
		tc{"S>H bf16", long, model.Workload{Batch: 1, Seq: 96, Precision: model.BF16Mixed}},
		tc{"flash (CPU SDPA)", small, model.Workload{Batch: 2, Seq: 32, Attention: model.FlashAttention}},
		tc{"llama", llama, model.Workload{Batch: 2, Seq: 32}},
		tc{"llama bf16", llama, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed}},
		tc{"llama bf16-pure", llama, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Pure}},
		tc{"llama bf16-pure full", llama, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Pure, Checkpointing: model.FullCheckpointing}},
		tc{"flash (CPU SDPA) bf16", small, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Attention: model.FlashAttention}},
		tc{"llama flash (CPU SDPA)", llama, model.Workload{Batch: 2, Seq: 32, Attention: model.FlashAttention}},
		tc{"llama flash (CPU SDPA) bf16", llama, model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Attention: model.FlashAttention}},
	)
	jobs := make([]TrainJob, len(cases))
	for i, c := range cases {
		c.w.Backend = model.CPU
		cases[i].w = c.w
		jobs[i] = TrainJob{Arch: c.a, Workload: c.w, Steps: 1, Seed: 1, Device: "cpu", MeasureSaved: true, Impl: "hand"}
	}
	res := runJobs(t, jobs)
	for i, c := range cases {
		pb, err := model.Params(c.a)
		if err != nil {
			t.Fatal(err)
		}
		if res[i].Params != pb.Total {
			t.Errorf("%s %+v: script params %d, want model.Params %d", c.name, c.w, res[i].Params, pb.Total)
		}
		terms, err := analytic.SavedActivations(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		want := analytic.SavedBytes(terms)
		if len(res[i].SavedBytes) != 1 {
			t.Fatalf("%s: got %d saved figures, want 1", c.name, len(res[i].SavedBytes))
		}
		got := res[i].SavedBytes[0]
		logFormulaRatios(t, c.name, c.a, c.w, got)
		if math.Abs(float64(got)-float64(want)) > 0.001*float64(want) {
			t.Errorf("%s %s p=%g %s: saved %d bytes, want analytic %d (%.3f%%)", c.name, c.w.Precision, c.w.Dropout,
				c.w.Checkpointing, got, want, 100*(float64(got)/float64(want)-1))
		}
	}
}

// TestTrainScriptStarterParams builds every starter spec's model on
// PyTorch's meta device (nothing allocated) and checks that the script's
// parameter count equals model.Params, as issue 4 asks.
func TestTrainScriptStarterParams(t *testing.T) {
	needTorch(t)
	paths, err := filepath.Glob("*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no starter specs found (err %v)", err)
	}
	jobs := make([]TrainJob, len(paths))
	want := make([]int64, len(paths))
	for i, p := range paths {
		spec, err := LoadSpec(p)
		if err != nil {
			t.Fatal(err)
		}
		a, w, err := spec.Resolve()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		pb, err := model.Params(a)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = pb.Total
		jobs[i] = TrainJob{Arch: a, Workload: model.Workload{Batch: 1, Seq: 8, Precision: w.Precision}, Device: "cpu", ParamsOnly: true, Impl: "hand"}
	}
	for i, r := range runJobs(t, jobs) {
		if r.Params != want[i] {
			t.Errorf("%s: script params %d, want model.Params %d", paths[i], r.Params, want[i])
		}
	}
}

// TestTrainScriptEvents checks the side channel of one run.
func TestTrainScriptEvents(t *testing.T) {
	needTorch(t)
	dir := t.TempDir()
	a := normalized(t, model.Arch{Family: "gpt2", Layers: 1, Hidden: 32, Heads: 2, Vocab: 100, MaxPositions: 16})
	job := filepath.Join(dir, "job.json")
	if err := WriteJob(job, TrainJob{Arch: a, Workload: model.Workload{Batch: 1, Seq: 8, Optimizer: model.SGDMomentum},
		Steps: 2, Warmup: 1, Device: "cpu", MeasureSaved: true}); err != nil {
		t.Fatal(err)
	}
	argv, err := TrainCommand(job)
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events.jsonl")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "MEMVAL_EVENTS="+events)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train.py: %v\n%s", err, out)
	}
	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	saved := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct {
			V     int    `json:"v"`
			T     int64  `json:"t"`
			Kind  string `json:"kind"`
			Phase string `json:"phase"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev.V != 1 || ev.T <= 0 {
			t.Errorf("event %q: got v %d t %d, want v 1 and a positive time", line, ev.V, ev.T)
		}
		if ev.Kind == "saved" {
			saved++
		}
		kinds = append(kinds, ev.Kind+":"+ev.Phase)
	}
	got := strings.Join(kinds, " ")
	if !strings.HasPrefix(got, "phase:start info: phase:model_on_device phase:step_start") || !strings.HasSuffix(got, "phase:done") || saved != 3 {
		t.Errorf("events: got %s, want start, info, model_on_device, 3 steps with saved events, done", got)
	}
}

// TestTrainScriptErrors: an unsupported family and a bad file exit 2.
func TestTrainScriptErrors(t *testing.T) {
	needTorch(t)
	dir := t.TempDir()
	job := filepath.Join(dir, "job.json")
	bad := TrainJob{Arch: model.Arch{Family: "bert", Layers: 1, Hidden: 8, Heads: 2, Vocab: 10}, Workload: model.Workload{Batch: 1, Seq: 4}, Device: "cpu"}
	if err := WriteJob(job, bad); err != nil {
		t.Fatal(err)
	}
	argv, _ := TrainCommand(job)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "arch.family 'bert' is not supported") {
		t.Errorf("bert job: got %v, %q; want exit 2 naming arch.family", err, out)
	}
}

// TestTrainScriptNoTorch runs the script with a python3 that lacks torch.
func TestTrainScriptNoTorch(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH")
	}
	if exec.Command(py, "-c", "import torch").Run() == nil {
		t.Skip("python3 on PATH has torch; no torch-less interpreter to test with")
	}
	dir := t.TempDir()
	job := filepath.Join(dir, "job.json")
	if err := WriteJob(job, TrainJob{Arch: model.Arch{Family: "gpt2"}, Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PythonEnv, py)
	argv, err := TrainCommand(job)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("got %v, want exit status 2", err)
	}
	if want := "memval: scenarios/train.py needs PyTorch: install python3-torch or set MEMVAL_PYTHON"; !strings.Contains(string(out), want) {
		t.Errorf("got %q, want it to contain %q", out, want)
	}
}

func TestWriteJobRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.json")
	j := TrainJob{Arch: model.Arch{Family: "gpt2", Layers: 2}, Workload: model.Workload{Batch: 3, Seq: 7, Precision: model.BF16Mixed},
		Steps: 4, Warmup: 1, Seed: 9, MeasureSaved: true}
	if err := WriteJob(path, j); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"arch", "workload", "steps", "warmup", "seed", "device", "measure_saved"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("job JSON: got no %q key, want one (train.py reads it)", k)
		}
	}
	var back TrainJob
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	j.Device = "auto"
	if back.Device != "auto" || back.Steps != 4 || back.Workload != j.Workload || back.Arch.Layers != 2 {
		t.Errorf("round trip: got %+v, want %+v", back, j)
	}
	if err := WriteJob(path, TrainJob{Arch: model.Arch{Family: "gpt2"}, Device: "tpu"}); err == nil {
		t.Error("device tpu: got no error, want one")
	}
}

func TestPythonAndCommand(t *testing.T) {
	t.Setenv(PythonEnv, "")
	if got := Python(); got != "python3" {
		t.Errorf("Python() unset: got %q, want python3", got)
	}
	t.Setenv(PythonEnv, "/opt/py/bin/python3")
	if got := Python(); got != "/opt/py/bin/python3" {
		t.Errorf("Python(): got %q, want the env value", got)
	}
	dir := t.TempDir()
	argv, err := TrainCommand(filepath.Join(dir, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, ScriptName)
	if want := []string{"/opt/py/bin/python3", script, "--job", filepath.Join(dir, "job.json")}; strings.Join(argv, " ") != strings.Join(want, " ") {
		t.Errorf("TrainCommand: got %q, want %q", argv, want)
	}
	data, err := os.ReadFile(script)
	if err != nil || !bytes.Equal(data, TrainScript()) {
		t.Errorf("embedded script not written beside the job: %v", err)
	}
	if p, err := ScriptPath(); err != nil || filepath.Base(p) != "train.py" {
		t.Errorf("ScriptPath from the package folder: got %q, %v; want scenarios/train.py", p, err)
	}
}

// logFormulaRatios logs, for GPT-2-style runs without checkpointing, the
// measured saved bytes against the seed's M_act = L(14E + 4BSS) + 6BSV and
// Korthikanti's L*sbh(34 + 5as/h), the figures README.md reports
// (go test -v -run TestTrainScriptMatchesAnalytic ./scenarios).
func logFormulaRatios(t *testing.T, name string, a model.Arch, w model.Workload, truth uint64) {
	t.Helper()
	if a.Family != "gpt2" || w.Checkpointing != model.NoCheckpointing && w.Checkpointing != "" {
		return
	}
	sum := func(formula string, terms ...string) float64 {
		e, err := analytic.Predict(formula, a, w)
		if err != nil {
			t.Fatalf("%s: %v", formula, err)
		}
		var b float64
		for _, n := range terms {
			term, ok := e.Term(n)
			if !ok {
				t.Fatalf("%s has no term %q", formula, n)
			}
			b += float64(term.Bytes)
		}
		return b
	}
	seed := sum("seed", "layer_activations", "attention_matrix", "logits")
	korth := sum("korthikanti", "layer_activations", "attention_scores")
	t.Logf("%-8s L%d H%d h%d V%d B%d S%d %-9s dropout %.1f: saved %d B = %.2fx seed M_act, %.2fx Korthikanti",
		name, a.Layers, a.Hidden, a.Heads, a.Vocab, w.Batch, w.Seq, w.Precision, w.Dropout,
		truth, float64(truth)/seed, float64(truth)/korth)
}
