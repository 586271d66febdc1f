package sim

import (
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
)

// Architectures written out by hand (the simulator must not depend on
// analytic's presets or parser either).
var (
	gpt2Arch = model.Arch{Name: "gpt2", Family: "gpt2", Layers: 12, Hidden: 768, Heads: 12, FFN: 3072, Vocab: 50257,
		MaxPositions: 1024, Norm: model.LayerNorm, FinalNorm: true, NormsPerLayer: 2,
		QKVBias: true, OutBias: true, MLPBias: true, TiedHead: true, Act: "gelu_new"}
	llama2Arch = model.Arch{Name: "llama-2-7b", Family: "llama", Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 32, FFN: 11008,
		Vocab: 32000, Norm: model.RMSNorm, FinalNorm: true, NormsPerLayer: 2, GatedMLP: true, Act: "silu"}
)

// TestSimModelParams: the simulator's own tensor list adds up to the
// published parameter counts (analytic/model/testdata/hf-configs/expected.tsv).
func TestSimModelParams(t *testing.T) {
	gpt2Medium := gpt2Arch
	gpt2Medium.Layers, gpt2Medium.Hidden, gpt2Medium.Heads, gpt2Medium.FFN = 24, 1024, 16, 4096
	llama3 := llama2Arch
	llama3.KVHeads, llama3.FFN, llama3.Vocab = 8, 14336, 128256
	mistral := llama2Arch
	mistral.Family, mistral.KVHeads, mistral.FFN = "mistral", 8, 14336
	for _, tc := range []struct {
		arch model.Arch
		want int64
	}{
		{gpt2Arch, 124439808},
		{gpt2Medium, 354823168},
		{llama2Arch, 6738415616},
		{llama3, 8030261248},
		{mistral, 7241732096},
		{model.Arch{Family: "gpt_neox", Layers: 12, Hidden: 768, Heads: 12, FFN: 3072, Vocab: 50304,
			Norm: model.LayerNorm, FinalNorm: true, NormsPerLayer: 2, QKVBias: true, OutBias: true, MLPBias: true}, 162322944},
		{model.Arch{Family: "opt", Layers: 12, Hidden: 768, Heads: 12, FFN: 3072, Vocab: 50272, MaxPositions: 2048, PositionOffset: 2,
			Norm: model.LayerNorm, FinalNorm: true, NormsPerLayer: 2, QKVBias: true, OutBias: true, MLPBias: true, TiedHead: true}, 125239296},
		{model.Arch{Family: "bert", Layers: 12, Hidden: 768, Heads: 12, FFN: 3072, Vocab: 30522, MaxPositions: 512, TokenTypes: 2,
			Norm: model.LayerNorm, EmbedNorm: true, NormsPerLayer: 2, QKVBias: true, OutBias: true, MLPBias: true, NoHead: true, Pooler: true}, 109482240},
		// Qwen3-8B (per-head q/k RMSNorms), OLMo-2 7B (whole-projection q/k
		// norms) and Qwen1.5-MoE-A2.7B (60 routed experts, a gated shared
		// expert), as their configs give them.
		{model.Arch{Family: "qwen3", Layers: 36, Hidden: 4096, Heads: 32, KVHeads: 8, HeadDim: 128, FFN: 12288, Vocab: 151936,
			Norm: model.RMSNorm, FinalNorm: true, NormsPerLayer: 2, GatedMLP: true, Act: "silu", QKNorm: model.QKNormHead}, 8190735360},
		{model.Arch{Family: "olmo2", Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 32, HeadDim: 128, FFN: 11008, Vocab: 100352,
			Norm: model.RMSNorm, FinalNorm: true, NormsPerLayer: 2, GatedMLP: true, Act: "silu", QKNorm: model.QKNormFull}, 7298617344},
		{model.Arch{Family: "qwen2_moe", Layers: 24, Hidden: 2048, Heads: 16, KVHeads: 16, HeadDim: 128, FFN: 1408, Vocab: 151936,
			Norm: model.RMSNorm, FinalNorm: true, NormsPerLayer: 2, QKVBias: true, GatedMLP: true, Act: "silu",
			Experts: 60, ExpertsPerToken: 4, SharedFFN: 5632, SharedExpertGate: true}, 14315784192},
	} {
		m, err := newSimModel(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.numParams(); got != tc.want {
			t.Errorf("%s %d layers: got %d parameters, want %d", tc.arch.Family, tc.arch.Layers, got, tc.want)
		}
	}
}

// TestSimImportsNoFormulas: the simulator's figures are derived
// independently of the formulas it is compared with. The compiler keeps
// that so long as no package the simulator builds on imports analytic;
// this test says so by name when one starts to.
func TestSimImportsNoFormulas(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", "-test=false", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list -deps listed %d packages, want the simulator's dependencies: %q", len(deps), out)
	}
	for _, d := range deps {
		if d == "github.com/memval/memval/analytic" {
			t.Errorf("profiler/sim depends on %s (the formulas); it may use analytic/model only", d)
		}
	}
}

// fakeClock is a settable CLOCK_MONOTONIC.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64 { return c.ns }

func newTestSim(t testing.TB, cfg Config) (*Device, *fakeClock) {
	t.Helper()
	clk := &fakeClock{ns: 1_000_000_000}
	cfg.Clock = clk.now
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func gpt2Workload() model.Workload {
	return model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Optimizer: model.AdamW, Attention: model.FlashAttention}
}

func TestSimGPUsAndVersions(t *testing.T) {
	s, _ := newTestSim(t, Config{})
	defer s.Close()
	gpus, err := s.GPUs()
	if err != nil || len(gpus) != 8 {
		t.Fatalf("got %d GPUs (%v), want 8", len(gpus), err)
	}
	for _, g := range gpus {
		if g.Name != "NVIDIA H100 80GB HBM3" || g.TotalBytes != 80<<30 {
			t.Errorf("got %+v, want an H100 80GB HBM3 of 80 GiB", g)
		}
	}
	if v := s.Versions(); v.CUDA != "12.4" || v.Driver != "550.54.15" {
		t.Errorf("got versions %+v", v)
	}
	if s.Kind() != "sim" {
		t.Errorf("got kind %q, want sim", s.Kind())
	}
	m, err := s.Memory(0)
	if err != nil || m.InfoVersion != 2 || m.Used != 0 || m.Reserved != s.IdleUsedBytes() {
		t.Errorf("idle: got %+v, %v; want v2, used 0, reserved the idle %d", m, err, s.IdleUsedBytes())
	}
	if done, _, _ := s.Finished(0); done {
		t.Error("finished before Start")
	}
	s.Start(5)
	if done, code, oom := s.Finished(5); !done || code != 0 || oom {
		t.Errorf("idle node after Start: got %v %d %v, want finished, 0, no OOM", done, code, oom)
	}
}

func TestSimDeterministic(t *testing.T) {
	cfg := Config{Arch: gpt2Arch, Workload: gpt2Workload(), Seed: 42}
	a, _ := newTestSim(t, cfg)
	b, _ := newTestSim(t, cfg)
	if !reflect.DeepEqual(a.plan, b.plan) || a.ctx != b.ctx || a.idle != b.idle {
		t.Error("same seed gave different timelines")
	}
	ga, _ := a.GPUs()
	gb, _ := b.GPUs()
	if !reflect.DeepEqual(ga, gb) {
		t.Error("same seed gave different UUIDs")
	}
	cfg.Seed = 43
	c, _ := newTestSim(t, cfg)
	if a.ctx == c.ctx && reflect.DeepEqual(a.plan.events, c.plan.events) {
		t.Error("different seeds gave the same context and events")
	}
}

// TestSimTimeline plays a GPT-2 run on a fake clock and checks what the
// sampler and the runner see.
func TestSimTimeline(t *testing.T) {
	s, clk := newTestSim(t, Config{Arch: gpt2Arch, Workload: gpt2Workload(), Steps: 4, Seed: 1, GPU: 2})
	start := clk.ns
	s.Start(start)
	if s.Duration() <= 0 || s.Duration() > time.Second {
		t.Fatalf("got duration %v, want a fraction of a second", s.Duration())
	}
	var events []profiler.Event
	var peak uint64
	var sawProcess bool
	for clk.ns = start; clk.ns < start+int64(s.Duration())+int64(time.Millisecond); clk.ns += int64(100 * time.Microsecond) {
		m, err := s.Memory(2)
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, m.Used)
		if other, _ := s.Memory(0); other.Used != 0 {
			t.Fatalf("gpu 0 shows %d used; the process runs on gpu 2", other.Used)
		}
		ps, err := s.Processes(2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 {
			sawProcess = true
			if ps[0].PID != 31337 || ps[0].Used != m.Used {
				t.Fatalf("got process %+v with device used %d, want pid 31337 using all of it", ps[0], m.Used)
			}
		}
		events = append(events, s.Events(clk.ns)...)
	}
	if !sawProcess {
		t.Error("the process never appeared in Processes")
	}
	done, code, oom := s.Finished(clk.ns)
	if !done || code != 0 || oom {
		t.Fatalf("got finished %v exit %d oom %v, want done, 0, false", done, code, oom)
	}
	if m, _ := s.Memory(2); m.Used != 0 {
		t.Errorf("after exit: got used %d, want 0", m.Used)
	}
	var kinds []string
	for i, e := range events {
		kinds = append(kinds, e.Kind+":"+e.Phase)
		if i > 0 && e.T < events[i-1].T {
			t.Errorf("event %d goes back in time", i)
		}
		if e.T < start {
			t.Errorf("event %d at %d, before Start %d", i, e.T, start)
		}
	}
	want := "info: phase:start phase:model_on_device"
	for k := 0; k < 4; k++ {
		want += " phase:step_start saved: phase:step_end"
	}
	want += " phase:done"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("got events\n%s\nwant\n%s", got, want)
	}
	if p := events[0].Data["params"]; p != float64(124439808) {
		t.Errorf("info params: got %v, want 124439808", p)
	}
	// Between steps (after zero_grad) only weights, AdamW states and the
	// cuBLAS workspace remain: 12 bytes per parameter plus rounding.
	n := uint64(124439808)
	end := events[len(events)-2] // last step_end
	if a := *end.Allocated; a < 12*n || a > 12*n+64<<20 {
		t.Errorf("steady allocated: got %d, want 12N = %d plus at most 64 MiB", a, 12*n)
	}
	if *end.Reserved < *end.Allocated {
		t.Errorf("reserved %d < allocated %d", *end.Reserved, *end.Allocated)
	}
	_, peakReserved := s.Peaks()
	if peak != s.ContextBytes()+peakReserved {
		t.Errorf("device peak: got %d, want context %d + peak reserved %d", peak, s.ContextBytes(), peakReserved)
	}
	if saved := *events[4].SavedBytes; saved < 1<<30 || saved > 40<<30 {
		t.Errorf("saved bytes: got %d, want a few GiB for GPT-2 at B=8, S=1024", saved)
	}
}

// TestSimWorkloadOrdering: the simulated peaks move the way the physics
// says: flash < math attention, bf16 autocast < fp32, checkpointing < none.
func TestSimWorkloadOrdering(t *testing.T) {
	peak := func(w model.Workload) uint64 {
		s, _ := newTestSim(t, Config{Arch: gpt2Arch, Workload: w, Steps: 2})
		_, r := s.Peaks()
		return r
	}
	base := model.Workload{Batch: 4, Seq: 1024, Precision: model.FP32, Dropout: 0.1}
	with := func(f func(*model.Workload)) model.Workload { w := base; f(&w); return w }
	math := peak(base)
	for _, tc := range []struct {
		name string
		w    model.Workload
	}{
		{"flash", with(func(w *model.Workload) { w.Attention = model.FlashAttention })},
		{"bf16 autocast", with(func(w *model.Workload) { w.Precision = model.BF16Mixed })},
		{"bf16 pure", with(func(w *model.Workload) { w.Precision = model.BF16Pure })},
		{"full checkpointing", with(func(w *model.Workload) { w.Checkpointing = model.FullCheckpointing })},
		{"selective checkpointing", with(func(w *model.Workload) { w.Checkpointing = model.SelectiveCheckpointing })},
		{"no dropout", with(func(w *model.Workload) { w.Dropout = 0 })},
		{"sgd", with(func(w *model.Workload) { w.Optimizer = model.SGD })},
		{"inference", with(func(w *model.Workload) { w.Inference = true })},
	} {
		if got := peak(tc.w); got >= math {
			t.Errorf("%s: got peak reserved %d, want below the fp32 math-attention peak %d", tc.name, got, math)
		}
	}
	if b2 := peak(with(func(w *model.Workload) { w.Batch = 8 })); b2 <= math {
		t.Errorf("batch 8: got peak %d, want above batch 4's %d", b2, math)
	}
}

func TestSimOOM(t *testing.T) {
	s, clk := newTestSim(t, Config{Arch: llama2Arch, Workload: model.Workload{Batch: 8, Seq: 4096, Precision: model.FP32}, Seed: 3})
	start := clk.ns
	s.Start(start)
	clk.ns = start + int64(s.Duration())
	done, code, oom := s.Finished(clk.ns)
	if !done || code != 1 || !oom {
		t.Fatalf("got done %v exit %d oom %v, want done, 1, true", done, code, oom)
	}
	evs := s.Events(clk.ns)
	last := evs[len(evs)-1]
	if last.Kind != "error" || !last.OOM || !strings.Contains(last.Message, "out of memory") {
		t.Errorf("got last event %+v, want an OOM error", last)
	}
	if _, r := s.Peaks(); r > simTotal-s.ContextBytes()-s.IdleUsedBytes() {
		t.Errorf("peak reserved %d exceeds what the GPU has", r)
	}
	// Just before the error the device is nearly full.
	clk.ns = last.T - 1
	if m, _ := s.Memory(0); m.Used+m.Reserved < simTotal/2 {
		t.Errorf("before the OOM: got %d used, want the GPU well filled", m.Used)
	}
}

func TestSimMemoryV1(t *testing.T) {
	s, clk := newTestSim(t, Config{Arch: gpt2Arch, Workload: gpt2Workload(), NoMemoryV2: true})
	s.Start(clk.ns)
	clk.ns += int64(s.Duration() / 2)
	m, err := s.Memory(0)
	if err != nil || m.InfoVersion != 1 || m.Reserved != 0 {
		t.Fatalf("got %+v, %v; want a v1 reading", m, err)
	}
	ps, _ := s.Processes(0)
	if len(ps) != 1 || m.Used != ps[0].Used+s.IdleUsedBytes() {
		t.Errorf("v1 used %d, want the process's %v plus the idle %d", m.Used, ps, s.IdleUsedBytes())
	}
}

func TestSimMemoryOverride(t *testing.T) {
	var seen []int64
	s, clk := newTestSim(t, Config{Arch: gpt2Arch, Workload: gpt2Workload(), MemoryOverride: func(gpu int, since int64, m profiler.Memory) (profiler.Memory, error) {
		seen = append(seen, since)
		if since > 0 && since < int64(10*time.Millisecond) {
			return profiler.Memory{}, profiler.ErrGPULost
		}
		return m, nil
	}})
	if _, err := s.Memory(0); err != nil {
		t.Fatal(err)
	}
	s.Start(clk.ns)
	clk.ns += int64(5 * time.Millisecond)
	if _, err := s.Memory(0); !errors.Is(err, profiler.ErrGPULost) {
		t.Errorf("got %v, want ErrGPULost through the mock driver", err)
	}
	clk.ns += int64(10 * time.Millisecond)
	if _, err := s.Memory(0); err != nil {
		t.Errorf("after the gap: got %v", err)
	}
	// Opening reads every GPU's total before Start (-1), then two readings.
	n := len(seen)
	if n < 3 || seen[n-3] != -1 || seen[n-2] != int64(5*time.Millisecond) || seen[n-1] != int64(15*time.Millisecond) {
		t.Errorf("override saw times %v, want -1 ... -1 5000000 15000000", seen)
	}
}

func TestSimBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"gpu", Config{GPU: 8}, "gpu 8 does not exist"},
		{"warmup", Config{Steps: 2, Warmup: 3}, "warmup (3) exceeds steps (2)"},
		{"batch", Config{Arch: gpt2Arch}, "batch and seq"},
		{"heads", Config{Arch: model.Arch{Layers: 2, Hidden: 8}}, "heads"},
		{"tp", Config{Arch: gpt2Arch, Workload: model.Workload{Batch: 1, Seq: 8, TP: 2}}, "not simulated"},
		{"precision", Config{Arch: gpt2Arch, Workload: model.Workload{Batch: 1, Seq: 8, Precision: "int4"}}, `precision "int4"`},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// BenchmarkSimGPT2 builds and plays a 10-step GPT-2 124M scenario (the
// timeline is computed once; playing is reading it at 10 kHz).
func BenchmarkSimGPT2(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s, clk := newTestSim(b, Config{Arch: gpt2Arch, Workload: gpt2Workload(), Steps: 10})
		s.Start(clk.ns)
		end := clk.ns + int64(s.Duration())
		for ; clk.ns <= end; clk.ns += int64(100 * time.Microsecond) {
			if _, err := s.Memory(0); err != nil {
				b.Fatal(err)
			}
			s.Events(clk.ns)
		}
		if done, _, _ := s.Finished(clk.ns); !done {
			b.Fatal("not finished")
		}
	}
}

// BenchmarkSimMemory is one Memory query mid-run (the sampler needs 10 kHz).
func BenchmarkSimMemory(b *testing.B) {
	s, clk := newTestSim(b, Config{Arch: gpt2Arch, Workload: gpt2Workload(), Steps: 10})
	s.Start(clk.ns)
	clk.ns += int64(s.Duration() / 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Memory(0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSimConcurrent: the sampler reads memory while the runner polls events
// and Finished (run with -race).
func TestSimConcurrent(t *testing.T) {
	s, err := New(Config{Arch: gpt2Arch, Workload: gpt2Workload(), Steps: 2, StepDuration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(profiler.MonotonicNS())
	done := make(chan int)
	go func() {
		n := 0
		for {
			if fin, _, _ := s.Finished(profiler.MonotonicNS()); fin {
				break
			}
			n += len(s.Events(profiler.MonotonicNS()))
		}
		done <- n + len(s.Events(profiler.MonotonicNS()))
	}()
	for {
		if _, err := s.Memory(0); err != nil {
			t.Fatal(err)
		}
		if fin, _, _ := s.Finished(profiler.MonotonicNS()); fin {
			break
		}
	}
	if n := <-done; n != len(s.plan.events) {
		t.Errorf("got %d events, want each of the %d once", n, len(s.plan.events))
	}
}
