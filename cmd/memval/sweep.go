package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/memval/memval/scenarios"
)

// sweepOptions are `memval sweep`'s arguments and flags.
type sweepOptions struct {
	grid string
	out  string
	jobs int
	measureOptions
	cluster clusterOptions

	streams streams
}

func newSweepCmd(s streams) *cobra.Command { return newSweepCmdWith(s, runSweep) }

// newSweepCmdWith builds the command with run as its behaviour, so that tests
// can check flag parsing apart from it.
func newSweepCmdWith(s streams, run func(context.Context, *sweepOptions) error) *cobra.Command {
	opts := &sweepOptions{streams: s}
	c := &cobra.Command{
		Use:   "sweep GRID",
		Short: "Validate every scenario of a grid, resumably",
		Long: `sweep expands a grid (a YAML file listing spec files and/or a base spec with
axes to vary, see scenarios/README.md) and validates each scenario in a
folder of its own, OUT/<scenario>/ (trace.csv, events.jsonl, result.json).

Each result.json is written atomically as its scenario ends. Scenarios with
a complete result (result.json valid with a final verdict, trace.csv whole)
are skipped, so an interrupted sweep resumes where it stopped (delete a
result.json to run that scenario again; interrupted, errored and incomplete
ones are always rerun). Sweeps may share --out, on one machine or several
over a shared file system with file locks: each scenario is claimed with a
lock the kernel releases when its holder dies, so no two sweeps run the
same one. --shard K/N runs part K (0..N-1) of the grid (scenario i when
i mod N is K), for one task of a cluster job; --emit slurm or --emit k8s
writes that job instead of running: a Slurm job array script or a
Kubernetes Indexed Job manifest, N tasks of one GPU each sharing --out.
Any later sweep of the grid into --out completes what a shard left; merge
by reading the folder (memval fit OUT). Ctrl-C marks the running scenario interrupted and stops.
Failures and out-of-memory runs are results.

Exit codes: 0 when every scenario has a result (misses included: see the
table), 1 when memval could not run some, 130 when interrupted, 2 for bad
input.`,
		Example: `  memval sweep scenarios/grids/ci.yaml --device sim --out out/ci
  memval sweep scenarios/grids/starter.yaml --out results/h100/$(date +%F)
  memval sweep scenarios/grids/starter.yaml --out /shared/h100 --emit slurm --shards 8 > sweep.sbatch`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.grid = args[0]
			return run(c.Context(), opts)
		},
	}
	f := c.Flags()
	opts.measureOptions.bind(f, "the formula judged (default: each spec's, else breakdown)",
		"relative peak error that passes, e.g. 0.1 or 10% (default: each spec's)")
	f.StringVar(&opts.out, "out", "", "the sweep's folder, one subfolder per scenario (default out/<grid name>)")
	f.IntVar(&opts.jobs, "jobs", 1, "scenarios run at once (keep 1 on a real GPU: runs would share its memory)")
	opts.cluster.bind(c)
	return c
}

func runSweep(ctx context.Context, opts *sweepOptions) error {
	if opts.jobs < 1 || opts.jobs > maxJobs {
		return usagef("--jobs %d: give 1 to %d", opts.jobs, maxJobs)
	}
	vo, err := opts.scenarioOptions(opts.streams.err)
	if err != nil {
		return err
	}
	grid, err := scenarios.LoadGrid(opts.grid)
	if err != nil {
		return asUsage(err)
	}
	specs, err := grid.Expand()
	if err != nil {
		return asUsage(err)
	}
	for _, s := range specs { // bad models fail here, before anything runs
		if _, _, err := s.Resolve(); err != nil {
			return asUsage(fmt.Errorf("%s: %w", opts.grid, err))
		}
	}
	out := opts.out
	if out == "" {
		out = filepath.Join("out", grid.Name)
	}
	if opts.cluster.emit != "" {
		return opts.cluster.write(opts.streams.out, grid.Name, opts.grid, out, len(specs))
	}
	all := len(specs)
	if specs, err = opts.cluster.select_(specs); err != nil {
		return err
	}
	errw := opts.streams.err
	bar := newSweepProgress(errw, isTerminal(errw))
	if opts.cluster.shard != "" {
		fmt.Fprintf(errw, "sweep %s shard %s: %d of %d scenario(s) into %s\n", grid.Name, opts.cluster.shard, len(specs), all, out)
	} else {
		fmt.Fprintf(errw, "sweep %s: %d scenario(s) into %s\n", grid.Name, len(specs), out)
	}
	rep, err := scenarios.Sweep(ctx, specs, scenarios.SweepOptions{
		OutDir:   out,
		Jobs:     opts.jobs,
		Validate: vo,
		Progress: bar.update,
	})
	bar.done()
	if err != nil {
		return err
	}
	if rep.Skipped > 0 {
		fmt.Fprintf(errw, "skipped %d scenario(s) already done in %s (delete a result.json to run it again)\n", rep.Skipped, out)
	}
	if err := rep.WriteSummary(opts.streams.out); err != nil {
		return err
	}
	switch {
	case rep.Interrupted:
		return &exitCodeError{code: scenarios.ExitInterrupted, msg: fmt.Sprintf("interrupted: finished results are kept in %s; run the same command to resume", out)}
	case rep.Counts()[scenarios.VerdictError] > 0:
		var names []string
		for _, e := range rep.Entries {
			if e.Status == scenarios.VerdictError {
				msg := "see its result.json"
				if e.Err != nil {
					msg = oneLine(e.Err.Error())
				}
				names = append(names, e.Name+": "+msg)
			}
		}
		return errors.New("could not run " + strings.Join(names, "; "))
	}
	return nil
}

// sweepProgress shows a sweep's progress: a bar redrawn in place on a
// terminal, one line per finished scenario otherwise.
type sweepProgress struct {
	w        io.Writer
	terminal bool
	drawn    bool
}

func newSweepProgress(w io.Writer, terminal bool) *sweepProgress {
	return &sweepProgress{w: w, terminal: terminal}
}

const sweepBarWidth = 30

func (p *sweepProgress) update(u scenarios.SweepUpdate) {
	e := u.Entry
	if e.Skipped {
		return // counted in the closing line
	}
	if !p.terminal {
		if e.Status == scenarios.StatusRunning {
			return
		}
		fmt.Fprintf(p.w, "[%d/%d] %s\n", u.Done, u.Total, sweepEntryLine(e))
		return
	}
	filled := 0
	if u.Total > 0 {
		filled = u.Done * sweepBarWidth / u.Total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", sweepBarWidth-filled)
	if e.Status != scenarios.StatusRunning {
		// Keep finished scenarios on the screen above the bar.
		fmt.Fprintf(p.w, "\r\x1b[K%s\n", sweepEntryLine(e))
	}
	fmt.Fprintf(p.w, "\r\x1b[K[%s] %d/%d %s", bar, u.Done, u.Total, e.Name)
	p.drawn = true
}

func (p *sweepProgress) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// sweepEntryLine describes a finished scenario in one line.
func sweepEntryLine(e scenarios.Entry) string {
	line := e.Name + ": " + e.Status
	if e.Result != nil && e.Result.Summary.PeakProcessBytes > 0 {
		line += fmt.Sprintf(", peak %.2f GiB", float64(e.Result.Summary.PeakProcessBytes)/(1<<30))
	}
	if e.Verdict != nil && e.Verdict.Message != "" {
		line += " (" + oneLine(e.Verdict.Message) + ")"
	}
	return line
}
