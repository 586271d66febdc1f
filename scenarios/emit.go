package scenarios

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// EmitOptions describe a sweep run as N shards on a cluster, one GPU each
// (memval sweep --emit).
type EmitOptions struct {
	Name   string   // the job's name (the grid's)
	Grid   string   // the grid file, as the jobs see it
	Out    string   // the shared output folder, as the jobs see it
	Shards int      // N
	Memval string   // the memval command in the job ("memval" when empty)
	Args   []string // further sweep flags, e.g. --device nvml
	// Kubernetes: the container image, the PersistentVolumeClaim holding
	// the output folder (mounted at Out) and the working folder.
	Image, PVC, WorkDir string
}

func (o EmitOptions) check() error {
	switch {
	case o.Shards < 1 || o.Shards > MaxShards:
		return fmt.Errorf("emit: %d shards: give 1 to %d", o.Shards, MaxShards)
	case o.Grid == "" || o.Out == "":
		return fmt.Errorf("emit: the grid and the output folder are required")
	}
	return nil
}

func (o EmitOptions) memval() string {
	if o.Memval == "" {
		return "memval"
	}
	return o.Memval
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	if s != "" && regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jobName is s as a Kubernetes object name and Slurm job name: lower
// case letters, digits and '-', at most 50 characters.
func jobName(s string) string {
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if len(s) > 50 {
		s = strings.Trim(s[:50], "-")
	}
	if s == "" {
		s = "sweep"
	}
	return "memval-" + s
}

// EmitSlurm writes a Slurm job array script: task i of 0..N-1 runs
// `memval sweep GRID --out OUT --shard i/N` on one GPU. All tasks share
// OUT (on a shared file system); a rerun of the script, or any sweep of
// the grid into OUT, completes what a task left.
func EmitSlurm(w io.Writer, o EmitOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	if strings.ContainsAny(o.Out, " \t\n\"'") {
		return fmt.Errorf("emit slurm: output folder %q has blanks or quotes, which #SBATCH --output cannot take; choose a folder without them", o.Out)
	}
	var b strings.Builder
	name := jobName(o.Name)
	fmt.Fprintf(&b, "#!/bin/bash\n")
	fmt.Fprintf(&b, "# %s: memval sweep of %s as %d shards, one GPU each, into %s.\n", name, o.Grid, o.Shards, o.Out)
	fmt.Fprintf(&b, "# Submit with: mkdir -p %s && sbatch %s.sbatch   (written by memval sweep --emit slurm; the log folder must exist)\n", shQuote(o.Out), name)
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", name)
	fmt.Fprintf(&b, "#SBATCH --array=0-%d\n", o.Shards-1)
	fmt.Fprintf(&b, "#SBATCH --ntasks=1\n")
	fmt.Fprintf(&b, "#SBATCH --gpus-per-task=1\n")
	fmt.Fprintf(&b, "#SBATCH --cpus-per-task=4\n")
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", path.Join(o.Out, "slurm-%A_%a.log"))
	fmt.Fprintf(&b, "set -euo pipefail\n")
	fmt.Fprintf(&b, "mkdir -p %s\n", shQuote(o.Out))
	fmt.Fprintf(&b, "MEMVAL=\"${MEMVAL:-%s}\"\n", o.memval())
	fmt.Fprintf(&b, "exec \"$MEMVAL\" sweep %s --out %s --shard \"${SLURM_ARRAY_TASK_ID}/%d\"", shQuote(o.Grid), shQuote(o.Out), o.Shards)
	for _, a := range o.Args {
		b.WriteString(" " + shQuote(a))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// EmitK8s writes a Kubernetes Indexed Job: N completions, all at once,
// pod i running `memval sweep GRID --out OUT --shard i/N` with one
// nvidia.com/gpu, OUT on a shared PersistentVolumeClaim.
func EmitK8s(w io.Writer, o EmitOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.Image == "" {
		o.Image = "memval:latest"
	}
	if o.PVC == "" {
		o.PVC = "memval-results"
	}
	if o.WorkDir == "" {
		o.WorkDir = "/memval"
	}
	mount := o.Out
	if !path.IsAbs(mount) {
		mount = path.Join(o.WorkDir, mount)
	}
	args := []string{"sweep", o.Grid, "--out", o.Out, "--shard", fmt.Sprintf("$(JOB_INDEX)/%d", o.Shards)}
	args = append(args, o.Args...)
	q := func(s string) string { return fmt.Sprintf("%q", s) } // a JSON string is a YAML flow scalar
	var b strings.Builder
	name := jobName(o.Name)
	fmt.Fprintf(&b, "# %s: memval sweep of %s as %d shards, one GPU each, into %s.\n", name, o.Grid, o.Shards, o.Out)
	fmt.Fprintf(&b, "# Apply with: kubectl apply -f %s.yaml   (written by memval sweep --emit k8s)\n", name)
	fmt.Fprintf(&b, "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\n", name)
	fmt.Fprintf(&b, "spec:\n  completionMode: Indexed\n  completions: %d\n  parallelism: %d\n  backoffLimit: %d\n", o.Shards, o.Shards, 2*o.Shards)
	fmt.Fprintf(&b, "  template:\n    spec:\n      restartPolicy: Never\n      containers:\n")
	fmt.Fprintf(&b, "        - name: memval\n          image: %s\n          workingDir: %s\n", q(o.Image), q(o.WorkDir))
	fmt.Fprintf(&b, "          command: [%s]\n", q(o.memval()))
	fmt.Fprintf(&b, "          args:\n")
	for _, a := range args {
		fmt.Fprintf(&b, "            - %s\n", q(a))
	}
	fmt.Fprintf(&b, "          env:\n            - name: JOB_INDEX\n              valueFrom:\n                fieldRef:\n")
	fmt.Fprintf(&b, "                  fieldPath: \"metadata.annotations['batch.kubernetes.io/job-completion-index']\"\n")
	fmt.Fprintf(&b, "          resources:\n            limits:\n              nvidia.com/gpu: 1\n")
	fmt.Fprintf(&b, "          volumeMounts:\n            - name: results\n              mountPath: %s\n", q(mount))
	fmt.Fprintf(&b, "      volumes:\n        - name: results\n          persistentVolumeClaim:\n            claimName: %s\n", q(o.PVC))
	_, err := io.WriteString(w, b.String())
	return err
}
