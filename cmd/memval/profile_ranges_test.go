package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// Out-of-range profile flags are usage errors naming the flag.
func TestProfileRangeErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--device", "sim", "--sim-steps", "1", "--gpu", "99"}, "--gpu 99: GPU 99 does not exist: the device has 8 GPU(s)"},
		{[]string{"--device", "sim", "--interval", "1h", "--", "true"}, "--interval 1h0m0s: want 100µs to 1m0s"},
		{[]string{"--device", "sim", "--interval", "50us", "--", "true"}, "--interval 50µs"},
		{[]string{"--device", "sim", "--sim-steps", "1000000"}, "--sim-steps 1000000: want 1 to 100000"},
		{[]string{"--device", "sim", "--sim-seq", "3000000000"}, "--sim-seq 3000000000: want 1 to 2147483648"},
		{[]string{"--device", "sim", "--sim-batch", "-1"}, "--sim-batch -1"},
	}
	for _, tc := range tests {
		args := append([]string{"profile", "--out", t.TempDir()}, tc.args...)
		code, _, errw := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errw, tc.want) {
			t.Errorf("%q: got exit %d, stderr %q; want %d and %q", tc.args, code, errw, exitUsage, tc.want)
		}
	}
}

// On the simulated device the summary and result.json name the simulated
// workload and say that the command's own memory is not measured; a replay
// of a measured run is not marked simulated.
func TestProfileSimSaysWhatItSimulated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errw := runCLI(t, "profile", "--device", "sim", "--sim-steps", "2", "--sim-batch", "4", "--out", dir, "--json", "--", "true")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	var res schema.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.SimulatedWorkload, "gpt2 training, batch 4, seq 1024") {
		t.Errorf("got simulated_workload %q, want the gpt2 batch 4 workload", res.SimulatedWorkload)
	}
	if !strings.Contains(errw, "workload:  gpt2 training, batch 4") || !strings.Contains(errw, "not measured") {
		t.Errorf("summary does not name the simulated workload:\n%s", errw)
	}
	var noted bool
	for _, n := range res.Notices {
		noted = noted || strings.Contains(n, "not true's")
	}
	if !noted {
		t.Errorf("got notices %q, want one saying the figures are not true's", res.Notices)
	}

	// Mark the recording as measured on a real GPU; its replay is then not
	// simulated.
	res.Simulated, res.Device = false, "nvml"
	if err := schema.WriteResult(dir, &res); err != nil {
		t.Fatal(err)
	}
	code, out, errw = runCLI(t, "profile", "--device", "replay:"+filepath.Join(dir, profiler.TraceFile), "--out", filepath.Join(t.TempDir(), "r"), "--json")
	if code != 0 {
		t.Fatalf("replay: got exit %d, stderr %q", code, errw)
	}
	var rep schema.Result
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Simulated || rep.SimulatedWorkload != "" {
		t.Errorf("replay of a measured run: got simulated %v, workload %q; want false, none", rep.Simulated, rep.SimulatedWorkload)
	}
	// Without a result.json beside it, a replayed trace's origin is unknown.
	os.Remove(filepath.Join(dir, schema.ResultFile))
	_, out, _ = runCLI(t, "profile", "--device", "replay:"+filepath.Join(dir, profiler.TraceFile), "--out", filepath.Join(t.TempDir(), "r2"), "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Simulated {
		t.Errorf("replay without result.json: got simulated %v (%v), want true", rep.Simulated, err)
	}
}
