package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
)

// Config describes the simulated H100's workload. The zero value of
// every field but Arch and Workload means the documented default; a zero
// Arch (no layers) gives an idle node with no process, which is enough for
// `memval devices`.
type Config struct {
	// Arch and Workload are the model and the step the simulated process
	// trains. The simulator reads their fields only: it calls nothing in
	// package analytic, so that comparing the two can fail.
	Arch     model.Arch
	Workload model.Workload

	Steps  int   // training steps the process runs; default 10
	Warmup int   // how many of them are warm-up (reported in the info event); default 1
	Seed   int64 // same seed, same timeline
	GPU    int   // which of the node's 8 GPUs the process uses; default 0

	// StepDuration is the simulated wall time of one step; default 20 ms,
	// so a 10-step scenario plays in about 0.3 s (start-up and model
	// loading take 3 more steps' time).
	StepDuration time.Duration
	// ContextBytes is the CUDA context of the process; default about
	// 500 MiB, with a jitter of a few MiB drawn from Seed.
	ContextBytes uint64
	// IdleUsedBytes is what an idle H100 shows as used under NVML's v1
	// query (driver-reserved memory; v2 reports it as Reserved); default
	// about 520 MiB, jittered from Seed.
	IdleUsedBytes uint64
	// PID is the simulated process's PID in Processes; default 31337.
	PID int
	// Ranks, when above 1, plays a torchrun-like job: Ranks processes, rank
	// r on GPU GPU+r with PID PID+r, each running the workload, rank r
	// holding r x RankSkewBytes more (so that ranks are told apart); their
	// environments (Environ) name RANK, LOCAL_RANK and WORLD_SIZE.
	Ranks int
	// NoMemoryV2 makes the mock driver answer FUNCTION_NOT_FOUND to the v2
	// memory query, as an old driver does, so readings come from v1.
	NoMemoryV2 bool

	// Clock returns CLOCK_MONOTONIC nanoseconds; default MonotonicNS. Tests
	// pass a fake clock.
	Clock func() int64
	// MemoryOverride, when set, sees every simulated reading before the mock
	// driver answers with it: gpu, nanoseconds since Start (negative before
	// Start) and the reading in its v2 form (Used without Reserved). It may
	// change the reading, or return an error wrapping ErrGPULost or
	// ErrNotSupported to make the driver answer GPU_IS_LOST or
	// NOT_SUPPORTED.
	MemoryOverride func(gpu int, sinceStartNS int64, m profiler.Memory) (profiler.Memory, error)
}

// simGPUs and simTotal are the DGX H100 of go-nvml's mock: 8 x H100 80GB.
const (
	simGPUs  = 8
	simTotal = 81920 << 20
)

// Device is the simulated H100 node: go-nvml's mock DGX H100 server whose
// memory and process queries are answered by a simulated training process,
// read through the same NVML adapter as a real driver. It implements profiler.Device
// and profiler.Timeline. The timeline is computed once by New; a reading is a
// binary search by time. Safe for concurrent use.
type Device struct {
	profiler.Device // go-nvml's mock H100 through the NVML adapter (plain Go without cgo)
	cfg             Config
	plan            *simPlan // nil: no process
	ctx             uint64
	idle            uint64
	started         atomic.Bool
	startNS         atomic.Int64

	mu        sync.Mutex
	nextEvent int
}

var (
	_ profiler.Device   = (*Device)(nil)
	_ profiler.Timeline = (*Device)(nil)
)

// newSimRand is the simulator's deterministic random source for one stream
// of draws (jitter, UUIDs) from a seed.
func newSimRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6d656d76616c^stream))
}

// New builds the simulated node and plays its process's whole run
// through the allocator model.
func New(cfg Config) (*Device, error) {
	if cfg.Steps < 0 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("sim: steps (%d) and warmup (%d) must not be negative", cfg.Steps, cfg.Warmup)
	}
	if cfg.Steps == 0 {
		cfg.Steps = 10
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 1
	}
	if cfg.Warmup > cfg.Steps {
		return nil, fmt.Errorf("sim: warmup (%d) exceeds steps (%d)", cfg.Warmup, cfg.Steps)
	}
	if cfg.GPU < 0 || cfg.GPU >= simGPUs {
		return nil, fmt.Errorf("sim: gpu %d does not exist: the simulated node has %d (indices 0 to %d)", cfg.GPU, simGPUs, simGPUs-1)
	}
	if cfg.Ranks < 0 || cfg.GPU+max(cfg.Ranks, 1) > simGPUs {
		return nil, fmt.Errorf("sim: %d ranks from gpu %d do not fit the node's %d GPUs: use at most %d", cfg.Ranks, cfg.GPU, simGPUs, simGPUs-cfg.GPU)
	}
	if cfg.StepDuration < 0 {
		return nil, fmt.Errorf("sim: step duration %v must not be negative", cfg.StepDuration)
	}
	if cfg.StepDuration == 0 {
		cfg.StepDuration = 20 * time.Millisecond
	}
	if cfg.PID == 0 {
		cfg.PID = 31337
	}
	if cfg.Clock == nil {
		cfg.Clock = profiler.MonotonicNS
	}
	r := newSimRand(cfg.Seed, 1)
	s := &Device{cfg: cfg, ctx: cfg.ContextBytes, idle: cfg.IdleUsedBytes}
	if s.ctx == 0 {
		s.ctx = 492<<20 + r.Uint64N(17)<<20 // 492 to 508 MiB
	}
	if s.idle == 0 {
		s.idle = 520<<20 + r.Uint64N(9)<<20
	}
	if s.ctx+s.idle >= simTotal {
		return nil, fmt.Errorf("sim: context (%d B) and idle use (%d B) exceed the H100's %d B", s.ctx, s.idle, uint64(simTotal))
	}
	if cfg.Arch.Layers != 0 {
		plan, err := buildSimPlan(cfg, simTotal-s.ctx-s.idle)
		if err != nil {
			return nil, err
		}
		s.plan = plan
	}
	uuids := make([]string, simGPUs)
	for i := range uuids {
		u := r.Uint64()
		v := r.Uint64()
		uuids[i] = fmt.Sprintf("GPU-%08x-%04x-4%03x-%04x-%012x", u>>32, u>>16&0xffff, u&0xfff, v>>48&0x3fff|0x8000, v&0xffffffffffff)
	}
	d, err := profiler.OpenMockH100(profiler.MockH100{Kind: "sim", UUIDs: uuids, NoMemoryV2: cfg.NoMemoryV2,
		Memory: s.mockMemory, Processes: s.mockProcesses})
	if err != nil {
		return nil, err
	}
	s.Device = d
	return s, nil
}

// Kind is "sim".
func (s *Device) Kind() string { return "sim" }

// Params is the simulated model's parameter count, from its own tensor
// list (0 with no process).
func (s *Device) Params() int64 {
	if s.plan == nil {
		return 0
	}
	return s.plan.params
}

// Peaks are the allocator's peak allocated and reserved bytes over the run.
func (s *Device) Peaks() (allocated, reserved uint64) {
	if s.plan == nil {
		return 0, 0
	}
	return s.plan.peakAllocated, s.plan.peakReserved
}

// ContextBytes is the simulated process's CUDA context.
func (s *Device) ContextBytes() uint64 { return s.ctx }

// IdleUsedBytes is what the driver reserves on every GPU.
func (s *Device) IdleUsedBytes() uint64 { return s.idle }

// Duration is the simulated time from Start to the process's exit.
func (s *Device) Duration() time.Duration {
	if s.plan == nil {
		return 0
	}
	return time.Duration(s.plan.exitAt)
}

// Start marks the process's start at startNS (CLOCK_MONOTONIC). Calls after
// the first are ignored.
func (s *Device) Start(startNS int64) {
	if s.started.CompareAndSwap(false, true) {
		s.startNS.Store(startNS)
	}
}

// since is nanoseconds since Start at nowNS, and whether Start was called.
func (s *Device) since(nowNS int64) (int64, bool) {
	if !s.started.Load() {
		return 0, false
	}
	return nowNS - s.startNS.Load(), true
}

// Finished reports whether the simulated process has exited by nowNS, with
// its exit code (1 after an out-of-memory error) and whether it ran out of
// memory. With no process it is finished as soon as it starts.
func (s *Device) Finished(nowNS int64) (done bool, exitCode int, oom bool) {
	off, ok := s.since(nowNS)
	if !ok {
		return false, 0, false
	}
	if s.plan == nil {
		return true, 0, false
	}
	if off < s.plan.exitAt {
		return false, 0, false
	}
	return true, s.plan.exitCode, s.plan.oom
}

// Events returns the side-channel events whose time has come by nowNS and
// that no earlier call returned, with T on the monotonic clock.
func (s *Device) Events(nowNS int64) []profiler.Event {
	off, ok := s.since(nowNS)
	if !ok || s.plan == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.startNS.Load()
	var out []profiler.Event
	for s.nextEvent < len(s.plan.events) && s.plan.events[s.nextEvent].T <= off {
		e := s.plan.events[s.nextEvent]
		e.T += start
		out = append(out, e)
		s.nextEvent++
	}
	return out
}

// reading is the v2 view of gpu at off ns since Start (Used without the
// driver's Reserved), and the process's own use (0 when not running).
func (s *Device) reading(gpu int, off int64, started bool) (profiler.Memory, uint64) {
	m := profiler.Memory{Total: simTotal, Reserved: s.idle, InfoVersion: 2}
	var proc uint64
	rank := gpu - s.cfg.GPU
	if started && s.plan != nil && rank >= 0 && rank < max(s.cfg.Ranks, 1) && off >= s.plan.ctxAt && off < s.plan.exitAt {
		proc = s.ctx + uint64(rank)*RankSkewBytes
		pts := s.plan.points
		if i := sort.Search(len(pts), func(i int) bool { return pts[i].t > off }); i > 0 {
			proc += pts[i-1].reserved
		}
	}
	m.Used = proc
	m.Free = m.Total - m.Reserved - m.Used
	return m, proc
}

func (s *Device) mockMemory(gpu int) (profiler.Memory, error) {
	off, started := s.since(s.cfg.Clock())
	m, _ := s.reading(gpu, off, started)
	if s.cfg.MemoryOverride != nil {
		if !started {
			off = -1
		}
		return s.cfg.MemoryOverride(gpu, off, m)
	}
	return m, nil
}

func (s *Device) mockProcesses(gpu int) ([]profiler.ProcessMemory, error) {
	off, started := s.since(s.cfg.Clock())
	if _, proc := s.reading(gpu, off, started); proc > 0 {
		return []profiler.ProcessMemory{{PID: s.cfg.PID + gpu - s.cfg.GPU, Used: proc}}, nil
	}
	return []profiler.ProcessMemory{}, nil
}

// Opener is the constructor profiler.Open calls for the "sim" device (and
// for "auto" on a machine without a driver): New(cfg) as a profiler.Device.
func Opener(cfg Config) func() (profiler.Device, error) {
	return func() (profiler.Device, error) {
		d, err := New(cfg)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}

// SimulatedWorkload describes the training process the simulated device
// plays, e.g. "gpt2 training, batch 8, seq 1024, bf16, 10 steps, seed 1, on GPU 0";
// "" when it plays none. The runner records it in schema.Result.SimulatedWorkload:
// on the simulated device a profiled command's own memory is not measured,
// every figure is this workload's.
func (s *Device) SimulatedWorkload() string {
	if s.plan == nil {
		return ""
	}
	a, w := s.cfg.Arch, s.cfg.Workload
	name := a.Name
	if name == "" {
		name = a.Family
	}
	prec := string(w.Precision)
	if prec == "" {
		prec = "fp32"
	}
	if s.cfg.Ranks > 1 {
		return fmt.Sprintf("%s training, batch %d, seq %d, %s, %d steps, seed %d, %d ranks on GPUs %d-%d",
			name, w.Batch, w.Seq, prec, s.cfg.Steps, s.cfg.Seed, s.cfg.Ranks, s.cfg.GPU, s.cfg.GPU+s.cfg.Ranks-1)
	}
	return fmt.Sprintf("%s training, batch %d, seq %d, %s, %d steps, seed %d, on GPU %d",
		name, w.Batch, w.Seq, prec, s.cfg.Steps, s.cfg.Seed, s.cfg.GPU)
}
