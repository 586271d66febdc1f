package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

func TestProfileFlags(t *testing.T) {
	cmd := newProfileCmd(streams{})
	if err := cmd.ParseFlags([]string{"--device", "replay:x.csv", "--interval", "250us", "--out", "d", "--gpu", "3", "--json", "--sim-batch", "4"}); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	dev, _ := f.GetString("device")
	iv, _ := f.GetDuration("interval")
	gpu, _ := f.GetInt("gpu")
	js, _ := f.GetBool("json")
	b, _ := f.GetInt("sim-batch")
	if dev != "replay:x.csv" || iv != 250*time.Microsecond || gpu != 3 || !js || b != 4 {
		t.Errorf("got device %q interval %v gpu %d json %v sim-batch %d", dev, iv, gpu, js, b)
	}
}

func TestProfileOptionsValidate(t *testing.T) {
	good := profileOptions{device: "auto", interval: time.Millisecond, gpu: -1, simBatch: 1, simSeq: 1, simSteps: 1, command: []string{"true"}}
	tests := []struct {
		name string
		mod  func(*profileOptions)
		want string // "" means valid
	}{
		{"good", func(*profileOptions) {}, ""},
		{"sim without command", func(o *profileOptions) { o.device, o.command = "sim", nil }, ""},
		{"replay without command", func(o *profileOptions) { o.device, o.command = "replay:t.csv", nil }, ""},
		{"auto without command", func(o *profileOptions) { o.command = nil }, "no command"},
		{"bad device", func(o *profileOptions) { o.device = "tpu" }, `--device "tpu"`},
		{"replay without file", func(o *profileOptions) { o.device = "replay:" }, "replay:FILE"},
		{"short interval", func(o *profileOptions) { o.interval = 50 * time.Microsecond }, "--interval 50µs"},
		{"bad gpu", func(o *profileOptions) { o.gpu = -2 }, "--gpu -2"},
		{"bad sim", func(o *profileOptions) { o.simSteps = 0 }, "--sim-steps 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mod(&o)
			err := o.validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err, &strings.Builder{}) != exitUsage {
				t.Errorf("got %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
}

func TestProfileUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"profile"},
		{"profile", "--interval", "abc", "--", "true"},
		{"profile", "--interval", "10us", "--", "true"},
		{"profile", "--device", "gpu", "--", "true"},
		{"profile", "--device", "sim", "--sim-model", "no-such-model"},
		{"profile", "--device", "replay:/nonexistent/trace.csv"},
	} {
		code, _, errw := runCLI(t, args...)
		if code != exitUsage {
			t.Errorf("%q: got exit %d (stderr %q), want %d", args, code, errw, exitUsage)
		}
	}
}

func TestProfileSimEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errw := runCLI(t, "profile", "--device", "sim", "--out", dir, "--json", "--sim-steps", "4")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	for _, want := range []string{"NOTICE", "simulated", "baseline:", "peak:", "steady:", "duration:", "exit:      ok", dir} {
		if !strings.Contains(errw, want) {
			t.Errorf("summary on stderr lacks %q:\n%s", want, errw)
		}
	}
	var res schema.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: stdout is not a result: %v\n%s", err, out)
	}
	s := res.Summary
	if !res.Simulated || len(res.Notices) == 0 || s.Status != "ok" || s.PeakDeviceBytes <= s.BaselineBytes || s.Samples == 0 {
		t.Errorf("got result %+v, want a simulated run with a notice, status ok and a peak above the baseline", s)
	}
	if _, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile)); err != nil {
		t.Error(err)
	}

	// The recorded run replays to the same peak.
	dir2 := filepath.Join(t.TempDir(), "replayed")
	code, out, errw = runCLI(t, "profile", "--device", "replay:"+filepath.Join(dir, profiler.TraceFile), "--out", dir2, "--json")
	if code != 0 {
		t.Fatalf("replay: got exit %d, stderr %q", code, errw)
	}
	var res2 schema.Result
	if err := json.Unmarshal([]byte(out), &res2); err != nil {
		t.Fatal(err)
	}
	if res2.Summary.PeakDeviceBytes != s.PeakDeviceBytes {
		t.Errorf("replay: got peak %d, want the recorded %d", res2.Summary.PeakDeviceBytes, s.PeakDeviceBytes)
	}
}

func TestProfilePassesExitCode(t *testing.T) {
	dir := t.TempDir()
	code, out, errw := runCLI(t, "profile", "--device", "sim", "--sim-steps", "1", "--out", dir, "--", "sh", "-c", "echo from-child; exit 7")
	if code != 7 {
		t.Fatalf("got exit %d, want the child's 7 (stderr %q)", code, errw)
	}
	if !strings.Contains(out, "from-child") || !strings.Contains(errw, "failed (exit code 7)") {
		t.Errorf("got stdout %q, stderr %q; want the child's output and its status", out, errw)
	}
}
