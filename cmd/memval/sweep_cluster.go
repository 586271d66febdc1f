package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/memval/memval/scenarios"
)

// clusterOptions are sweep's flags for running a grid as shards on a
// cluster: --shard K/N runs one part; --emit writes the job that runs
// them all.
type clusterOptions struct {
	shard       string
	emit        string
	shards      int
	image, pvc  string
	memval      string
	passThrough []string // the sweep flags given, for the emitted command
	cmd         *cobra.Command
}

// emitSkip are the flags not passed on to the emitted command.
var emitSkip = map[string]bool{"shard": true, "emit": true, "shards": true, "image": true, "pvc": true, "memval": true, "out": true}

func (c *clusterOptions) bind(cmd *cobra.Command) {
	c.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&c.shard, "shard", "", "`K/N`: run only part K (0..N-1) of N of the grid; shards may share --out at the same time")
	f.StringVar(&c.emit, "emit", "", "write, instead of running, a cluster job running the grid as --shards shards: slurm (job array script) or k8s (Indexed Job manifest)")
	f.IntVar(&c.shards, "shards", 0, "with --emit: the number of shards, one GPU each (default: one per scenario)")
	f.StringVar(&c.image, "image", "memval:latest", "with --emit k8s: the container image holding memval, the grid and its specs")
	f.StringVar(&c.pvc, "pvc", "memval-results", "with --emit k8s: the PersistentVolumeClaim mounted at --out, shared by the pods")
	f.StringVar(&c.memval, "memval", "memval", "with --emit: the memval command in the job")
}

// select_ returns the specs of --shard (all without it).
func (c *clusterOptions) select_(specs []*scenarios.Spec) ([]*scenarios.Spec, error) {
	if c.shard == "" {
		return specs, nil
	}
	s, err := scenarios.ParseShard(c.shard)
	if err != nil {
		return nil, usagef("--%v", err)
	}
	return s.Select(specs), nil
}

// write emits the cluster job for a grid of n scenarios.
func (c *clusterOptions) write(w io.Writer, name, grid, out string, n int) error {
	if c.shard != "" {
		return usagef("--emit and --shard are exclusive: the emitted job passes --shard to each of its tasks")
	}
	shards := c.shards
	if shards == 0 {
		shards = n
	}
	if shards < 1 || shards > scenarios.MaxShards {
		return usagef("--shards %d: give 1 to %d", shards, scenarios.MaxShards)
	}
	var args []string
	c.cmd.Flags().Visit(func(f *pflag.Flag) {
		if !emitSkip[f.Name] {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	o := scenarios.EmitOptions{Name: name, Grid: grid, Out: out, Shards: shards, Memval: c.memval, Args: args, Image: c.image, PVC: c.pvc}
	switch c.emit {
	case "slurm":
		return scenarios.EmitSlurm(w, o)
	case "k8s":
		return scenarios.EmitK8s(w, o)
	}
	return usagef("--emit %q: use slurm or k8s", c.emit)
}
