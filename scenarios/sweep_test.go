package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

func ciSpecs(t testing.TB, n int) []*Spec {
	specs := make([]*Spec, n)
	for i := range specs {
		specs[i] = ciSpec(t, "s"+string(rune('a'+i)))
	}
	return specs
}

func fastSim() ValidateOptions {
	return ValidateOptions{Device: "sim", SimStep: time.Millisecond, Interval: time.Millisecond}
}

func TestSweepResumes(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 3)
	rep, err := Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ran != 3 || rep.Skipped != 0 || rep.Interrupted {
		t.Fatalf("first sweep: got ran %d, skipped %d, interrupted %v; want 3, 0, false", rep.Ran, rep.Skipped, rep.Interrupted)
	}
	for _, s := range specs {
		for _, f := range []string{schema.ResultFile, profiler.TraceFile, profiler.EventsFile} {
			if _, err := os.Stat(filepath.Join(out, s.Name, f)); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
		}
	}
	if err := os.Remove(filepath.Join(out, "sb", schema.ResultFile)); err != nil {
		t.Fatal(err)
	}
	var started []string
	rep, err = Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim(), Progress: func(u SweepUpdate) {
		if u.Entry.Status == StatusRunning {
			started = append(started, u.Entry.Name)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ran != 1 || rep.Skipped != 2 || strings.Join(started, ",") != "sb" {
		t.Errorf("second sweep: got ran %d, skipped %d, started %v; want 1, 2, [sb]", rep.Ran, rep.Skipped, started)
	}
	for _, e := range rep.Entries {
		if e.Result == nil || e.Verdict == nil {
			t.Errorf("%s: no result or verdict in the report (skipped ones are read back)", e.Name)
		}
	}
	var table strings.Builder
	if err := rep.WriteSummary(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sa", "sb", "sc", "breakdown", "1 run, 2 skipped"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, table.String())
		}
	}
}

func TestSweepInterruptKeepsFinishedResults(t *testing.T) {
	out := t.TempDir()
	specs := ciSpecs(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := SweepOptions{OutDir: out, Validate: fastSim(), Progress: func(u SweepUpdate) {
		// Cancel while the second scenario is running.
		if u.Entry.Name == "sb" && u.Entry.Status == StatusRunning {
			cancel()
		}
	}}
	rep, err := Sweep(ctx, specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted {
		t.Fatal("got a sweep that was not interrupted")
	}
	c := rep.Counts()
	if rep.Entries[0].Status == VerdictInterrupted || rep.Entries[0].Status == "" {
		t.Errorf("first scenario: got status %q, want its finished verdict", rep.Entries[0].Status)
	}
	if rep.Entries[1].Status != VerdictInterrupted {
		t.Errorf("second scenario: got status %q, want interrupted", rep.Entries[1].Status)
	}
	if c[""] != 2 {
		t.Errorf("got %d scenarios not started, want 2 (counts %v)", c[""], c)
	}
	if _, sc, ok := finished(filepath.Join(out, "sa")); !ok || sc.Verdict.Status != rep.Entries[0].Status {
		t.Errorf("first scenario's result.json: got finished %v, status %q; want it intact", ok, sc.Verdict.Status)
	}
	res, err := schema.ReadResult(filepath.Join(out, "sb", schema.ResultFile))
	if err != nil || res.Summary.Status != schema.StatusInterrupted {
		t.Errorf("second scenario's result.json: got %v, %v; want status interrupted", res, err)
	}

	// Resuming runs the interrupted one and the two never started.
	rep, err = Sweep(context.Background(), specs, SweepOptions{OutDir: out, Validate: fastSim()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ran != 3 || rep.Skipped != 1 || rep.Interrupted {
		t.Errorf("resumed sweep: got ran %d, skipped %d, interrupted %v; want 3, 1, false", rep.Ran, rep.Skipped, rep.Interrupted)
	}
}

func TestSweepRecordsErrors(t *testing.T) {
	out := t.TempDir()
	opts := fastSim()
	opts.Device = "replay:" + filepath.Join(out, "no-such-trace.csv")
	rep, err := Sweep(context.Background(), ciSpecs(t, 1), SweepOptions{OutDir: out, Validate: opts})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Entries[0]
	if e.Status != VerdictError || e.Err == nil || rep.Failed != 1 {
		t.Fatalf("got status %q, error %v, failed %d; want error, an error, 1", e.Status, e.Err, rep.Failed)
	}
	res, err := schema.ReadResult(filepath.Join(out, "sa", schema.ResultFile))
	if err != nil || len(res.Notices) == 0 {
		t.Fatalf("got %v, %v; want a result.json with the error among its notices", res, err)
	}
	if _, _, ok := finished(filepath.Join(out, "sa")); ok {
		t.Error("an errored scenario counts as finished: the next sweep would not retry it")
	}
}

func TestSweepJobs(t *testing.T) {
	rep, err := Sweep(context.Background(), ciSpecs(t, 4), SweepOptions{OutDir: t.TempDir(), Jobs: 3, Validate: fastSim()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ran != 4 || rep.Counts()[""] != 0 {
		t.Errorf("got ran %d, counts %v; want all 4 run", rep.Ran, rep.Counts())
	}
}

// BenchmarkStarterSweepSim runs the whole starter sweep (every starter spec)
// on the simulated device with 2 ms steps.
func BenchmarkStarterSweepSim(b *testing.B) {
	g, err := LoadGrid(filepath.Join("grids", "starter.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	specs, err := g.Expand()
	if err != nil {
		b.Fatal(err)
	}
	opts := ValidateOptions{Device: "sim", SimStep: 2 * time.Millisecond}
	for b.Loop() {
		rep, err := Sweep(context.Background(), specs, SweepOptions{OutDir: b.TempDir(), Validate: opts})
		if err != nil || rep.Ran != len(specs) || rep.Failed != 0 {
			b.Fatalf("got %+v, %v; want every scenario run", rep, err)
		}
	}
}
