package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/sim"
	"github.com/memval/memval/scenarios"
)

// growingDevice is the simulated node whose used memory grows by grow
// bytes from the second query on: what NVML shows while the probe holds
// its context.
type growingDevice struct {
	profiler.Device
	grow    uint64
	queries int
}

func (d *growingDevice) Memory(gpu int) (profiler.Memory, error) {
	m, err := d.Device.Memory(gpu)
	d.queries++
	if d.queries > 1 {
		m.Used += d.grow
	}
	return m, err
}

func simDevice(t *testing.T) profiler.Device {
	t.Helper()
	d, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// shProbe is a probe that prints reply (a JSON line, with
// $CUDA_VISIBLE_DEVICES expanded) and then waits for its stdin to close.
func shProbe(t *testing.T, script string) contextProbe {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return contextProbe{argv: []string{sh, "-c", script}}
}

const okReply = `echo "{\"torch\": \"2.5.1\", \"cuda\": \"12.4\", \"name\": \"$CUDA_VISIBLE_DEVICES\", \"allocated\": 512, \"reserved\": 2097152, \"module_loading\": \"LAZY\"}"; cat >/dev/null`

func TestMeasureContextArithmetic(t *testing.T) {
	for _, tc := range []struct {
		grow, want uint64
	}{
		{500<<20 + 2<<20, 500 << 20},
		{2<<20 + 1, 1},
		{(1 << 30) + 2<<20, 1 << 30},
	} {
		dev := &growingDevice{Device: simDevice(t), grow: tc.grow}
		gpus, _ := dev.GPUs()
		cf, err := measureContext(context.Background(), dev, gpus[3], shProbe(t, okReply))
		if err != nil {
			t.Fatalf("grow %d: %v", tc.grow, err)
		}
		if cf.ContextBytes != tc.want || cf.UsedAfterBytes-cf.UsedBeforeBytes != tc.grow || cf.TorchReservedBytes != 2<<20 {
			t.Errorf("grow %d: got %+v, want context %d", tc.grow, cf, tc.want)
		}
		if cf.GPU != "NVIDIA H100 80GB HBM3" || cf.Torch != "2.5.1" || cf.CUDA != "12.4" || cf.ModuleLoading != "LAZY" || cf.Driver == "" || cf.UUID != gpus[3].UUID {
			t.Errorf("got %+v", cf)
		}
		if err := cf.Check(); err != nil {
			t.Error(err)
		}
		if dev.queries != 2 {
			t.Errorf("got %d memory queries, want 2 (before, during)", dev.queries)
		}
	}
}

// TestMeasureContextVisibleDevice: the probe sees only the measured GPU,
// by UUID.
func TestMeasureContextVisibleDevice(t *testing.T) {
	dev := &growingDevice{Device: simDevice(t), grow: 300 << 20}
	gpus, _ := dev.GPUs()
	probe := shProbe(t, `echo "{\"error\": \"show\", \"detail\": \"$CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER\"}"; cat >/dev/null`)
	var stderrSeen string
	if _, err := measureContext(context.Background(), dev, gpus[2], probe); err != nil {
		stderrSeen = err.Error()
	}
	if want := gpus[2].UUID + " PCI_BUS_ID"; gpus[2].UUID == "" || !strings.Contains(stderrSeen, want) {
		t.Errorf("got %q, want the probe to see CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER %q", stderrSeen, want)
	}
}

func TestMeasureContextErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grow  uint64
		probe []string
		want  []string
	}{
		{"no torch", 1 << 30, []string{"sh", "-c", `echo '{"error": "no_torch", "detail": "ModuleNotFoundError"}'; exit 3`},
			[]string{"PyTorch is not importable", scenarios.PythonEnv, "pip install torch", "--device sim"}},
		{"no cuda", 1 << 30, []string{"sh", "-c", `echo '{"error": "no_cuda", "detail": "torch 2.5.1 (CUDA None): torch.cuda.is_available() is False"}'; exit 4`},
			[]string{"is_available() is False", "CUDA build of PyTorch", "NVIDIA driver", "--device sim"}},
		{"no interpreter", 1 << 30, []string{"/nonexistent/python3", "-c", "pass"},
			[]string{"cannot run /nonexistent/python3", scenarios.PythonEnv}},
		{"crash", 1 << 30, []string{"sh", "-c", `echo 'Traceback: boom' >&2; exit 1`},
			[]string{"printed no reply", "Traceback: boom"}},
		{"not json", 1 << 30, []string{"sh", "-c", `echo 'hello'; cat >/dev/null`},
			[]string{"printed no reply", "hello"}},
		{"used did not grow", 0, []string{"sh", "-c", okReply},
			[]string{"used memory went from", "idle GPU"}},
		{"exit after reply", 1 << 30, []string{"sh", "-c", `echo '{"torch": "2.5.1", "reserved": 2097152}'; exit 7`},
			[]string{"exited with", "7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath("sh"); err != nil {
				t.Skip("no sh")
			}
			dev := &growingDevice{Device: simDevice(t), grow: tc.grow}
			gpus, _ := dev.GPUs()
			_, err := measureContext(context.Background(), dev, gpus[0], contextProbe{argv: tc.probe})
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestMeasureContextRealPython runs the real probe script with
// $MEMVAL_PYTHON against the simulated device: without torch or without
// CUDA it must say which; with both, the sim's used memory does not grow,
// and it must say that.
func TestMeasureContextRealPython(t *testing.T) {
	py := scenarios.Python()
	if _, err := exec.LookPath(py); err != nil {
		t.Skipf("no %s", py)
	}
	dev := simDevice(t)
	gpus, _ := dev.GPUs()
	_, err := measureContext(context.Background(), dev, gpus[0], contextProbe{})
	if err == nil {
		t.Fatal("measured a context on the simulated device")
	}
	msg := err.Error()
	if !strings.Contains(msg, "PyTorch is not importable") && !strings.Contains(msg, "is_available() is False") && !strings.Contains(msg, "used memory went from") {
		t.Errorf("unclear error: %v", err)
	}
	t.Log(msg)
}

func runDevicesWith(t *testing.T, opts *devicesOptions, args ...string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	opts.streams = streams{in: strings.NewReader(""), out: &out, err: &errw}
	c := newDevicesCmdWith(opts)
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errw)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.ExecuteContext(context.Background())
	return out.String(), errw.String(), err
}

// TestDevicesMeasureContextWriteAndEstimate: --measure-context --write
// FILE, then estimate --context FILE uses the measured figure, with its
// source.
func TestDevicesMeasureContextWriteAndEstimate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "context.json")
	dev := &growingDevice{Device: simDevice(t), grow: 412<<20 + 2<<20}
	opts := &devicesOptions{probe: shProbe(t, okReply), open: func() (profiler.Device, []string, error) { return dev, nil, nil }}
	out, _, err := runDevicesWith(t, opts, "--measure-context", "--gpu", "1", "--write", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"CUDA context on GPU 1", "412.00 MiB", "torch 2.5.1", "2.00 MiB reserved", "memval estimate --context " + file} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	cf, err := analytic.ReadContextFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if cf.ContextBytes != 412<<20 {
		t.Errorf("file holds %d B, want 412 MiB", cf.ContextBytes)
	}
	code, jsonOut, errw := runCLI(t, "estimate", "--model", "gpt2", "--batch", "8", "--seq", "1024", "--context", file, "--json")
	if code != 0 {
		t.Fatalf("estimate --context FILE: exit %d, %s", code, errw)
	}
	if !strings.Contains(jsonOut, `"kind": "measured"`) || !strings.Contains(jsonOut, "memval devices --measure-context on NVIDIA H100 80GB HBM3") || !strings.Contains(jsonOut, `"bytes": 432013312`) {
		t.Errorf("estimate JSON lacks the measured context:\n%s", jsonOut)
	}
	// --json prints the file's figures.
	dev.queries = 0
	out, _, err = runDevicesWith(t, &devicesOptions{probe: shProbe(t, okReply), open: func() (profiler.Device, []string, error) { return dev, nil, nil }}, "--measure-context", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got analytic.ContextFile
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.ContextBytes != 412<<20 {
		t.Errorf("--json: got %+v (%v) from %s", got, err, out)
	}
}

func TestDevicesMeasureContextUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"devices", "--device", "sim", "--measure-context"}, "needs a real GPU"},
		{[]string{"devices", "--write", "x.json"}, "go with --measure-context"},
		{[]string{"devices", "--gpu", "2"}, "go with --measure-context"},
	} {
		code, _, errw := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errw, tc.want) {
			t.Errorf("%v: got exit %d, stderr %q; want 2 and %q", tc.args, code, errw, tc.want)
		}
	}
	dev := simDevice(t)
	_, _, err := runDevicesWith(t, &devicesOptions{probe: shProbe(t, okReply), open: func() (profiler.Device, []string, error) { return dev, nil, nil }}, "--measure-context", "--gpu", "9")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--gpu 9: the device has 8 GPUs") {
		t.Errorf("--gpu 9: got %v", err)
	}
}
