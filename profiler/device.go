package profiler

import (
	"errors"
	"time"
)

// ErrNotSupported is a normal answer from a device that cannot give a figure
// (NVML_ERROR_NOT_SUPPORTED, a replayed trace without per-process columns).
// Callers fall back and say so; it never stops a run.
var ErrNotSupported = errors.New("not supported by this device")

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
// since a workload started (sim, replay). The runner calls Start when it
// starts the workload; Finished reports whether the timeline's own process
// has ended (the sim's simulated training, the replay's last sample).
type Timeline interface {
	Start(now time.Time)
	Finished(now time.Time) bool
}
