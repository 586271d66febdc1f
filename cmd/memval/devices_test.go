package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDevicesFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		device string
		json   bool
	}{
		{nil, "auto", false},
		{[]string{"--device", "sim"}, "sim", false},
		{[]string{"--device=nvml", "--json"}, "nvml", true},
	} {
		c := newDevicesCmd(streams{})
		if err := c.ParseFlags(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		device, _ := c.Flags().GetString("device")
		asJSON, _ := c.Flags().GetBool("json")
		if device != tc.device || asJSON != tc.json {
			t.Errorf("%v: got device %q json %v, want %q %v", tc.args, device, asJSON, tc.device, tc.json)
		}
	}
}

func TestDevicesSimTable(t *testing.T) {
	code, out, errw := runCLI(t, "devices", "--device", "sim")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	if n := strings.Count(out, "NVIDIA H100 80GB HBM3"); n != 8 {
		t.Errorf("got %d H100 lines, want 8:\n%s", n, out)
	}
	for _, want := range []string{"SIMULATED", "driver 550.54.15", "NVML 12.550.54.15", "CUDA 12.4", "memory query: v2", "80.00 GiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errw, "not measurements") {
		t.Errorf("stderr lacks the simulated-device notice: %q", errw)
	}
}

func TestDevicesSimJSON(t *testing.T) {
	code, out, errw := runCLI(t, "devices", "--device", "sim", "--json")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	var rep devicesReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if rep.Device != "sim" || !rep.Simulated || rep.MemoryInfoVersion != 2 || rep.Versions.CUDA != "12.4" {
		t.Errorf("got %+v", rep)
	}
	if len(rep.GPUs) != 8 {
		t.Fatalf("got %d GPUs, want 8", len(rep.GPUs))
	}
	for i, g := range rep.GPUs {
		if g.Index != i || g.Name != "NVIDIA H100 80GB HBM3" || g.TotalBytes != 80<<30 || g.ReservedBytes == 0 {
			t.Errorf("gpu %d: got %+v", i, g)
		}
	}
}

// TestDevicesAuto: without a driver (as on CI) auto lists the simulated
// node and says so loudly; with one it lists the real GPUs.
func TestDevicesAuto(t *testing.T) {
	code, out, errw := runCLI(t, "devices")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	if strings.Contains(out, "device: sim") && !strings.Contains(errw, "SIMULATED H100") {
		t.Errorf("fell back to the sim without the notice: stderr %q", errw)
	}
}

func TestDevicesBadDevice(t *testing.T) {
	code, _, errw := runCLI(t, "devices", "--device", "tpu")
	if code != exitUsage {
		t.Fatalf("got exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errw, `"tpu"`) || !strings.Contains(errw, "auto, nvml, sim or replay:FILE") {
		t.Errorf("got %q, want the value and the choices", errw)
	}
}
