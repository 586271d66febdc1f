package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/scenarios"
)

// contextProbeScript is run by $MEMVAL_PYTHON on the GPU to measure: it
// creates the CUDA context and one 1-element tensor, prints one JSON line,
// and holds both until its stdin closes, while memval reads the GPU's NVML
// used memory.
const contextProbeScript = `import json, os, sys
def out(d):
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()
try:
    import torch
except Exception as e:
    out({"error": "no_torch", "detail": repr(e)})
    sys.exit(3)
if not torch.cuda.is_available():
    out({"error": "no_cuda", "detail": "torch %s (CUDA %s): torch.cuda.is_available() is False" % (torch.__version__, torch.version.cuda)})
    sys.exit(4)
torch.cuda.init()
x = torch.ones(1, device="cuda")
torch.cuda.synchronize()
out({"torch": torch.__version__, "cuda": torch.version.cuda or "", "name": torch.cuda.get_device_name(0),
     "allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
     "module_loading": os.environ.get("CUDA_MODULE_LOADING", "")})
sys.stdin.read()
`

// probeReply is the probe's JSON line.
type probeReply struct {
	Error         string `json:"error"`
	Detail        string `json:"detail"`
	Torch         string `json:"torch"`
	CUDA          string `json:"cuda"`
	Name          string `json:"name"`
	Allocated     uint64 `json:"allocated"`
	Reserved      uint64 `json:"reserved"`
	ModuleLoading string `json:"module_loading"`
}

// contextProbe says how to run the probe: argv (nil: $MEMVAL_PYTHON -c
// contextProbeScript) and how long to wait for its reply.
type contextProbe struct {
	argv    []string
	timeout time.Duration
}

func (p contextProbe) command() []string {
	if p.argv != nil {
		return p.argv
	}
	return []string{scenarios.Python(), "-c", contextProbeScript}
}

// measureContext measures a bare CUDA context on gpu of dev: NVML used
// before the probe starts, and again while the probe holds its context
// and tensor; the difference less the tensor's reserved segment is the
// context. The GPU should be otherwise idle: another process's
// allocations in between count as context.
func measureContext(ctx context.Context, dev profiler.Device, gpu profiler.GPU, probe contextProbe) (analytic.ContextFile, error) {
	var cf analytic.ContextFile
	before, err := dev.Memory(gpu.Index)
	if err != nil {
		return cf, fmt.Errorf("measure context: gpu %d memory before the probe: %w", gpu.Index, err)
	}
	timeout := probe.timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := probe.command()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	visible := strconv.Itoa(gpu.Index)
	if gpu.UUID != "" {
		visible = gpu.UUID
	}
	cmd.Env = append(os.Environ(), "CUDA_VISIBLE_DEVICES="+visible, "CUDA_DEVICE_ORDER=PCI_BUS_ID")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return cf, fmt.Errorf("measure context: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return cf, fmt.Errorf("measure context: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return cf, fmt.Errorf("measure context: cannot run %s (set %s to a Python with PyTorch built for CUDA, e.g. pip install torch): %w", argv[0], scenarios.PythonEnv, err)
	}
	line, readErr := bufio.NewReader(stdout).ReadBytes('\n')
	var after profiler.Memory
	var afterErr error
	if readErr == nil {
		after, afterErr = dev.Memory(gpu.Index) // while the probe holds its context
	}
	_ = stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return cf, fmt.Errorf("measure context: the probe (%s) did not finish within %s", argv[0], timeout)
	}
	var rep probeReply
	if readErr != nil || json.Unmarshal(line, &rep) != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = "..." + msg[len(msg)-600:]
		}
		return cf, fmt.Errorf("measure context: the probe (%s) printed no reply (%v, stdout %q); its stderr: %s", argv[0], waitErr, strings.TrimSpace(string(line)), msg)
	}
	switch rep.Error {
	case "":
	case "no_torch":
		return cf, fmt.Errorf("measure context: PyTorch is not importable with %s=%s (%s): install it (pip install torch, built for CUDA) or point %s at a Python that has it; --device sim lists the simulated node but cannot measure a context", scenarios.PythonEnv, argv[0], rep.Detail, scenarios.PythonEnv)
	case "no_cuda":
		return cf, fmt.Errorf("measure context: %s: install a CUDA build of PyTorch and an NVIDIA driver; --device sim lists the simulated node but cannot measure a context", rep.Detail)
	default:
		return cf, fmt.Errorf("measure context: the probe failed: %s: %s", rep.Error, rep.Detail)
	}
	if afterErr != nil {
		return cf, fmt.Errorf("measure context: gpu %d memory while the probe ran: %w", gpu.Index, afterErr)
	}
	if waitErr != nil {
		return cf, fmt.Errorf("measure context: the probe exited with %w; its stderr: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	if after.Used < before.Used || after.Used-before.Used < rep.Reserved {
		return cf, fmt.Errorf("measure context: gpu %d's used memory went from %d to %d B while the probe held %d B reserved: another process freed memory meanwhile, or the probe ran on another GPU; measure on an idle GPU",
			gpu.Index, before.Used, after.Used, rep.Reserved)
	}
	cf = analytic.ContextFile{
		ContextBytes: after.Used - before.Used - rep.Reserved,
		GPU:          gpu.Name, UUID: gpu.UUID, Driver: dev.Versions().Driver,
		CUDA: rep.CUDA, Torch: rep.Torch, ModuleLoading: rep.ModuleLoading,
		UsedBeforeBytes: before.Used, UsedAfterBytes: after.Used, TorchReservedBytes: rep.Reserved,
		MeasuredAt: time.Now().UTC().Format(time.RFC3339),
	}
	if cf.GPU == "" {
		cf.GPU = rep.Name
	}
	if err := cf.Check(); err != nil {
		return cf, fmt.Errorf("measure context: %w", err)
	}
	return cf, nil
}

// writeContextFile writes cf as JSON to path.
func writeContextFile(path string, cf analytic.ContextFile) error {
	data, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return fmt.Errorf("context file: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--write: %w", err)
	}
	return nil
}

// errNotMeasurable is the refusal to measure a context on a device that
// is not a real GPU.
var errNotMeasurable = errors.New("--measure-context needs a real GPU (--device nvml): the simulated device (--device sim) and replays cannot measure a CUDA context")

// runMeasureContext is `memval devices --measure-context`.
func runMeasureContext(ctx context.Context, dev profiler.Device, opts *devicesOptions) error {
	if dev.Kind() != "nvml" && opts.open == nil {
		return asUsage(errNotMeasurable)
	}
	gpus, err := dev.GPUs()
	if err != nil {
		return fmt.Errorf("list gpus: %w", err)
	}
	var gpu *profiler.GPU
	for i := range gpus {
		if gpus[i].Index == opts.gpu {
			gpu = &gpus[i]
		}
	}
	if gpu == nil {
		return asUsage(fmt.Errorf("--gpu %d: the device has %d GPUs (indices 0 to %d); see memval devices", opts.gpu, len(gpus), len(gpus)-1))
	}
	cf, err := measureContext(ctx, dev, *gpu, opts.probe)
	if err != nil {
		return err
	}
	if opts.write != "" {
		if err := writeContextFile(opts.write, cf); err != nil {
			return err
		}
	}
	if opts.json {
		enc := json.NewEncoder(opts.streams.out)
		enc.SetIndent("", "  ")
		return enc.Encode(cf)
	}
	mib := func(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(opts.streams.out, "CUDA context on GPU %d (%s, driver %s, torch %s, CUDA %s, module loading %s): %s\n",
		gpu.Index, cf.GPU, cf.Driver, cf.Torch, cf.CUDA, cf.ModuleLoading, mib(cf.ContextBytes))
	fmt.Fprintf(opts.streams.out, "NVML used %s before, %s with the context and a 1-element tensor (%s reserved by torch)\n",
		mib(cf.UsedBeforeBytes), mib(cf.UsedAfterBytes), mib(cf.TorchReservedBytes))
	if opts.write != "" {
		fmt.Fprintf(opts.streams.out, "wrote %s: use it with memval estimate --context %s\n", opts.write, opts.write)
	}
	return nil
}
