package profiler

import (
	"errors"
	"sync"
	"sync/atomic"
)

// fakeDevice is a builder-made device with fixed readings: every GPU
// reports used bytes of used, and procs (or procErr) as its processes.
type fakeDevice struct {
	gpus    []GPU
	used    atomic.Uint64
	procs   []ProcessMemory
	procErr error
}

func newFakeDevice(nGPU int, total uint64) *fakeDevice {
	d := &fakeDevice{procErr: ErrNotSupported}
	for i := 0; i < nGPU; i++ {
		d.gpus = append(d.gpus, GPU{Index: i, Name: "Fake GPU", TotalBytes: total})
	}
	return d
}

func (d *fakeDevice) Kind() string         { return "fake" }
func (d *fakeDevice) GPUs() ([]GPU, error) { return d.gpus, nil }
func (d *fakeDevice) Versions() Versions   { return Versions{Driver: "test"} }
func (d *fakeDevice) Close() error         { return nil }
func (d *fakeDevice) Memory(gpu int) (Memory, error) {
	u := d.used.Load()
	return Memory{Total: d.gpus[gpu].TotalBytes, Used: u, Free: d.gpus[gpu].TotalBytes - u, InfoVersion: 2}, nil
}
func (d *fakeDevice) Processes(gpu int) ([]ProcessMemory, error) { return d.procs, d.procErr }

// flakyMemory overrides Memory: every k-th reading fails.
type flakyMemory struct {
	Device
	k, n int
}

var errFlaky = errors.New("nvml: unknown error")

func (f *flakyMemory) Memory(gpu int) (Memory, error) {
	f.n++
	if f.n%f.k == 0 {
		return Memory{}, errFlaky
	}
	return f.Device.Memory(gpu)
}

// fakeTimeline is a device whose own workload runs for dur nanoseconds
// after Start, using peak bytes in its middle third, reporting events
// (times relative to the start) and ending with code and oom.
type fakeTimeline struct {
	*fakeDevice
	dur, peak uint64
	events    []Event
	code      int
	oom       bool

	mu    sync.Mutex
	start int64
	sent  int
}

func (f *fakeTimeline) Start(startNS int64) { f.mu.Lock(); f.start = startNS; f.mu.Unlock() }

func (f *fakeTimeline) Memory(gpu int) (Memory, error) {
	f.mu.Lock()
	start := f.start
	f.mu.Unlock()
	if start != 0 {
		el := uint64(MonotonicNS() - start)
		switch {
		case el >= f.dur/3 && el < 2*f.dur/3:
			f.used.Store(f.peak)
		case el < f.dur:
			f.used.Store(f.peak / 2)
		default:
			f.used.Store(0)
		}
	}
	return f.fakeDevice.Memory(gpu)
}

func (f *fakeTimeline) Finished(now int64) (bool, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start != 0 && uint64(now-f.start) >= f.dur, f.code, f.oom
}

func (f *fakeTimeline) Events(now int64) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for f.sent < len(f.events) && f.start+f.events[f.sent].T <= now {
		e := f.events[f.sent]
		e.T += f.start
		out = append(out, e)
		f.sent++
	}
	return out
}
