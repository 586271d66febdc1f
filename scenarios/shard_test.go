package scenarios

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

var updateEmit = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/4", Shard{0, 4}, ""},
		{"3/4", Shard{3, 4}, ""},
		{" 1 / 2 ", Shard{1, 2}, ""},
		{"0/1", Shard{0, 1}, ""},
		{"4/4", Shard{}, "use 0 to 3"},
		{"-1/4", Shard{}, "K counts from 0"},
		{"1/0", Shard{}, "N must be"},
		{"1", Shard{}, "write K/N"},
		{"a/b", Shard{}, "integers"},
	} {
		got, err := ParseShard(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, error containing %q", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/4", "3/4", "x", "1/", "/2", "99999/100000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err == nil && (sh.K < 0 || sh.K >= sh.N || sh.N > MaxShards) {
			t.Errorf("ParseShard(%q) = %v without error", s, sh)
		}
	})
}

// TestShardPartition: every scenario is in exactly one shard.
func TestShardPartition(t *testing.T) {
	specs := ciSpecs(t, 7)
	for n := 1; n <= 9; n++ {
		seen := map[string]int{}
		for k := 0; k < n; k++ {
			for _, s := range (Shard{k, n}).Select(specs) {
				seen[s.Name]++
			}
		}
		for _, s := range specs {
			if seen[s.Name] != 1 {
				t.Errorf("N %d: %s in %d shards", n, s.Name, seen[s.Name])
			}
		}
	}
}

// TestShardsShareFolder runs two shards into one folder at the same time:
// together they give the whole sweep, and a sweep of the whole grid
// afterwards runs nothing. Then one shard's results are removed and the
// whole-grid sweep completes them.
func TestShardsShareFolder(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 5)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k := 0; k < 2; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			_, errs[k] = Sweep(context.Background(), Shard{k, 2}.Select(specs), SweepOptions{OutDir: out, Validate: fastSim()})
		}(k)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ran != 0 || rep.Skipped != len(specs) {
		t.Errorf("after both shards: the whole sweep ran %d, skipped %d; want 0, %d", rep.Ran, rep.Skipped, len(specs))
	}
	for _, s := range (Shard{1, 2}).Select(specs) {
		if err := os.RemoveAll(filepath.Join(out, s.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err = Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim()}); err != nil {
		t.Fatal(err)
	}
	if want := len(Shard{1, 2}.Select(specs)); rep.Ran != want {
		t.Errorf("resume: ran %d, want shard 1/2's %d", rep.Ran, want)
	}
}

func TestEmit(t *testing.T) {
	o := EmitOptions{Name: "CI grid", Grid: "scenarios/grids/ci.yaml", Out: "out/ci", Shards: 4, Args: []string{"--device=nvml", "--tolerance=10%"}}
	for _, c := range []struct {
		name string
		emit func(*bytes.Buffer, EmitOptions) error
	}{
		{"slurm.sbatch", func(b *bytes.Buffer, o EmitOptions) error { return EmitSlurm(b, o) }},
		{"k8s.yaml", func(b *bytes.Buffer, o EmitOptions) error { return EmitK8s(b, o) }},
	} {
		var b bytes.Buffer
		if err := c.emit(&b, o); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "emit", c.name+".golden")
		if *updateEmit {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from %s (run go test -update after checking):\n%s", c.name, golden, b.String())
		}
		if err := c.emit(&b, EmitOptions{Grid: "g", Out: "o"}); err == nil {
			t.Errorf("%s: 0 shards accepted", c.name)
		}
	}

	if err := EmitSlurm(&bytes.Buffer{}, EmitOptions{Grid: "g", Out: "out dir", Shards: 2}); err == nil || !strings.Contains(err.Error(), "out dir") {
		t.Errorf("slurm with a blank in the folder: %v", err)
	}

	// The manifest parses as YAML and says what the cluster needs.
	var b bytes.Buffer
	if err := EmitK8s(&b, o); err != nil {
		t.Fatal(err)
	}
	var job struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			CompletionMode string `yaml:"completionMode"`
			Completions    int
			Parallelism    int
			Template       struct {
				Spec struct {
					RestartPolicy string `yaml:"restartPolicy"`
					Containers    []struct {
						Command   []string
						Args      []string
						Env       []struct{ Name string }
						Resources struct {
							Limits map[string]int
						}
						VolumeMounts []struct {
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(b.Bytes(), &job); err != nil {
		t.Fatalf("manifest is not YAML: %v", err)
	}
	ctr := job.Spec.Template.Spec.Containers
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Spec.CompletionMode != "Indexed" || job.Spec.Completions != 4 ||
		job.Spec.Parallelism != 4 || job.Spec.Template.Spec.RestartPolicy != "Never" || len(ctr) != 1 ||
		ctr[0].Resources.Limits["nvidia.com/gpu"] != 1 || job.Metadata.Name != "memval-ci-grid" {
		t.Fatalf("manifest: %+v", job)
	}
	args := strings.Join(ctr[0].Args, " ")
	if !strings.Contains(args, "sweep scenarios/grids/ci.yaml --out out/ci --shard $(JOB_INDEX)/4 --device=nvml") ||
		len(ctr[0].Env) != 1 || ctr[0].Env[0].Name != "JOB_INDEX" || ctr[0].VolumeMounts[0].MountPath != "/memval/out/ci" {
		t.Errorf("container: %+v", ctr[0])
	}

	// The script is valid bash, where bash is installed.
	if bash, err := exec.LookPath("bash"); err == nil {
		b.Reset()
		if err := EmitSlurm(&b, o); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v: %s", err, out)
		}
	}
}
