package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/sim"
)

// devicesOptions are `memval devices`' flags.
type devicesOptions struct {
	device         string
	json           bool
	measureContext bool
	gpu            int
	write          string

	streams streams
	// probe and open are replaced by tests: the context probe's command,
	// and the device (nil: profiler.Open).
	probe contextProbe
	open  func() (profiler.Device, []string, error)
}

func newDevicesCmd(s streams) *cobra.Command { return newDevicesCmdWith(&devicesOptions{streams: s}) }

// newDevicesCmdWith is newDevicesCmd for opts (tests set opts.probe and
// opts.open).
func newDevicesCmdWith(opts *devicesOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "devices",
		Short: "List the GPUs memval can measure, with driver, NVML and CUDA versions",
		Long: `devices lists every GPU the selected device sees: index, name, total and
used memory, and the driver, NVML and CUDA versions, and says whether NVML's
v2 memory query (used and driver-reserved memory apart) works. Without an
NVIDIA driver, --device auto lists the simulated H100 node and says so.

--measure-context measures a bare CUDA context on a real GPU: it reads the
GPU's NVML used memory, runs $MEMVAL_PYTHON with PyTorch to create the
context and a 1-element tensor, reads used memory again while that process
holds them, and reports the growth less the tensor's reserved segment.
--write FILE keeps the measurement for memval estimate --context FILE.`,
		Example: `  memval devices
  memval devices --device sim --json
  memval devices --measure-context --gpu 0 --write context.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDevices(c.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.device, "device", "auto", "which device: "+profiler.DeviceChoices)
	c.Flags().BoolVar(&opts.json, "json", false, "print JSON instead of a table")
	c.Flags().BoolVar(&opts.measureContext, "measure-context", false, "measure a bare CUDA context on --gpu: runs $MEMVAL_PYTHON with PyTorch (torch.cuda.init() and a 1-element tensor) and reads NVML used memory before and during; the GPU should be idle")
	c.Flags().IntVar(&opts.gpu, "gpu", 0, "with --measure-context: the GPU's index")
	c.Flags().StringVar(&opts.write, "write", "", "with --measure-context: write the measured context to `FILE`, for memval estimate --context FILE")
	return c
}

// devicesReport is what `memval devices --json` prints.
type devicesReport struct {
	Device            string            `json:"device"`
	Simulated         bool              `json:"simulated"`
	Notices           []string          `json:"notices,omitempty"`
	Versions          profiler.Versions `json:"versions"`
	MemoryInfoVersion int               `json:"memory_info_version"` // 2: v2 works; 1: v1 only; 0: not NVML
	GPUs              []deviceGPUReport `json:"gpus"`
}

// deviceGPUReport is one GPU's line.
type deviceGPUReport struct {
	profiler.GPU
	UsedBytes     uint64 `json:"used_bytes"`
	ReservedBytes uint64 `json:"reserved_bytes"`
	MemoryError   string `json:"memory_error,omitempty"`
}

func runDevices(ctx context.Context, opts *devicesOptions) error {
	if !opts.measureContext && (opts.write != "" || opts.gpu != 0) {
		return asUsage(errors.New("--write and --gpu go with --measure-context"))
	}
	open := opts.open
	if open == nil {
		open = func() (profiler.Device, []string, error) { return profiler.Open(opts.device, sim.Opener(sim.Config{})) }
	}
	dev, notices, err := open()
	if errors.Is(err, profiler.ErrUnknownDevice) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	defer dev.Close()
	if opts.measureContext {
		return runMeasureContext(ctx, dev, opts)
	}
	gpus, err := dev.GPUs()
	if err != nil {
		return fmt.Errorf("list gpus: %w", err)
	}
	rep := devicesReport{Device: dev.Kind(), Simulated: dev.Kind() != "nvml", Notices: notices, Versions: dev.Versions()}
	for _, g := range gpus {
		line := deviceGPUReport{GPU: g}
		m, err := dev.Memory(g.Index)
		if err != nil {
			line.MemoryError = err.Error()
		} else {
			line.UsedBytes, line.ReservedBytes = m.Used, m.Reserved
			rep.MemoryInfoVersion = max(rep.MemoryInfoVersion, m.InfoVersion)
		}
		rep.GPUs = append(rep.GPUs, line)
	}
	for _, n := range notices {
		fmt.Fprintln(opts.streams.err, "memval: note:", n)
	}
	if opts.json {
		enc := json.NewEncoder(opts.streams.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printDevices(opts.streams, rep)
}

// memoryQueryText says in words which NVML memory query answers.
func memoryQueryText(v int) string {
	switch v {
	case 2:
		return "v2 (used and driver-reserved apart)"
	case 1:
		return "v1 only (used includes driver-reserved memory)"
	}
	return "not NVML"
}

func printDevices(s streams, rep devicesReport) error {
	dash := func(v string) string {
		if v == "" {
			return "-"
		}
		return v
	}
	kind := rep.Device
	if rep.Device == "sim" {
		kind += " (SIMULATED: not a measurement)"
	}
	fmt.Fprintf(s.out, "device: %s\n", kind)
	fmt.Fprintf(s.out, "driver %s, NVML %s, CUDA %s; memory query: %s\n",
		dash(rep.Versions.Driver), dash(rep.Versions.NVML), dash(rep.Versions.CUDA), memoryQueryText(rep.MemoryInfoVersion))
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tNAME\tTOTAL\tUSED\tRESERVED\tUUID")
	for _, g := range rep.GPUs {
		used, reserved := devicesGiB(g.UsedBytes), devicesGiB(g.ReservedBytes)
		if g.MemoryError != "" {
			used, reserved = "error: "+g.MemoryError, "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.Index, dash(g.Name), devicesGiB(g.TotalBytes), used, reserved, dash(g.UUID))
	}
	return tw.Flush()
}

// devicesGiB prints bytes as binary GiB, labelled.
func devicesGiB(b uint64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
