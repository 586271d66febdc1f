package profiler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memval/memval/profiler/schema"
)

// helperEnv makes the test binary act as a workload (see TestMain).
const helperEnv = "MEMVAL_PROFILER_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "events":
		helperEvents()
	case "memval":
		helperMemval() // lifecycle_test.go: the test binary acts as memval
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		os.Exit(3)
	}
}

// helperEvents writes a scenario's events to the side channel, one write
// per line as the protocol asks, plus a malformed line.
func helperEvents() {
	f, err := os.OpenFile(os.Getenv(EventsEnv), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	w := func(s string, args ...any) { fmt.Fprintf(f, s+"\n", args...) }
	w(`{"v":1,"t":%d,"kind":"info","data":{"torch":"2.3.0","cuda":"12.1","python":"3.11.4","params":124439808,"backend":"cuda","attention":"math"}}`, MonotonicNS())
	for i := 0; i < 4; i++ {
		w(`{"v":1,"t":%d,"kind":"phase","phase":"step_start","step":%d}`, MonotonicNS(), i)
		time.Sleep(5 * time.Millisecond)
		w(`{"v":1,"t":%d,"kind":"phase","phase":"step_end","step":%d,"allocated":%d,"reserved":2000,"max_allocated":%d,"max_reserved":3000}`, MonotonicNS(), i, 1000+i, 5000+i)
	}
	w(`this is not json`)
	w(`{"v":1,"t":%d,"kind":"saved","saved_bytes":777,"step":3}`, MonotonicNS())
	f.Close()
	os.Exit(0)
}

// runSh profiles `sh -c script` on a fake device and returns the result,
// the run's folder and what the script wrote to stdout and stderr.
func runSh(t *testing.T, script string, mod func(*RunOptions)) (*schema.Result, string, string, string) {
	t.Helper()
	dir := t.TempDir()
	var stdout, stderr syncBuffer
	opts := RunOptions{Device: newFakeDevice(1, 80<<30), Command: []string{"sh", "-c", script},
		OutDir: dir, Stdout: &stdout, Stderr: &stderr, Tool: "memval test", GPU: -1}
	if mod != nil {
		mod(&opts)
	}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkRunFiles(t, dir, res)
	return res, dir, stdout.String(), stderr.String()
}

// checkRunFiles checks that the run left a complete trace, events and a
// result.json equal to what Run returned.
func checkRunFiles(t *testing.T, dir string, res *schema.Result) {
	t.Helper()
	tr, err := ReadTraceFile(filepath.Join(dir, TraceFile))
	if err != nil || tr.Truncated || len(tr.Samples) == 0 {
		t.Fatalf("trace.csv: got %v, truncated %v; want a complete trace with samples", err, tr != nil && tr.Truncated)
	}
	ev, bad, err := ReadEventsFile(filepath.Join(dir, EventsFile))
	if err != nil || bad != 0 || len(ev) < 2 || ev[0].Phase != PhaseStart || ev[len(ev)-1].Phase != PhaseExit {
		t.Fatalf("events.jsonl: got %d events, %d malformed, %v; want start ... exit", len(ev), bad, err)
	}
	got, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary != res.Summary {
		t.Errorf("result.json summary: got %+v, want %+v", got.Summary, res.Summary)
	}
	if _, err := os.Stat(filepath.Join(dir, sideFile)); !os.IsNotExist(err) {
		t.Errorf("side channel left behind (%v)", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunExitStatuses(t *testing.T) {
	tests := []struct {
		name, script string
		code         int
		status       string
		signal       string
		oom          bool
	}{
		{"ok", "echo hello; echo err >&2", 0, schema.StatusOK, "", false},
		{"failed", "exit 3", 3, schema.StatusFailed, "", false},
		{"crash", "kill -SEGV $$", 128 + 11, schema.StatusCrashed, "SIGSEGV", false},
		{"killed", "kill -KILL $$", 128 + 9, schema.StatusKilled, "SIGKILL", false},
		{"oom", "echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB' >&2; exit 1", 1, schema.StatusOOM, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _, _, _ := runSh(t, tc.script, nil)
			s := res.Summary
			if s.ExitCode != tc.code || s.Status != tc.status || s.Signal != tc.signal || s.OOM != tc.oom {
				t.Errorf("got exit %d status %q signal %q oom %v, want %d %q %q %v", s.ExitCode, s.Status, s.Signal, s.OOM, tc.code, tc.status, tc.signal, tc.oom)
			}
		})
	}
}

func TestRunPassesOutputThrough(t *testing.T) {
	res, _, out, errOut := runSh(t, "echo hello; echo oops >&2; echo \"events at $MEMVAL_EVENTS\"", nil)
	if !strings.Contains(out, "hello") || !strings.Contains(errOut, "oops") {
		t.Errorf("got stdout %q stderr %q, want hello and oops", out, errOut)
	}
	if !strings.Contains(out, sideFile) {
		t.Errorf("got stdout %q, want %s set to the side channel", out, EventsEnv)
	}
	if res.Device != "fake" || !res.Simulated || res.Tool != "memval test" || len(res.Env.GPUs) != 1 || res.Env.Host == "" {
		t.Errorf("got result header %+v, want device fake, simulated, tool, GPUs and host", res)
	}
}

func TestRunGrandchildOutlivesParent(t *testing.T) {
	t0 := time.Now()
	_, dir, out, _ := runSh(t, "(sleep 0.3; echo late) & echo parent gone", nil)
	if el := time.Since(t0); el < 300*time.Millisecond {
		t.Errorf("run ended after %v, want it to wait for the grandchild (0.3 s)", el)
	}
	if !strings.Contains(out, "late") {
		t.Errorf("got stdout %q, want the grandchild's output", out)
	}
	tr, _ := ReadTraceFile(filepath.Join(dir, TraceFile))
	span := time.Duration(tr.Samples[len(tr.Samples)-1].TNS - tr.Samples[0].TNS)
	if span < 300*time.Millisecond {
		t.Errorf("trace spans %v, want at least the grandchild's 0.3 s", span)
	}
}

func TestRunGraceEndsAnOrphanWait(t *testing.T) {
	t0 := time.Now()
	res, _, _, _ := runSh(t, "sleep 5 >/dev/null 2>&1 & exit 0", func(o *RunOptions) { o.Grace = 200 * time.Millisecond })
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("run took %v, want it to stop waiting after the grace period", el)
	}
	if len(res.Notices) == 0 || !strings.Contains(res.Notices[0], "still running") {
		t.Errorf("got notices %q, want one about processes still running", res.Notices)
	}
}

func TestRunForwardsSIGINT(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		time.Sleep(150 * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	t0 := time.Now()
	res, _, out, _ := runSh(t, `trap 'echo got INT; exit 130' INT; while :; do sleep 0.02; done`, func(o *RunOptions) { o.Signals = sigs })
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("run took %v after SIGINT, want it to end promptly", el)
	}
	s := res.Summary
	if s.Status != schema.StatusInterrupted || !strings.Contains(out, "got INT") {
		t.Errorf("got status %q exit %d stdout %q, want interrupted and the child's trap output", s.Status, s.ExitCode, out)
	}
}

func TestRunSecondSignalKills(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	go func() {
		time.Sleep(100 * time.Millisecond)
		sigs <- syscall.SIGINT
		time.Sleep(100 * time.Millisecond)
		sigs <- syscall.SIGINT
	}()
	res, _, _, _ := runSh(t, `trap '' INT; while :; do sleep 0.02; done`, func(o *RunOptions) { o.Signals = sigs })
	if s := res.Summary; s.Status != schema.StatusInterrupted || s.Signal != "SIGKILL" {
		t.Errorf("got status %q signal %q, want interrupted by SIGKILL", s.Status, s.Signal)
	}
}

func TestRunContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	res, err := Run(ctx, RunOptions{Device: newFakeDevice(1, 1<<30), Command: []string{"sh", "-c", "sleep 10"}, OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Status != schema.StatusInterrupted {
		t.Errorf("got status %q, want interrupted", res.Summary.Status)
	}
	checkRunFiles(t, dir, res)
}

func TestRunSideChannelEvents(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := MonotonicNS()
	res, err := Run(context.Background(), RunOptions{Device: newFakeDevice(1, 80<<30), Command: []string{exe},
		Env: []string{helperEnv + "=events"}, OutDir: dir, GPU: 0})
	if err != nil {
		t.Fatal(err)
	}
	after := MonotonicNS()
	checkRunFiles(t, dir, res)
	ev, _, _ := ReadEventsFile(filepath.Join(dir, EventsFile))
	var kinds []string
	for _, e := range ev {
		kinds = append(kinds, e.Kind+":"+e.Phase)
		if e.T < before || e.T > after {
			t.Errorf("event %s:%s at %d, want a monotonic time within the run [%d, %d]", e.Kind, e.Phase, e.T, before, after)
		}
	}
	want := "memval:start info: phase:step_start phase:step_end phase:step_start phase:step_end phase:step_start phase:step_end phase:step_start phase:step_end saved: memval:exit"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("got events %s\nwant %s", got, want)
	}
	if len(res.Notices) != 1 || !strings.Contains(res.Notices[0], "1 malformed") {
		t.Errorf("got notices %q, want one malformed line noted", res.Notices)
	}
	fw := res.Framework
	if fw == nil || fw.Params != 124439808 || fw.SavedBytes != 777 || fw.MaxAllocated != 5003 || fw.SteadyAllocated != 1002 || fw.StepSeconds < 0.004 {
		b, _ := json.Marshal(fw)
		t.Errorf("got framework %s, want params, saved 777, max allocated 5003, steady 1002, step ≥ 5 ms", b)
	}
	if e := res.Env; e.Torch != "2.3.0" || e.TorchCUDA != "12.1" || e.Python != "3.11.4" {
		t.Errorf("got environment %+v, want torch 2.3.0, CUDA 12.1, python 3.11.4", e)
	}
}

func TestRunTimelineWithoutCommand(t *testing.T) {
	d := &fakeTimeline{fakeDevice: newFakeDevice(1, 80<<30), dur: uint64(60 * time.Millisecond), peak: 8 << 30, code: 1, oom: true,
		events: []Event{{V: 1, T: int64(10 * time.Millisecond), Kind: "phase", Phase: "step_end"}}}
	d.procErr = nil
	d.procs = []ProcessMemory{{PID: 123456789, Used: 5}}
	dir := t.TempDir()
	res, err := Run(context.Background(), RunOptions{Device: d, OutDir: dir, GPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	checkRunFiles(t, dir, res)
	s := res.Summary
	if s.Status != schema.StatusOOM || s.ExitCode != 1 || !s.OOM {
		t.Errorf("got status %q exit %d oom %v, want oom 1 true", s.Status, s.ExitCode, s.OOM)
	}
	if s.PeakDeviceBytes != 8<<30 || s.PeakProcessBytes != 5 || s.ProcessSource != "nvml-processes" {
		t.Errorf("got peak %d process %d from %q, want %d, 5 from nvml-processes", s.PeakDeviceBytes, s.PeakProcessBytes, s.ProcessSource, uint64(8<<30))
	}
	if s.DurationSeconds < 0.06 || s.DurationSeconds > 1 {
		t.Errorf("got duration %.3f s, want about 0.06 s", s.DurationSeconds)
	}
}

func TestRunBadOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts RunOptions
		want string
	}{
		{"no device", RunOptions{OutDir: dir, Command: []string{"true"}}, "no device"},
		{"no out", RunOptions{Device: newFakeDevice(1, 1), Command: []string{"true"}}, "no output folder"},
		{"no command", RunOptions{Device: newFakeDevice(1, 1), OutDir: dir}, "give a command"},
		{"missing program", RunOptions{Device: newFakeDevice(1, 1), OutDir: dir, Command: []string{"/nonexistent/memval-test"}}, "start /nonexistent/memval-test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
