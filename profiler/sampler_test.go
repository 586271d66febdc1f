package profiler

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"time"
)

func TestSamplerRecordsGapsAndGoesOn(t *testing.T) {
	base := newFakeDevice(2, 80<<30)
	base.used.Store(3 << 30)
	var buf bytes.Buffer
	tw, _ := NewTraceWriter(&buf)
	s, err := NewSampler(&flakyMemory{Device: base, k: 3}, SamplerOptions{Trace: tw})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ { // 12 readings, every third fails
		s.SampleOnce()
	}
	tw.Flush()
	n, gaps := s.Counts()
	if n != 8 || gaps != 4 {
		t.Errorf("got %d samples and %d gaps, want 8 and 4", n, gaps)
	}
	tr, err := ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	g := 0
	for _, r := range tr.Samples {
		if r.Gap() {
			g++
			if r.Err != errFlaky.Error() {
				t.Errorf("got gap error %q, want %q", r.Err, errFlaky)
			}
		} else if r.HasProcess {
			t.Errorf("got a process figure from a device that does not support it: %+v", r)
		}
	}
	if len(tr.Samples) != 12 || g != 4 {
		t.Errorf("got %d rows with %d gaps, want 12 with 4", len(tr.Samples), g)
	}
	if got := s.Live()[1].Peak; got != 3<<30 {
		t.Errorf("got live peak %d, want %d", got, uint64(3<<30))
	}
}

func TestSamplerProcessTree(t *testing.T) {
	d := newFakeDevice(1, 80<<30)
	d.procErr = nil
	d.procs = []ProcessMemory{{PID: 10, Used: 100}, {PID: 11, Used: 20}, {PID: 99, Used: 1000}}
	s, _ := NewSampler(d, SamplerOptions{})
	tests := []struct {
		tracked    []int
		want       uint64
		wantReason string
	}{
		{nil, 1120, ""},
		{[]int{10, 11}, 120, ""},
		{[]int{}, 0, "no process of the tree among"},
	}
	for _, tc := range tests {
		s.SetTracked(tc.tracked)
		s.SampleOnce()
		if got := s.Live()[0].Process; got != tc.want {
			t.Errorf("tracked %v: got process %d, want %d", tc.tracked, got, tc.want)
		}
	}
	s2, _ := NewSampler(d, SamplerOptions{})
	s2.SetTracked([]int{})
	s2.SampleOnce()
	if got := s2.processFallbackReason(); !bytes.Contains([]byte(got), []byte("PIDs are the host's")) {
		t.Errorf("got fallback reason %q, want the container hint", got)
	}
	d.procErr = ErrNotSupported
	s3, _ := NewSampler(d, SamplerOptions{})
	s3.SampleOnce()
	if got := s3.processFallbackReason(); got != "per-process memory not supported by the device" {
		t.Errorf("got fallback reason %q, want not supported", got)
	}
}

func TestSamplerRejectsShortInterval(t *testing.T) {
	if _, err := NewSampler(newFakeDevice(1, 1), SamplerOptions{Interval: 50 * time.Microsecond}); err == nil {
		t.Error("got no error for a 50µs interval, want one")
	}
	if _, err := NewSampler(nil, SamplerOptions{}); err == nil {
		t.Error("got no error for a nil device, want one")
	}
}

func TestSampleOnceDoesNotAllocate(t *testing.T) {
	d := newFakeDevice(2, 80<<30)
	d.procErr = nil
	d.procs = []ProcessMemory{{PID: 10, Used: 100}}
	tw, _ := NewTraceWriter(io.Discard)
	s, _ := NewSampler(d, SamplerOptions{Trace: tw})
	s.SetTracked([]int{10})
	if a := testing.AllocsPerRun(1000, func() { s.SampleOnce() }); a != 0 {
		t.Errorf("got %.1f allocations per sample, want 0", a)
	}
}

func TestSamplerNowIsMonotonicNS(t *testing.T) {
	s, _ := NewSampler(newFakeDevice(1, 1), SamplerOptions{})
	a := MonotonicNS()
	n := s.Now()
	b := MonotonicNS()
	if n < a-1000 || n > b+1000 { // a microsecond for the rounding of the two reads
		t.Errorf("got Now %d outside [%d, %d]", n, a, b)
	}
}

// BenchmarkSamplerRate runs the sampler at 100µs (10 kHz) against a cheap
// fake device for half a second per iteration and reports the sustained rate.
func BenchmarkSamplerRate(b *testing.B) {
	for _, dev := range benchDevices(b) {
		b.Run(dev.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tw, _ := NewTraceWriter(io.Discard)
				s, _ := NewSampler(dev.d, SamplerOptions{Interval: MinInterval, Trace: tw})
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				t0 := time.Now()
				s.Run(ctx)
				cancel()
				n, _ := s.Counts()
				secs := time.Since(t0).Seconds()
				// A tick reads every GPU of the device once.
				b.ReportMetric(float64(n)/float64(len(s.GPUs()))/secs, "ticks/s")
				b.ReportMetric(float64(n)/secs, "readings/s")
			}
		})
	}
}

// benchDevices are the devices the sampler benchmarks run against: a fake
// single GPU (the sampler's own cost) and go-nvml's mock H100 node (8 GPUs
// through the NVML adapter, as `--device sim` samples them; the simulated
// process's own cost per reading is profiler/sim's BenchmarkSimMemory).
func benchDevices(b *testing.B) []struct {
	name string
	d    Device
} {
	mock, err := OpenMockH100(MockH100{Kind: "mock",
		Memory: func(int) (Memory, error) { return Memory{Total: 80 << 30, Used: 1 << 30, Free: 79 << 30}, nil },
		Processes: func(int) ([]ProcessMemory, error) {
			return []ProcessMemory{{PID: 31337, Used: 1 << 30}}, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mock.Close() })
	return []struct {
		name string
		d    Device
	}{{"fake-1gpu", newFakeDevice(1, 80<<30)}, {"mock-h100-8gpu", mock}}
}

// BenchmarkSamplerCPU samples at 1 kHz for a second per iteration and
// reports the process's CPU time (user + system, getrusage) as a percentage
// of one core.
func BenchmarkSamplerCPU(b *testing.B) {
	for _, dev := range benchDevices(b) {
		b.Run(dev.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tw, _ := NewTraceWriter(io.Discard)
				s, _ := NewSampler(dev.d, SamplerOptions{Interval: time.Millisecond, Trace: tw})
				var r0, r1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				s.Run(ctx)
				cancel()
				wall := time.Since(t0)
				syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
				cpu := time.Duration(r1.Utime.Nano()-r0.Utime.Nano()) + time.Duration(r1.Stime.Nano()-r0.Stime.Nano())
				b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu%")
			}
		})
	}
}
