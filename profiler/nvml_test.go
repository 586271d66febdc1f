//go:build cgo

package profiler

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	nvmlserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// TestNVMLInitFailures: each failed Init is an error wrapping ErrNoDriver
// that names --device sim, and no other NVML function is called. The mock
// has only InitFunc set: any other call panics inside go-nvml's mock, which
// the test turns into a failure naming the call.
func TestNVMLInitFailures(t *testing.T) {
	for _, tc := range []struct {
		ret  nvml.Return
		want string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver found (NVML: library not found)"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "driver is not loaded"},
		{nvml.ERROR_NO_PERMISSION, "no permission"},
		{nvml.ERROR_LIB_RM_VERSION_MISMATCH, "versions differ"},
		{nvml.ERROR_UNKNOWN, "return code 999"},
		{nvml.ERROR_UNINITIALIZED, "return code 1"},
	} {
		t.Run(fmt.Sprint(int32(tc.ret)), func(t *testing.T) {
			lib := &mock.Interface{InitFunc: func() nvml.Return { return tc.ret }}
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("an NVML function was called after a failed Init: %v", r)
				}
			}()
			d, err := NewNVML(lib)
			if d != nil || err == nil {
				t.Fatalf("got device %v, error %v; want nil and an error", d, err)
			}
			if !errors.Is(err, ErrNoDriver) {
				t.Errorf("got %v, want it to wrap ErrNoDriver", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--device sim") {
				t.Errorf("got %q, want it to contain %q and --device sim", err, tc.want)
			}
			if n := len(lib.InitCalls()); n != 1 {
				t.Errorf("got %d Init calls, want 1", n)
			}
		})
	}
}

// TestOpenNVMLWithoutLibrary uses the real go-nvml loader on a library path
// that does not exist: Init fails with LIBRARY_NOT_FOUND and nothing else
// is called (or this test process would die).
func TestOpenNVMLWithoutLibrary(t *testing.T) {
	_, err := OpenNVML(WithLibraryPath("/nonexistent/libnvidia-ml.so.1"))
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "library not found") {
		t.Fatalf("got %v, want ErrNoDriver with library not found", err)
	}
}

// h100 returns the DGX H100 mock with every device's memory set, so tests
// can change one function at a time.
func h100(t *testing.T) *nvmlserver.Server {
	t.Helper()
	srv := dgxh100.New()
	srv.SystemGetCudaDriverVersion_v2Func = srv.SystemGetCudaDriverVersionFunc
	for _, dev := range srv.Devices {
		d := dev.(*nvmlserver.Device)
		d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			return nvml.Memory_v2{Total: 80 << 30, Reserved: 500 << 20, Used: 1 << 30, Free: 80<<30 - 500<<20 - 1<<30}, nvml.SUCCESS
		}
		d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: 80 << 30, Used: 1<<30 + 500<<20, Free: 80<<30 - 500<<20 - 1<<30}, nvml.SUCCESS
		}
	}
	return srv
}

func TestNVMLListsGPUsAndVersions(t *testing.T) {
	d, err := NewNVML(h100(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	gpus, _ := d.GPUs()
	if len(gpus) != 8 {
		t.Fatalf("got %d GPUs, want 8", len(gpus))
	}
	for i, g := range gpus {
		if g.Index != i || g.Name != "NVIDIA H100 80GB HBM3" || !strings.HasPrefix(g.UUID, "GPU-") || g.TotalBytes != 80<<30 {
			t.Errorf("gpu %d: got %+v", i, g)
		}
	}
	want := Versions{Driver: "550.54.15", NVML: "12.550.54.15", CUDA: "12.4"}
	if v := d.Versions(); v != want {
		t.Errorf("got versions %+v, want %+v", v, want)
	}
	if d.Kind() != "nvml" {
		t.Errorf("got kind %q, want nvml", d.Kind())
	}
}

func TestCUDAVersionString(t *testing.T) {
	for _, tc := range []struct {
		v    int
		want string
	}{{12040, "12.4"}, {11080, "11.8"}, {12000, "12.0"}, {13010, "13.1"}} {
		if got := CUDAVersionString(tc.v); got != tc.want {
			t.Errorf("CUDAVersionString(%d): got %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestNVMLMemoryV2(t *testing.T) {
	d, err := NewNVML(h100(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Memory(3)
	if err != nil {
		t.Fatal(err)
	}
	if m.InfoVersion != 2 || m.Reserved != 500<<20 || m.Used != 1<<30 {
		t.Errorf("got %+v, want v2 with reserved 500 MiB and used 1 GiB", m)
	}
	if _, err := d.Memory(8); err == nil || !strings.Contains(err.Error(), "gpu 8 does not exist") {
		t.Errorf("gpu 8: got %v, want an error naming the index", err)
	}
}

// TestNVMLMemoryV2Missing: FUNCTION_NOT_FOUND or NOT_SUPPORTED from v2 makes
// the adapter use v1 from then on, and never ask v2 again.
func TestNVMLMemoryV2Missing(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_NOT_SUPPORTED} {
		t.Run(fmt.Sprint(int32(ret)), func(t *testing.T) {
			srv := h100(t)
			v2Calls := 0
			for _, dev := range srv.Devices {
				dev.(*nvmlserver.Device).GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
					v2Calls++
					return nvml.Memory_v2{}, ret
				}
			}
			d, err := NewNVML(srv)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				m, err := d.Memory(i)
				if err != nil {
					t.Fatal(err)
				}
				if m.InfoVersion != 1 || m.Used != 1<<30+500<<20 || m.Reserved != 0 {
					t.Errorf("got %+v, want v1 with used 1.5 GiB (reserved included)", m)
				}
			}
			if v2Calls != 1 {
				t.Errorf("got %d v2 calls, want 1 (then v1 for the rest of the run)", v2Calls)
			}
		})
	}
}

// TestNVMLMemoryV2SymbolMissing: a driver library without the v2 symbol is
// never asked for it (calling a missing symbol would abort the process).
func TestNVMLMemoryV2SymbolMissing(t *testing.T) {
	srv := h100(t)
	srv.LookupSymbolFunc = func(name string) error {
		if name == "nvmlDeviceGetMemoryInfo_v2" {
			return errors.New("undefined symbol")
		}
		return nil
	}
	for _, dev := range srv.Devices {
		dev.(*nvmlserver.Device).GetMemoryInfo_v2Func = nil // calling it panics
	}
	d, err := NewNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Memory(0)
	if err != nil || m.InfoVersion != 1 {
		t.Fatalf("got %+v, %v; want a v1 reading", m, err)
	}
}

// TestNVMLGPULost: a lost GPU is an error for that reading, wrapping
// ErrGPULost; the next reading works again if the GPU answers.
func TestNVMLGPULost(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_GPU_IS_LOST, nvml.ERROR_UNKNOWN} {
		srv := h100(t)
		lost := true
		dev := srv.Devices[0].(*nvmlserver.Device)
		ok := dev.GetMemoryInfo_v2Func
		dev.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
			if lost {
				return nvml.Memory_v2{}, ret
			}
			return ok()
		}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, ret }
		d, err := NewNVML(srv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Memory(0); !errors.Is(err, ErrGPULost) {
			t.Errorf("%d: memory: got %v, want ErrGPULost", int32(ret), err)
		}
		if _, err := d.Processes(0); !errors.Is(err, ErrGPULost) {
			t.Errorf("%d: processes: got %v, want ErrGPULost", int32(ret), err)
		}
		lost = false
		if m, err := d.Memory(0); err != nil || m.InfoVersion != 2 {
			t.Errorf("%d: after recovery: got %+v, %v; want a v2 reading", int32(ret), m, err)
		}
	}
}

func TestNVMLProcesses(t *testing.T) {
	srv := h100(t)
	dev := srv.Devices[1].(*nvmlserver.Device)
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		// PIDs from another PID namespace: they match nobody here, and that
		// is a normal answer.
		return []nvml.ProcessInfo{{Pid: 987654, UsedGpuMemory: 3 << 30}, {Pid: 12, UsedGpuMemory: 1 << 20}}, nvml.SUCCESS
	}
	srv.Devices[2].(*nvmlserver.Device).GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return nil, nvml.SUCCESS
	}
	srv.Devices[3].(*nvmlserver.Device).GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return nil, nvml.ERROR_NOT_SUPPORTED
	}
	d, err := NewNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := d.Processes(1)
	if err != nil || len(ps) != 2 || ps[0] != (ProcessMemory{PID: 987654, Used: 3 << 30}) {
		t.Errorf("gpu 1: got %+v, %v", ps, err)
	}
	ps, err = d.Processes(2)
	if err != nil || len(ps) != 0 {
		t.Errorf("gpu 2: got %+v, %v; want an empty list and no error", ps, err)
	}
	if _, err := d.Processes(3); !errors.Is(err, ErrNotSupported) {
		t.Errorf("gpu 3: got %v, want ErrNotSupported", err)
	}
}

func TestNVMLNoGPU(t *testing.T) {
	srv := h100(t)
	srv.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	shutdowns := 0
	srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
	_, err := NewNVML(srv)
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "--device sim") {
		t.Errorf("got %v, want ErrNoDriver naming --device sim", err)
	}
	if shutdowns != 1 {
		t.Errorf("got %d Shutdown calls, want 1 after a successful Init", shutdowns)
	}
}

func TestNVMLCloseOnce(t *testing.T) {
	srv := h100(t)
	shutdowns := 0
	srv.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
	d, err := NewNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close()
	if shutdowns != 1 {
		t.Errorf("got %d Shutdown calls, want 1", shutdowns)
	}
}
