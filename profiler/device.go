package profiler

import (
	"errors"

	"github.com/memval/memval/profiler/schema"
)

// ErrNotSupported is a normal answer from a device that cannot give a figure
// (NVML_ERROR_NOT_SUPPORTED, a replayed trace without per-process columns).
// Callers fall back and say so; it never stops a run.
var ErrNotSupported = errors.New("not supported by this device")

// ErrNoDriver is wrapped by the error OpenNVML returns when NVML cannot be
// initialised (no library, driver not loaded, no permission, a build
// without cgo, ...) or sees no GPU. Device selection "auto" falls back to
// the simulated device on it.
var ErrNoDriver = errors.New("no usable NVIDIA driver")

// ErrGPULost is wrapped by a reading's error when NVML says the GPU fell off
// the bus (ERROR_GPU_IS_LOST) or failed in an unknown way (ERROR_UNKNOWN).
// The sampler records such a sample as a gap and goes on.
var ErrGPULost = errors.New("gpu is lost")

// MockH100 shapes the mock DGX H100 of OpenMockH100 and answers its memory
// and process queries with plain Go values. An error wrapping
// ErrNotSupported becomes NVML's NOT_SUPPORTED, one wrapping ErrGPULost
// GPU_IS_LOST, any other ERROR_UNKNOWN.
type MockH100 struct {
	Kind       string   // what the device's Kind returns, e.g. "sim"
	UUIDs      []string // one per GPU; empty keeps the mock's
	NoMemoryV2 bool     // the v2 memory query answers FUNCTION_NOT_FOUND, as on old drivers

	// Memory answers a GPU's memory query in its v2 form (Used excludes
	// Reserved); Processes its compute-process query.
	Memory    func(gpu int) (Memory, error)
	Processes func(gpu int) ([]ProcessMemory, error)
}

// GPU and Versions are the device's description as result.json records
// it (schema.Environment).
type (
	GPU      = schema.GPU
	Versions = schema.Versions
)

// Memory is one device-level reading. Used counts what processes hold;
// with NVML's v1 query it also counts driver-reserved memory, with v2 that
// part is in Reserved. InfoVersion says which query answered (1 or 2; 0 for
// devices that are not NVML).
type Memory struct {
	Total       uint64 `json:"total"`
	Used        uint64 `json:"used"`
	Free        uint64 `json:"free"`
	Reserved    uint64 `json:"reserved"`
	InfoVersion int    `json:"info_version"`
}

// ProcessMemory is one process's use of one GPU.
type ProcessMemory struct {
	PID  int    `json:"pid"`
	Used uint64 `json:"used"`
}

// Device is the source of memory readings. Implementations: the NVML
// adapter (the only file that imports go-nvml), the simulated H100 and the
// trace replay. Methods return plain errors; ErrNotSupported (wrapped or not)
// means "no figure", not failure.
type Device interface {
	Kind() string // "nvml", "sim" or "replay:FILE"
	GPUs() ([]GPU, error)
	Versions() Versions
	Memory(gpu int) (Memory, error)
	Processes(gpu int) ([]ProcessMemory, error)
	Close() error
}

// Timeline is implemented by devices whose readings are a function of time
// since a workload started (sim, replay). Times are CLOCK_MONOTONIC
// nanoseconds (MonotonicNS), the clock of trace.csv and events.jsonl.
//
// The runner calls Start when it starts the workload (or, with no command to
// run, when the device's own simulated process is the workload); Finished
// reports whether that process has ended, with its exit code and whether it
// ran out of memory; Events returns the side-channel events (the same
// protocol as events.jsonl) whose time has come since the previous call.
type Timeline interface {
	Start(startNS int64)
	Finished(nowNS int64) (done bool, exitCode int, oom bool)
	Events(nowNS int64) []Event
}
