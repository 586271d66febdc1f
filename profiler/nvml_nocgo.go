//go:build !cgo

package profiler

// Without cgo, go-nvml cannot be built: the nvml device says so, and the
// simulated H100 answers its queries in plain Go with the behaviour the
// NVML adapter has over go-nvml's mock server (v2 readings until the driver
// lacks them, then v1 with driver-reserved memory counted as used; errors
// mapped as NVML returns them).

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// errNeedsCgo is why OpenNVML fails in a build without cgo.
var errNeedsCgo = errors.New("this memval was built without cgo (CGO_ENABLED=0), and the nvml device needs a cgo build: " +
	"rebuild with a C compiler and CGO_ENABLED=1 (make build), or use --device sim or replay:FILE")

// NVMLOption configures OpenNVML.
type NVMLOption func()

// WithLibraryPath is accepted and ignored: a build without cgo cannot load
// NVML.
func WithLibraryPath(string) NVMLOption { return func() {} }

// OpenNVML fails in a build without cgo; the error wraps ErrNoDriver (so
// "auto" falls back to the simulated device) and says how to rebuild.
func OpenNVML(...NVMLOption) (Device, error) {
	return nil, fmt.Errorf("nvml: %w: %w", errNeedsCgo, ErrNoDriver)
}

// The mock DGX H100 as go-nvml's dgxh100 server describes it.
const (
	mockGPUName      = "NVIDIA H100 80GB HBM3"
	mockGPUs         = 8
	mockDriver       = "550.54.15"
	mockNVMLVersion  = "12.550.54.15"
	mockCUDAVersion  = "12.4"
	mockUUIDTemplate = "GPU-mock-h100-%d"
)

// OpenMockH100 is the simulated DGX H100 without go-nvml: the same GPUs,
// versions and answers as the cgo build's adapter over the mock server.
func OpenMockH100(o MockH100) (Device, error) {
	d := &mockH100{o: o, gpus: make([]GPU, mockGPUs)}
	for i := range d.gpus {
		m, err := o.Memory(i)
		if err != nil {
			return nil, fmt.Errorf("mock h100: gpu %d: memory: %w", i, err)
		}
		uuid := fmt.Sprintf(mockUUIDTemplate, i)
		if i < len(o.UUIDs) {
			uuid = o.UUIDs[i]
		}
		d.gpus[i] = GPU{Index: i, Name: mockGPUName, UUID: uuid, TotalBytes: m.Total}
	}
	return d, nil
}

type mockH100 struct {
	o      MockH100
	gpus   []GPU
	v1Only atomic.Bool
}

func (d *mockH100) Kind() string         { return d.o.Kind }
func (d *mockH100) GPUs() ([]GPU, error) { return append([]GPU(nil), d.gpus...), nil }
func (d *mockH100) Close() error         { return nil }

func (d *mockH100) Versions() Versions {
	return Versions{Driver: mockDriver, NVML: mockNVMLVersion, CUDA: mockCUDAVersion}
}

func (d *mockH100) check(gpu int) error {
	if gpu < 0 || gpu >= len(d.gpus) {
		return fmt.Errorf("gpu %d does not exist: this node has %d (indices 0 to %d)", gpu, len(d.gpus), len(d.gpus)-1)
	}
	return nil
}

// Memory answers as NVML.Memory does over the mock server.
func (d *mockH100) Memory(gpu int) (Memory, error) {
	if err := d.check(gpu); err != nil {
		return Memory{}, err
	}
	if d.o.NoMemoryV2 {
		d.v1Only.Store(true)
	}
	m, err := d.o.Memory(gpu)
	if err != nil {
		if !d.v1Only.Load() && errors.Is(err, ErrNotSupported) {
			d.v1Only.Store(true) // NVML.Memory falls back to v1, which fails the same way
		}
		return Memory{}, fmt.Errorf("gpu %d: memory: %w", gpu, mockError(err))
	}
	if d.v1Only.Load() {
		return Memory{Total: m.Total, Used: m.Used + m.Reserved, Free: m.Free, InfoVersion: 1}, nil
	}
	m.InfoVersion = 2
	return m, nil
}

// Processes answers as NVML.Processes does over the mock server.
func (d *mockH100) Processes(gpu int) ([]ProcessMemory, error) {
	if err := d.check(gpu); err != nil {
		return nil, err
	}
	ps, err := d.o.Processes(gpu)
	if err != nil {
		return nil, fmt.Errorf("gpu %d: processes: %w", gpu, mockError(err))
	}
	return append([]ProcessMemory{}, ps...), nil
}

// mockError is the error NVML's return code for err becomes (nvmlError).
func mockError(err error) error {
	switch {
	case errors.Is(err, ErrNotSupported):
		return fmt.Errorf("NVML: Not Supported: %w", ErrNotSupported)
	case errors.Is(err, ErrGPULost):
		return fmt.Errorf("NVML: GPU is lost: %w", ErrGPULost)
	default:
		return fmt.Errorf("NVML: Unknown Error: %w", ErrGPULost)
	}
}
