package sim

import (
	"errors"
	"strings"
	"testing"

	"github.com/memval/memval/profiler"
)

func TestOpenSpecs(t *testing.T) {
	d, notices, err := profiler.Open("sim", Opener(Config{}))
	if err != nil || d.Kind() != "sim" || len(notices) != 1 {
		t.Fatalf("sim: got %v, %v, %v", d, notices, err)
	}
	d.Close()

	// auto: a real driver when there is one, else the sim with the notice.
	d, notices, err = profiler.Open("auto", Opener(Config{}))
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	if d.Kind() == "sim" && (len(notices) == 0 || notices[0] != profiler.SimulatedNotice) {
		t.Errorf("auto fell back to the sim with notices %q, want %q first", notices, profiler.SimulatedNotice)
	}
	d.Close()

	for _, spec := range []string{"tpu", "simulated", "replay:", "NVML"} {
		_, _, err := profiler.Open(spec, Opener(Config{}))
		if !errors.Is(err, profiler.ErrUnknownDevice) {
			t.Errorf("%q: got %v, want profiler.ErrUnknownDevice", spec, err)
			continue
		}
		if !strings.Contains(err.Error(), spec) {
			t.Errorf("%q: error %q does not name the value", spec, err)
		}
	}
	if _, _, err := profiler.Open("replay:/nonexistent/trace.csv", Opener(Config{})); err == nil || errors.Is(err, profiler.ErrUnknownDevice) {
		t.Errorf("replay of a missing file: got %v, want the replay's own error", err)
	}
	if _, _, err := profiler.Open("sim", Opener(Config{GPU: 9})); err == nil {
		t.Error("sim with gpu 9: got no error")
	}
}

// TestOpenNVMLSpec: on a machine without a driver (CI), "nvml"
// fails with profiler.ErrNoDriver naming --device sim; with a driver it opens.
func TestOpenNVMLSpec(t *testing.T) {
	d, _, err := profiler.Open("nvml", Opener(Config{}))
	if err != nil {
		if !errors.Is(err, profiler.ErrNoDriver) || !strings.Contains(err.Error(), "--device sim") {
			t.Errorf("got %v, want profiler.ErrNoDriver naming --device sim", err)
		}
		return
	}
	defer d.Close()
	if d.Kind() != "nvml" {
		t.Errorf("got kind %q, want nvml", d.Kind())
	}
}
