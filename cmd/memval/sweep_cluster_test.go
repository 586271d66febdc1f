package main

import (
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSweepShardAndEmit(t *testing.T) {
	grid := filepath.Join("..", "..", "scenarios", "grids", "ci.yaml")
	code, out, errw := runCLI(t, "sweep", grid, "--device", "sim", "--emit", "k8s", "--shards", "3", "--out", "res")
	if code != 0 {
		t.Fatalf("emit k8s: exit %d, %s", code, errw)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil || m["kind"] != "Job" || !strings.Contains(out, `"$(JOB_INDEX)/3"`) || !strings.Contains(out, `"--device=sim"`) {
		t.Errorf("emit k8s: %v\n%s", err, out)
	}
	code, out, _ = runCLI(t, "sweep", grid, "--emit", "slurm", "--shards", "2", "--out", "res")
	if code != 0 || !strings.Contains(out, "#SBATCH --array=0-1") || !strings.Contains(out, `--shard "${SLURM_ARRAY_TASK_ID}/2"`) {
		t.Errorf("emit slurm: exit %d\n%s", code, out)
	}
	for _, c := range []struct{ args, want string }{
		{"--emit pbs", `--emit "pbs"`},
		{"--shard 2/2", "use 0 to 1"},
		{"--emit slurm --shard 0/2", "exclusive"},
	} {
		code, _, errw := runCLI(t, append([]string{"sweep", grid, "--device", "sim", "--out", t.TempDir()}, strings.Fields(c.args)...)...)
		if code != 2 || !strings.Contains(errw, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.args, code, errw, c.want)
		}
	}
	dir := t.TempDir()
	code, _, errw = runCLI(t, "sweep", grid, "--device", "sim", "--out", dir, "--shard", "1/3")
	if code != 0 || !strings.Contains(errw, "shard 1/3:") {
		t.Errorf("shard run: exit %d, stderr %q", code, errw)
	}
}
