//go:build cgo

package profiler

// This is the only file that imports go-nvml (and needs cgo: without it,
// nvml_nocgo.go stands in). Everything else in memval
// sees the GPU through the Device interface and plain Go types.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	nvmlserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// nvmlInitError is the error of a failed nvmlInit. It holds the return code
// as a plain integer: after a failed Init no NVML function is called, not
// even nvmlErrorString, so the message comes from initFailureText.
type nvmlInitError struct {
	code int32
	msg  string
}

func (e *nvmlInitError) Error() string { return e.msg }
func (e *nvmlInitError) Unwrap() error { return ErrNoDriver }

// initFailure turns a failed Init's return code into an error that says what
// to do. It calls nothing in NVML.
func initFailure(ret nvml.Return) error {
	const sim = "use --device sim to run on the simulated H100"
	var msg string
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		msg = "no NVIDIA driver found (NVML: library not found); " + sim
	case nvml.ERROR_DRIVER_NOT_LOADED:
		msg = "the NVIDIA driver is not loaded (NVML: driver not loaded); load it (nvidia-smi should work) or " + sim
	case nvml.ERROR_NO_PERMISSION:
		msg = "no permission to use the NVIDIA driver (NVML: no permission); check access to /dev/nvidia* or " + sim
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		msg = "the NVIDIA kernel module and user library versions differ (NVML: RM version mismatch); reboot or reload the driver, or " + sim
	default:
		msg = fmt.Sprintf("NVML could not be initialised (NVML return code %d); %s", int32(ret), sim)
	}
	return &nvmlInitError{code: int32(ret), msg: msg}
}

// NVMLOption configures OpenNVML.
type NVMLOption func(*nvmlOptions)

type nvmlOptions struct {
	libraryPath string
}

// WithLibraryPath loads NVML from path instead of libnvidia-ml.so.1.
func WithLibraryPath(path string) NVMLOption {
	return func(o *nvmlOptions) { o.libraryPath = path }
}

// OpenNVML opens the machine's NVIDIA driver through go-nvml. When NVML
// cannot be initialised the error wraps ErrNoDriver and names --device sim.
func OpenNVML(opts ...NVMLOption) (Device, error) {
	var o nvmlOptions
	for _, opt := range opts {
		opt(&o)
	}
	var libOpts []nvml.LibraryOption
	if o.libraryPath != "" {
		libOpts = append(libOpts, nvml.WithLibraryPath(o.libraryPath))
	}
	d, err := NewNVML(nvml.New(libOpts...))
	if err != nil {
		return nil, err
	}
	return d, nil
}

// NVML is the Device of a real (or mock) NVML library. It is safe for
// concurrent use.
type NVML struct {
	lib      nvml.Interface
	kind     string
	handles  []nvml.Device
	gpus     []GPU
	versions Versions
	v1Only   atomic.Bool // set once v2 is known to be missing; never cleared
	close    sync.Once
}

var _ Device = (*NVML)(nil)

// NewNVML initialises lib and lists its GPUs and versions. lib is the
// handle: nvml.New() for the machine's driver, a go-nvml mock in tests.
//
// Any NVML call after a failed Init kills the process (go-nvml calls into
// symbols that were never resolved), so a failed Init returns at once and
// nothing else is called on lib; the error wraps ErrNoDriver. A driver that
// sees no GPU is reported the same way.
func NewNVML(lib nvml.Interface) (*NVML, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, initFailure(ret) // the only exit that skips Shutdown: Init failed
	}
	d, err := discoverNVML(lib)
	if err != nil {
		lib.Shutdown()
		return nil, err
	}
	return d, nil
}

// discoverNVML reads the GPUs and versions of an initialised library.
func discoverNVML(lib nvml.Interface) (*NVML, error) {
	d := &NVML{lib: lib, kind: "nvml"}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml: count devices: %w", nvmlError(ret))
	}
	if n == 0 {
		return nil, fmt.Errorf("NVML sees no GPU; use --device sim to run on the simulated H100: %w", ErrNoDriver)
	}
	for i := 0; i < n; i++ {
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml: gpu %d: handle: %w", i, nvmlError(ret))
		}
		g := GPU{Index: i}
		if name, ret := h.GetName(); ret == nvml.SUCCESS {
			g.Name = name
		}
		if uuid, ret := h.GetUUID(); ret == nvml.SUCCESS {
			g.UUID = uuid
		}
		if m, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.TotalBytes = m.Total
		}
		d.handles = append(d.handles, h)
		d.gpus = append(d.gpus, g)
	}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		d.versions.Driver = v
	}
	if v, ret := lib.SystemGetNVMLVersion(); ret == nvml.SUCCESS {
		d.versions.NVML = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion_v2(); ret == nvml.SUCCESS {
		d.versions.CUDA = CUDAVersionString(v)
	}
	// Calling a function the driver library lacks aborts the process, so
	// look the v2 memory query up before ever calling it.
	if err := lib.Extensions().LookupSymbol("nvmlDeviceGetMemoryInfo_v2"); err != nil {
		d.v1Only.Store(true)
	}
	return d, nil
}

// CUDAVersionString formats NVML's CUDA driver version (1000*major +
// 10*minor, e.g. 12040) as "12.4".
func CUDAVersionString(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// nvmlError wraps a failed return of an initialised library. GPU lost and
// unknown errors wrap ErrGPULost, not supported wraps ErrNotSupported.
func nvmlError(ret nvml.Return) error {
	switch ret {
	case nvml.ERROR_GPU_IS_LOST, nvml.ERROR_UNKNOWN:
		return fmt.Errorf("NVML: %s: %w", ret.Error(), ErrGPULost)
	case nvml.ERROR_NOT_SUPPORTED:
		return fmt.Errorf("NVML: %s: %w", ret.Error(), ErrNotSupported)
	default:
		return fmt.Errorf("NVML: %s", ret.Error())
	}
}

// Kind is "nvml" (or "sim" for the simulated H100 built on this adapter).
func (d *NVML) Kind() string { return d.kind }

// GPUs lists every GPU on the node, in NVML's index order.
func (d *NVML) GPUs() ([]GPU, error) { return append([]GPU(nil), d.gpus...), nil }

// Versions are the driver, NVML and CUDA driver versions read at open.
func (d *NVML) Versions() Versions { return d.versions }

func (d *NVML) handle(gpu int) (nvml.Device, error) {
	if gpu < 0 || gpu >= len(d.handles) {
		return nil, fmt.Errorf("gpu %d does not exist: this node has %d (indices 0 to %d)", gpu, len(d.handles), len(d.handles)-1)
	}
	return d.handles[gpu], nil
}

// Memory reads the GPU's memory: with nvmlDeviceGetMemoryInfo_v2 (used and
// driver-reserved apart, InfoVersion 2) where the driver has it; after the
// first FUNCTION_NOT_FOUND or NOT_SUPPORTED from v2 (or a missing symbol at
// open), with v1 for the rest of the run (InfoVersion 1; Used then includes
// what the driver reserves). A lost GPU gives an error wrapping ErrGPULost
// for that reading only.
func (d *NVML) Memory(gpu int) (Memory, error) {
	h, err := d.handle(gpu)
	if err != nil {
		return Memory{}, err
	}
	if !d.v1Only.Load() {
		m, ret := h.GetMemoryInfo_v2()
		switch ret {
		case nvml.SUCCESS:
			return Memory{Total: m.Total, Used: m.Used, Free: m.Free, Reserved: m.Reserved, InfoVersion: 2}, nil
		case nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_NOT_SUPPORTED:
			d.v1Only.Store(true)
		default:
			return Memory{}, fmt.Errorf("gpu %d: memory: %w", gpu, nvmlError(ret))
		}
	}
	m, ret := h.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Memory{}, fmt.Errorf("gpu %d: memory: %w", gpu, nvmlError(ret))
	}
	return Memory{Total: m.Total, Used: m.Used, Free: m.Free, InfoVersion: 1}, nil
}

// Processes lists the compute processes on the GPU with their memory. NOT
// SUPPORTED gives an error wrapping ErrNotSupported. An empty list, or PIDs
// that match none of the caller's process tree (inside a container NVML
// reports the host's PIDs), are normal answers: the caller decides what to
// do with them (the sampler falls back to device-minus-baseline).
func (d *NVML) Processes(gpu int) ([]ProcessMemory, error) {
	h, err := d.handle(gpu)
	if err != nil {
		return nil, err
	}
	infos, ret := h.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("gpu %d: processes: %w", gpu, nvmlError(ret))
	}
	out := make([]ProcessMemory, 0, len(infos))
	for _, p := range infos {
		out = append(out, ProcessMemory{PID: int(p.Pid), Used: p.UsedGpuMemory})
	}
	return out, nil
}

// Close shuts NVML down; later calls do nothing.
func (d *NVML) Close() error {
	var err error
	d.close.Do(func() {
		if ret := d.lib.Shutdown(); ret != nvml.SUCCESS {
			err = fmt.Errorf("nvml: shutdown: %w", nvmlError(ret))
		}
	})
	return err
}

// OpenMockH100 builds go-nvml's DGX H100 mock server (8 x H100 80GB HBM3,
// driver 550.54.15, NVML 12.550.54.15, CUDA 12.4), routes its memory and
// process queries to o's functions and opens it with the same adapter code
// as a real driver, so that the simulated device exercises this adapter.
func OpenMockH100(o MockH100) (Device, error) {
	srv := dgxh100.New()
	srv.SystemGetCudaDriverVersion_v2Func = srv.SystemGetCudaDriverVersionFunc
	for i, dev := range srv.Devices {
		d, ok := dev.(*nvmlserver.Device)
		if !ok {
			return nil, fmt.Errorf("mock h100: device %d has type %T", i, dev)
		}
		if i < len(o.UUIDs) {
			d.UUID = o.UUIDs[i]
		}
		gpu := i
		d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			if o.NoMemoryV2 {
				return nvml.Memory_v2{}, nvml.ERROR_FUNCTION_NOT_FOUND
			}
			m, err := o.Memory(gpu)
			if err != nil {
				return nvml.Memory_v2{}, mockReturn(err)
			}
			return nvml.Memory_v2{Version: nvml.STRUCT_VERSION(nvml.Memory_v2{}, 2), Total: m.Total, Reserved: m.Reserved, Used: m.Used, Free: m.Free}, nvml.SUCCESS
		}
		d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			m, err := o.Memory(gpu)
			if err != nil {
				return nvml.Memory{}, mockReturn(err)
			}
			// v1 counts driver-reserved memory as used.
			return nvml.Memory{Total: m.Total, Used: m.Used + m.Reserved, Free: m.Free}, nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			ps, err := o.Processes(gpu)
			if err != nil {
				return nil, mockReturn(err)
			}
			out := make([]nvml.ProcessInfo, len(ps))
			for j, p := range ps {
				out[j] = nvml.ProcessInfo{Pid: uint32(p.PID), UsedGpuMemory: p.Used, GpuInstanceId: 0xFFFFFFFF, ComputeInstanceId: 0xFFFFFFFF}
			}
			return out, nvml.SUCCESS
		}
	}
	d, err := NewNVML(srv)
	if err != nil {
		return nil, fmt.Errorf("mock h100: %w", err)
	}
	d.kind = o.Kind
	return d, nil
}

func mockReturn(err error) nvml.Return {
	switch {
	case errors.Is(err, ErrNotSupported):
		return nvml.ERROR_NOT_SUPPORTED
	case errors.Is(err, ErrGPULost):
		return nvml.ERROR_GPU_IS_LOST
	default:
		return nvml.ERROR_UNKNOWN
	}
}
