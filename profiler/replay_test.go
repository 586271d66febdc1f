package profiler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReplayAnswersRecordedSamples(t *testing.T) {
	dev, err := OpenReplay(filepath.Join("testdata", "summary", "steps", TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	r := dev.(*Replay)
	m, err := r.Memory(0)
	if err != nil || m.Used != 500<<20 {
		t.Fatalf("before Start: got %d, %v; want the baseline %d", m.Used, err, 500<<20)
	}
	if done, _, _ := r.Finished(MonotonicNS()); done {
		t.Fatal("got finished before Start")
	}
	now := MonotonicNS()
	r.Start(now - 20*int64(time.Millisecond)) // 20 ms into the run: inside step 0
	if m, _ := r.Memory(0); m.Used != 8<<30 {
		t.Errorf("20 ms after start: got used %d, want %d", m.Used, uint64(8<<30))
	}
	if p, err := r.Processes(0); err != nil || len(p) != 1 || p[0].Used != 8<<30-500<<20 {
		t.Errorf("got processes %+v, %v; want the recorded tree figure", p, err)
	}
	ev := r.Events(now)
	if len(ev) != 2 || ev[0].Kind != "info" || ev[1].Phase != "step_start" {
		t.Errorf("got events %+v, want info and step_start", ev)
	}
	if len(r.Events(now)) != 0 {
		t.Error("got events again, want each once")
	}
	r.Start(now - 45*int64(time.Millisecond) - 500_000) // half a millisecond after the recorded gap
	if _, err := r.Memory(0); err == nil {
		t.Error("got a reading at a recorded gap, want its error")
	}
	if done, code, oom := r.Finished(now + 200*int64(time.Millisecond)); !done || code != 0 || oom {
		t.Errorf("after the end: got %v %d %v, want done, 0, no oom", done, code, oom)
	}
	if _, err := r.Memory(7); err == nil {
		t.Error("got a reading of a GPU not in the trace")
	}
}

func TestReplayWithoutProcessColumn(t *testing.T) {
	dev, err := OpenReplay(filepath.Join("testdata", "summary", "noevents", TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Processes(0); !errors.Is(err, ErrNotSupported) {
		t.Errorf("got %v, want ErrNotSupported", err)
	}
	gpus, _ := dev.GPUs()
	if len(gpus) != 2 || gpus[1].TotalBytes != 80<<30 {
		t.Errorf("got GPUs %+v, want 2 with their totals", gpus)
	}
}

func TestOpenReplayErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, TraceFile)
	os.WriteFile(empty, []byte(TraceHeader+"\n"), 0o644)
	for _, p := range []string{filepath.Join(dir, "missing.csv"), empty} {
		if _, err := OpenReplay(p); err == nil {
			t.Errorf("OpenReplay(%s): got no error", p)
		}
	}
}

// TestReplayRunReproducesSummary profiles a replayed run (no command: the
// replay is the workload) and gets the recorded run's figures back.
func TestReplayRunReproducesSummary(t *testing.T) {
	src := filepath.Join("testdata", "summary", "steps")
	dev, err := OpenReplay(filepath.Join(src, TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Run(context.Background(), RunOptions{Device: dev, OutDir: dir, GPU: -1, Interval: 500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	checkRunFiles(t, dir, res)
	tr, _ := ReadTraceFile(filepath.Join(src, TraceFile))
	ev, _, _ := ReadEventsFile(filepath.Join(src, EventsFile))
	want := Summarize(tr, ev, -1)
	got := res.Summary
	if got.PeakDeviceBytes != want.PeakDeviceBytes || got.SteadyBytes != want.SteadyBytes || got.BaselineBytes != want.BaselineBytes || got.Status != want.Status {
		t.Errorf("replayed: got peak %d steady %d baseline %d status %q, want %d %d %d %q",
			got.PeakDeviceBytes, got.SteadyBytes, got.BaselineBytes, got.Status, want.PeakDeviceBytes, want.SteadyBytes, want.BaselineBytes, want.Status)
	}
	if d := got.PeakSeconds - want.PeakSeconds; d > 0.02 || d < -0.02 {
		t.Errorf("replayed: got peak at %.3f s, want %.3f s ± 0.02", got.PeakSeconds, want.PeakSeconds)
	}
	if res.Framework == nil || res.Framework.Params != 124439808 {
		t.Errorf("replayed: got framework %+v, want the recorded params", res.Framework)
	}
}
