package fit

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPathsAndGlobs(t *testing.T) {
	dir := filepath.Join("testdata", "runs")
	byFolder, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	byGlob, _, err := Load(filepath.Join(dir, "*", ResultFile), filepath.Join(dir, "tiny-b1-s128", ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(byFolder) != len(byGlob) || len(byFolder) != 26 {
		t.Errorf("got %d runs by folder and %d by glob (with a duplicate), want 26 each", len(byFolder), len(byGlob))
	}
	for i := 1; i < len(byFolder); i++ {
		if byFolder[i-1].Path >= byFolder[i].Path {
			t.Fatalf("runs not sorted by path: %s before %s", byFolder[i-1].Path, byFolder[i].Path)
		}
	}
	for _, bad := range []string{filepath.Join(dir, "nope*"), filepath.Join(dir, "missing"), t.TempDir()} {
		if _, _, err := Load(bad); err == nil {
			t.Errorf("Load(%q): got no error, want one", bad)
		}
	}
	if _, _, err := Load(); err == nil {
		t.Error("Load(): got no error, want one")
	}
}

func TestLoadWarnsAboutMissingFields(t *testing.T) {
	r := synthRun(synthModels[0], 1, 128, defaultTruth, rand.New(rand.NewPCG(1, 1)), 0)
	r.Result.Predictions = nil
	r.Result.Scenario = nil
	data, _ := json.Marshal(r.Result)
	path := filepath.Join(t.TempDir(), ResultFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	runs, warns, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if runs[0].Excluded == "" {
		t.Error("run without predictions: got it included, want it excluded")
	}
	var fields []string
	for _, w := range warns {
		if w.Path != path {
			t.Errorf("warning %q does not name the file", w)
		}
		fields = append(fields, w.Field)
	}
	if got := strings.Join(fields, ","); got != "scenario.workload,predictions" {
		t.Errorf("warned fields: got %q, want %q", got, "scenario.workload,predictions")
	}
}

func TestSelectGroup(t *testing.T) {
	runs := synthRuns(1, defaultTruth, 0.01, []int{1}, []int{128, 256})
	other := synthRuns(2, defaultTruth, 0.01, []int{1}, []int{128})
	for i := range other {
		other[i].Group.GPU = "NVIDIA A100-SXM4-40GB"
	}
	all := append(runs, other...)
	_, err := SelectGroup(all, "", false)
	if !errors.Is(err, ErrMixedGroups) || !strings.Contains(err.Error(), "A100") || !strings.Contains(err.Error(), "H100") {
		t.Fatalf("got %v, want ErrMixedGroups listing both groups", err)
	}
	if _, err := Analyze(all, Options{}); !errors.Is(err, ErrMixedGroups) {
		t.Errorf("Analyze: got %v, want ErrMixedGroups", err)
	}
	got, err := SelectGroup(all, "a100", false)
	if err != nil || len(got) != len(other) {
		t.Errorf("select a100: got %d runs, %v; want %d", len(got), err, len(other))
	}
	got, err = SelectGroup(all, "", true)
	if err != nil || len(got) != len(all) {
		t.Errorf("allow mixed: got %d runs, %v; want %d", len(got), err, len(all))
	}
	if _, err := SelectGroup(all, "NVIDIA", false); err == nil || !strings.Contains(err.Error(), "matches 2 groups") {
		t.Errorf("ambiguous: got %v, want 'matches 2 groups'", err)
	}
	if _, err := SelectGroup(all, "V100", false); err == nil {
		t.Error("no match: got no error")
	}
}

// FuzzLoadResult feeds arbitrary bytes to the result.json reader: it must
// never panic, and what it accepts must be classified consistently.
func FuzzLoadResult(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join("testdata", "runs", "tiny-b1-s128", ResultFile))
	f.Add(seed)
	f.Add([]byte(`{"schema":1,"summary":{"status":"oom","oom":true},"environment":{"gpus":[{"index":3,"name":"x"}]}}`))
	f.Add([]byte(`{"schema":1,"scenario":{"workload":{"batch":-1}},"predictions":[{"formula":"seed"}]}`))
	f.Add([]byte(`{"schema":2}`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, ResultFile)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, warns, err := readRun(path)
		if err != nil {
			if !strings.Contains(err.Error(), "result.json") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if r.Workload != nil && (r.Workload.Batch <= 0 || r.Workload.Seq <= 0) {
			t.Fatalf("accepted workload %+v", *r.Workload)
		}
		if r.Excluded != "" && len(warns) == 0 {
			t.Fatal("excluded a run without a warning")
		}
		for _, q := range []Quantity{Peak, Steady} {
			for _, tr := range Truths() {
				r.Measured(tr, q)
			}
		}
		_ = r.Group.Key()
	})
}
