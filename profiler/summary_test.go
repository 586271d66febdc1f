package profiler

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/profiler/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestSummaryGolden summarises each recorded run under testdata/summary and
// compares the summary (JSON) and the printed human summary with
// summary.golden.
func TestSummaryGolden(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "summary", "*"))
	if len(dirs) == 0 {
		t.Fatal("no cases under testdata/summary")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tr, err := ReadTraceFile(filepath.Join(dir, TraceFile))
			if err != nil {
				t.Fatal(err)
			}
			events, _, err := ReadEventsFile(filepath.Join(dir, EventsFile))
			if err != nil {
				t.Fatal(err)
			}
			res := &schema.Result{Schema: schema.ResultSchema, Device: "replay:" + filepath.ToSlash(dir), Simulated: true,
				Command: []string{"python3", "train.py"}, Summary: Summarize(tr, events, -1), Framework: FrameworkFromEvents(events),
				Env: schema.Environment{GPUs: []GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", TotalBytes: 80 << 30}, {Index: 1, Name: "NVIDIA H100 80GB HBM3", TotalBytes: 80 << 30}}}}
			var got bytes.Buffer
			js, _ := json.MarshalIndent(struct {
				Truncated bool
				Summary   schema.Summary
				Framework *schema.Framework
			}{tr.Truncated, res.Summary, res.Framework}, "", "  ")
			got.Write(js)
			got.WriteString("\n\n")
			if err := WriteSummary(&got, res); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "summary.golden")
			if *update {
				os.WriteFile(golden, got.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestSummaryGolden -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("got\n%s\nwant\n%s", got.Bytes(), want)
			}
		})
	}
}

func TestSummarizeFigures(t *testing.T) {
	const ms = int64(1_000_000)
	mk := func(t int64, used uint64) Sample { return Sample{TNS: t * ms, Used: used, Total: 100} }
	tr := &Trace{StartNS: 10 * ms, EndNS: 50 * ms, Samples: []Sample{
		mk(0, 10), mk(5, 12), mk(8, 11), // baseline median 11
		mk(10, 20), mk(20, 90), mk(30, 40), mk(40, 30), mk(50, 30),
	}}
	s := Summarize(tr, nil, 0)
	tests := []struct {
		name      string
		got, want float64
	}{
		{"baseline", float64(s.BaselineBytes), 11},
		{"peak", float64(s.PeakDeviceBytes), 90},
		{"peak seconds", s.PeakSeconds, 0.010},
		{"process (device minus baseline)", float64(s.PeakProcessBytes), 79},
		{"steady (last half: 30, 40, 30, 30)", float64(s.SteadyBytes), 30},
		{"duration", s.DurationSeconds, 0.040},
		{"interval", s.IntervalSeconds, 0.010},
		{"samples", float64(s.Samples), 8},
	}
	for _, tc := range tests {
		if d := tc.got - tc.want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestWarmupSteps(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 10: 2} {
		if got := warmupSteps(n); got != want {
			t.Errorf("warmupSteps(%d): got %d, want %d", n, got, want)
		}
	}
}

func ExampleFormatBytes() {
	for _, b := range []uint64{512, 3 << 10, 1536 << 10, 80 << 30} {
		fmt.Println(FormatBytes(b))
	}
	// Output:
	// 512 B
	// 3.0 KiB
	// 1.5 MiB
	// 80.00 GiB
}

// TestSteadyLevelSkipsReadingAfterDone: when the last step's window is
// shorter than the sampling interval and closes with "done", the reading
// after it (the process has freed its memory) is not the steady level.
func TestSteadyLevelSkipsReadingAfterDone(t *testing.T) {
	const ms = int64(1e6)
	gib := uint64(1 << 30)
	rows := []Sample{
		{TNS: 1 * ms, Used: 0},
		{TNS: 2 * ms, Used: 5 * gib}, // step 0
		{TNS: 3 * ms, Used: 4 * gib}, // between steps 2 and 3
		{TNS: 4 * ms, Used: 6 * gib}, // step 3
		{TNS: 5 * ms, Used: 0},       // after done: memory freed
	}
	step := func(i int) *int { return &i }
	events := []Event{
		{Kind: "phase", Phase: "step_start", T: 1500000, Step: step(0)},
		{Kind: "phase", Phase: "step_end", T: 1600000, Step: step(0)},
		{Kind: "phase", Phase: "step_start", T: 1700000, Step: step(1)},
		{Kind: "phase", Phase: "step_end", T: 1800000, Step: step(1)},
		{Kind: "phase", Phase: "step_start", T: 1900000, Step: step(2)},
		{Kind: "phase", Phase: "step_end", T: 2500000, Step: step(2)},
		{Kind: "phase", Phase: "step_start", T: 3500000, Step: step(3)},
		{Kind: "phase", Phase: "step_end", T: 4500000, Step: step(3)},
		{Kind: "phase", Phase: "done", T: 4600000},
	}
	if got := steadyLevel(rows, events, 1*ms, 5*ms); got != 4*gib {
		t.Fatalf("got steady %d, want %d (the reading between steps 2 and 3, not the one after done)", got, 4*gib)
	}
}

// TestProgressShowsBusiestGPUs: an 8-GPU node's progress line details the
// busy GPU and counts the others, so that it fits on a terminal line.
func TestProgressShowsBusiestGPUs(t *testing.T) {
	gpus := make([]LiveGPU, 8)
	for i := range gpus {
		gpus[i] = LiveGPU{Index: i, Used: 1 << 20, Peak: 1 << 20}
	}
	gpus[3].Used, gpus[3].Peak = 20<<30, 21<<30
	var b bytes.Buffer
	NewProgress(&b).Update(1500*time.Millisecond, gpus, 100, 0)
	line := b.String()
	if !strings.Contains(line, "GPU3 20.00 GiB (peak 21.00 GiB)") || !strings.Contains(line, "+7 GPU(s)") || strings.Contains(line, "GPU0") {
		t.Errorf("got %q, want GPU3 detailed and +7 GPU(s)", line)
	}
	if len(line) > 100 {
		t.Errorf("line is %d characters, want at most 100: %q", len(line), line)
	}
	// Two GPUs equally busy are both shown.
	gpus[5].Used, gpus[5].Peak = 20<<30, 21<<30
	b.Reset()
	NewProgress(&b).Update(time.Second, gpus, 100, 0)
	if line := b.String(); !strings.Contains(line, "GPU3 ") || !strings.Contains(line, "GPU5 ") || !strings.Contains(line, "+6 GPU(s)") {
		t.Errorf("got %q, want GPU3 and GPU5 detailed and +6 GPU(s)", line)
	}
}
