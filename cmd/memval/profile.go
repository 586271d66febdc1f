package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/metrics"
	"github.com/memval/memval/profiler/schema"
	"github.com/memval/memval/profiler/sim"
)

// profileOptions are the flags of memval profile.
type profileOptions struct {
	device   string
	interval time.Duration
	out      string
	gpu      int
	json     bool

	simModel     string
	simBatch     int
	simSeq       int
	simPrecision string
	simSteps     int
	simSeed      int64
	simRanks     int
	metrics      string

	command []string
}

func newProfileCmd(s streams) *cobra.Command {
	opts := &profileOptions{}
	cmd := &cobra.Command{
		Use:   "profile [flags] -- CMD [ARGS...]",
		Short: "Record GPU memory over time while a program runs",
		Long: `profile runs CMD, samples the memory of every GPU (and of CMD's process tree)
every --interval, and leaves three files in --out: trace.csv (every sample),
events.jsonl (what the program reported on the side channel named by
$MEMVAL_EVENTS) and result.json (the summary). It prints the baseline before
the start, the peak (device and process tree) and when it happened, the
steady level between steps, the duration, samples and gaps, and the exit
status. memval exits with CMD's exit code.

--device auto uses NVML and falls back, loudly, to the simulated H100 when
there is no NVIDIA driver. With --device sim or replay:FILE, CMD may be left
out: the simulated training process (--sim-* flags) or the replayed run is
then the workload. The summary goes to stderr; --json writes result.json to
stdout (and CMD's stdout to stderr).`,
		Example: `  memval profile -- python3 scenarios/train.py --job out/job.json
  memval profile --device sim --sim-batch 16
  memval profile --device replay:runs/20250101-120000/trace.csv --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			opts.command = args
			if err := opts.validate(); err != nil {
				return err
			}
			return runProfile(c.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.device, "device", "auto", "where readings come from: auto, nvml, sim or replay:FILE")
	f.DurationVar(&opts.interval, "interval", profiler.DefaultInterval, "sampling interval (Go duration, 100us to 1m)")
	f.StringVar(&opts.out, "out", "", "folder for trace.csv, events.jsonl and result.json (default: a new runs/<timestamp>)")
	f.IntVar(&opts.gpu, "gpu", -1, "GPU to summarise (-1: the busiest); every GPU is sampled")
	f.BoolVar(&opts.json, "json", false, "write result.json to stdout")
	f.StringVar(&opts.simModel, "sim-model", "gpt2", "simulated device: the model preset its process trains")
	f.IntVar(&opts.simBatch, "sim-batch", 8, "simulated device: micro-batch")
	f.IntVar(&opts.simSeq, "sim-seq", 1024, "simulated device: sequence length")
	f.StringVar(&opts.simPrecision, "sim-precision", "bf16", "simulated device: "+orList(model.Precisions()))
	f.IntVar(&opts.simSteps, "sim-steps", 10, "simulated device: training steps")
	f.Int64Var(&opts.simSeed, "sim-seed", 1, "simulated device: seed (same seed, same run)")
	f.IntVar(&opts.simRanks, "sim-ranks", 1, "simulated device: ranks of a torchrun-like job, one process per GPU (1 to 8)")
	f.StringVar(&opts.metrics, "metrics", "", "`ADDR` (host:port) to serve /metrics on in the Prometheus text format while sampling")
	return cmd
}

// validate checks the flags that need no device.
func (o *profileOptions) validate() error {
	switch {
	case o.device == "auto", o.device == "nvml", o.device == "sim":
	case strings.HasPrefix(o.device, "replay:") && len(o.device) > len("replay:"):
	default:
		return usagef("--device %q: want auto, nvml, sim or replay:FILE", o.device)
	}
	if o.interval < profiler.MinInterval || o.interval > maxInterval {
		return usagef("--interval %v: want %v to %v", o.interval, profiler.MinInterval, maxInterval)
	}
	if o.gpu < -1 {
		return usagef("--gpu %d: want a GPU index, or -1 for the busiest", o.gpu)
	}
	if len(o.command) == 0 && (o.device == "auto" || o.device == "nvml") {
		return usagef("no command to profile: give one after --, e.g. memval profile -- python3 train.py (only --device sim or replay:FILE run without one)")
	}
	if o.simRanks < 0 || o.simRanks > 8 { // 0, as 1: one process
		return usagef("--sim-ranks %d: the simulated node has 8 GPUs, give 1 to 8", o.simRanks)
	}
	if o.simBatch < 1 || o.simSeq < 1 || o.simSteps < 1 {
		return usagef("--sim-batch %d, --sim-seq %d, --sim-steps %d: want positive numbers", o.simBatch, o.simSeq, o.simSteps)
	}
	return o.checkSimRanges()
}

// simConfig is the simulated device's workload from the --sim-* flags.
func (o *profileOptions) simConfig() (sim.Config, error) {
	arch, err := model.Preset(o.simModel)
	if err != nil {
		return sim.Config{}, usagef("--sim-model: %w", err)
	}
	p := model.Precision(o.simPrecision)
	if !slices.Contains(model.Precisions(), o.simPrecision) {
		return sim.Config{}, usagef("--sim-precision %q: want %s", o.simPrecision, orList(model.Precisions()))
	}
	return sim.Config{
		Arch:     arch,
		Workload: model.Workload{Batch: o.simBatch, Seq: o.simSeq, Precision: p, Optimizer: model.AdamW},
		Steps:    o.simSteps,
		Seed:     o.simSeed,
		Ranks:    o.simRanks,
	}, nil
}

func runProfile(ctx context.Context, s streams, opts *profileOptions) error {
	cfg, err := opts.simConfig()
	if err != nil {
		return err
	}
	dev, notices, err := profiler.Open(opts.device, sim.Opener(cfg))
	if err != nil {
		if strings.HasPrefix(opts.device, "replay:") {
			return asUsage(err)
		}
		return err
	}
	defer dev.Close()
	if gpus, gerr := dev.GPUs(); gerr == nil {
		if err := profiler.CheckGPU(gpus, opts.gpu); err != nil {
			return usagef("--gpu %d: %w", opts.gpu, err)
		}
	}
	for _, n := range notices {
		fmt.Fprintf(s.err, "memval: NOTICE: %s\n", n)
	}
	out, err := runFolder(opts.out, time.Now())
	if err != nil {
		return err
	}
	var msrv *metrics.Server
	if opts.metrics != "" {
		if msrv, err = metrics.Listen(opts.metrics); err != nil {
			return asUsage(err)
		}
		defer msrv.Close()
		fmt.Fprintf(s.err, "memval: serving metrics at http://%s/metrics\n", msrv.Addr())
	}

	// Signals go to the program (Run forwards them); the command's context
	// is cancelled by the same signals, so Run gets one that is not.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	childOut := s.out
	if opts.json {
		childOut = s.err
	}
	ropts := profiler.RunOptions{
		Device: dev, Command: opts.command, Interval: opts.interval, OutDir: out,
		Stdin: s.in, Stdout: childOut, Stderr: s.err, GPU: opts.gpu,
		Signals: sigs, Tool: "memval " + version, Notices: notices,
	}
	if isTerminal(s.err) {
		ropts.Progress = s.err
	}
	if msrv != nil {
		ropts.Sampling = func(smp *profiler.Sampler) { msrv.Serve(smp) }
	}
	res, err := profiler.Run(context.WithoutCancel(ctx), ropts)
	if res == nil {
		return err
	}
	profiler.WriteSummary(s.err, res)
	fmt.Fprintf(s.err, "files:     %s\n", out)
	if opts.json {
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return fmt.Errorf("encode result: %w", jerr)
		}
		fmt.Fprintf(s.out, "%s\n", b)
	}
	if err != nil {
		return err
	}
	if res.Summary.Status == schema.StatusTraceIncomplete {
		return fmt.Errorf("trace.csv in %s is incomplete: %s", out, res.Summary.TraceError)
	}
	if code := res.Summary.ExitCode; code != 0 {
		if code < 0 || code > 255 {
			code = exitError
		}
		return &exitCodeError{code: code}
	}
	return nil
}

// runFolder returns dir, or a new runs/<timestamp> folder when dir is empty.
func runFolder(dir string, now time.Time) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base := filepath.Join("runs", now.Format("20060102-150405"))
	for i := 1; ; i++ {
		d := base
		if i > 1 {
			d = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.MkdirAll(filepath.Dir(d), 0o755)
		if err == nil {
			err = os.Mkdir(d, 0o755)
		}
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("create run folder: %w", err)
		}
	}
}
