package schema

import "encoding/json"

// ResultSchema is the version of result.json this code writes. Readers
// refuse newer versions with an error that says to upgrade memval.
const ResultSchema = 1

// Result is result.json: everything one run leaves besides the trace and
// the events. `memval profile` fills Command, Device, Env, Summary and
// Framework; `memval validate` adds Scenario, Predictions and Comparisons.
type Result struct {
	Schema    int      `json:"schema"`
	Tool      string   `json:"tool"`              // "memval vX.Y.Z"
	Command   []string `json:"command,omitempty"` // the profiled program and its arguments
	Device    string   `json:"device"`            // nvml, sim, replay:FILE
	Simulated bool     `json:"simulated"`         // true unless a real GPU was measured
	Notices   []string `json:"notices,omitempty"` // e.g. "no NVIDIA driver: simulated device used"

	Env       Environment `json:"environment"`
	Summary   Summary     `json:"summary"`
	Framework *Framework  `json:"framework,omitempty"` // what the scenario reported about itself

	// SimulatedWorkload, on the simulated device, names the workload whose
	// memory was simulated; a command's own memory is not measured there.
	SimulatedWorkload string `json:"simulated_workload,omitempty"`
	// KilledProcesses are the processes of the workload's tree memval had
	// to end (after an interruption's grace period, or still running after
	// the main process exited).
	KilledProcesses []KilledProcess `json:"killed_processes,omitempty"`
	// Ranks, when the profiled processes are ranks of a distributed job,
	// has each rank's peak on its GPU (per-reading rows in ranks.csv).
	Ranks []RankPeak `json:"ranks,omitempty"`

	Scenario json.RawMessage `json:"scenario,omitempty"` // the scenario spec as validated (scenarios.Spec)
	// Predictions are the formulas' estimates, each a JSON object as
	// analytic.Estimate writes it (formula, params, terms, steady_bytes,
	// peak_bytes, notes). They are kept as raw JSON so that reading or
	// writing a result needs no formula code; analytic.DecodeEstimates
	// reads them.
	Predictions []json.RawMessage `json:"predictions,omitempty"`
	Comparisons []Comparison      `json:"comparisons,omitempty"`
	Published   *Published        `json:"published,omitempty"` // a measurement someone else published (see published.go)
}

// Environment is where the run happened.
type Environment struct {
	Host      string   `json:"host,omitempty"`
	OS        string   `json:"os,omitempty"`
	GPUs      []GPU    `json:"gpus,omitempty"`
	Versions  Versions `json:"versions"`
	Torch     string   `json:"torch,omitempty"`
	TorchCUDA string   `json:"torch_cuda,omitempty"`
	Python    string   `json:"python,omitempty"`
	// MemoryInfoVersion is 2 when NVML's v2 memory query (used and reserved
	// apart) answered, 1 when only v1 did, 0 on devices that are not NVML.
	MemoryInfoVersion int `json:"memory_info_version"`
}

// Summary is what the trace says. All byte figures are for GPU (the device
// the workload used; the busiest one when it is not known).
type Summary struct {
	GPU             int     `json:"gpu"`
	Samples         int     `json:"samples"`
	Gaps            int     `json:"gaps"` // samples lost to NVML errors
	IntervalSeconds float64 `json:"interval_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`

	BaselineBytes    uint64  `json:"baseline_bytes"`     // device used before the workload started
	PeakDeviceBytes  uint64  `json:"peak_device_bytes"`  // max device used
	PeakProcessBytes uint64  `json:"peak_process_bytes"` // max used by the process tree (0 when not available)
	PeakSeconds      float64 `json:"peak_seconds"`       // time of the device peak after start
	SteadyBytes      uint64  `json:"steady_bytes"`       // device used between steps, once warm (see Summarize)
	ProcessSource    string  `json:"process_source"`     // "nvml-processes" or "device-minus-baseline (reason)"

	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	Status   string `json:"status"` // ok, failed, crashed, killed, oom, interrupted, trace_incomplete
	OOM      bool   `json:"oom"`

	// With status trace_incomplete: the write error and the seconds after
	// the start that trace.csv covers.
	TraceError          string  `json:"trace_error,omitempty"`
	TraceCoveredSeconds float64 `json:"trace_covered_seconds,omitempty"`
}

// Framework is what the scenario reported about itself on the side channel.
type Framework struct {
	Params          int64    `json:"params,omitempty"`
	Backend         string   `json:"backend,omitempty"`   // cuda or cpu
	Attention       string   `json:"attention,omitempty"` // what really ran (math when SDPA is missing)
	MaxAllocated    uint64   `json:"max_allocated,omitempty"`
	MaxReserved     uint64   `json:"max_reserved,omitempty"`
	SteadyAllocated uint64   `json:"steady_allocated,omitempty"` // allocated at a step's end, once warm
	SteadyReserved  uint64   `json:"steady_reserved,omitempty"`
	SavedBytes      uint64   `json:"saved_bytes,omitempty"` // bytes autograd saved in one forward (last step)
	ContextBytes    uint64   `json:"context_bytes,omitempty"`
	StepSeconds     float64  `json:"step_seconds,omitempty"` // median step time
	Notes           []string `json:"notes,omitempty"`
}

// Comparison is one formula against one measured figure.
type Comparison struct {
	Formula   string  `json:"formula"`
	Quantity  string  `json:"quantity"` // steady or peak
	Truth     string  `json:"truth"`    // device, process, framework
	Predicted uint64  `json:"predicted_bytes"`
	Measured  uint64  `json:"measured_bytes"`
	AbsError  int64   `json:"abs_error_bytes"` // predicted - measured
	RelError  float64 `json:"rel_error"`       // (predicted - measured) / measured
	Within    bool    `json:"within_tolerance"`
}

// Summary statuses.
const (
	StatusOK          = "ok"          // exit code 0
	StatusFailed      = "failed"      // non-zero exit code
	StatusCrashed     = "crashed"     // killed by a signal other than SIGKILL
	StatusKilled      = "killed"      // SIGKILL (the kernel's OOM killer, a second Ctrl-C)
	StatusOOM         = "oom"         // CUDA out of memory (stderr or an error event)
	StatusInterrupted = "interrupted" // the user interrupted the run
	// StatusTraceIncomplete: trace.csv could not be written in full (disk
	// full, file size limit, I/O error); Summary.TraceError says why and
	// TraceCoveredSeconds how much of the run it covers. It takes
	// precedence over the workload's own status (kept in a notice).
	StatusTraceIncomplete = "trace_incomplete"
)

// GPU describes one GPU a device sees.
type GPU struct {
	Index      int    `json:"index"`
	Name       string `json:"name"`
	UUID       string `json:"uuid,omitempty"`
	TotalBytes uint64 `json:"total_bytes"`
}

// Versions are the software versions a device reports.
type Versions struct {
	Driver string `json:"driver,omitempty"`
	NVML   string `json:"nvml,omitempty"`
	CUDA   string `json:"cuda,omitempty"` // driver's CUDA version, e.g. "12.4"
}

// KilledProcess is a process of the workload's tree that memval had to end
// (SIGTERM or SIGKILL) because it outlived an interruption's grace period
// or the workload's main process.
type KilledProcess struct {
	PID     int    `json:"pid"`
	Command string `json:"command"` // its command line as /proc shows it
	Signal  string `json:"signal"`  // the last signal memval sent it: SIGTERM or SIGKILL
}

// RankPeak is one rank's process of a distributed job (torchrun's RANK,
// LOCAL_RANK and WORLD_SIZE in its environment) and the most memory NVML
// attributed to it on its GPU.
type RankPeak struct {
	Rank      int    `json:"rank"`
	LocalRank int    `json:"local_rank"` // -1 when not set
	WorldSize int    `json:"world_size"` // 0 when not set
	PID       int    `json:"pid"`
	GPU       int    `json:"gpu"`
	PeakBytes uint64 `json:"peak_bytes"`
}
