package profiler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sampling intervals.
const (
	DefaultInterval = time.Millisecond
	MinInterval     = 100 * time.Microsecond
)

// SamplerOptions configures a Sampler; the zero value samples every GPU
// every DefaultInterval and writes no trace.
type SamplerOptions struct {
	Interval time.Duration // default DefaultInterval; at least MinInterval
	Trace    *TraceWriter  // where rows go; nil: none (peaks are still tracked)
	// RanksPath, when set, is where per-process rows of ranked processes
	// go (ranks.csv, see RanksFile); Environ looks processes' environments
	// up (nil: /proc, or the Device when it is an EnvironSource).
	RanksPath string
	Environ   EnvironSource
}

// Sampler polls every GPU of a Device at a fixed interval, writes each
// reading to trace.csv and keeps the current and peak figures per GPU for a
// live progress line. A failed reading is a gap (a row with the error), not
// a stop. Sampling does not allocate (beyond what the Device does).
//
// Run (or SampleOnce) is called from one goroutine; Live, Counts and
// SetTracked may be called from any.
type Sampler struct {
	dev      Device
	gpus     []GPU
	interval time.Duration
	trace    *TraceWriter

	// tracked is the set of PIDs whose per-process memory counts; nil
	// means every process on the GPU counts.
	tracked atomic.Pointer[map[int]struct{}]

	live    []liveGPU
	samples atomic.Int64
	gaps    atomic.Int64

	procUnsupported atomic.Int64 // samples where Processes said ErrNotSupported (or failed)
	procForeign     atomic.Int64 // samples where processes were listed but none was tracked
	procMatched     atomic.Int64 // samples where a tracked process held memory
	infoVersion     atomic.Int64

	// Clock: CLOCK_MONOTONIC ns, read through Go's monotonic clock (the
	// same clock, read without a system call).
	monoBase int64
	timeBase time.Time

	err error // the first trace write error

	ranks *rankTracker // per-process attribution to ranks (ranks.go)
}

type liveGPU struct {
	used, peak, process, peakProcess atomic.Uint64
	reserved                         atomic.Uint64
}

// LiveGPU is one GPU's figures so far, in bytes.
type LiveGPU struct {
	Index                            int
	Used, Peak, Process, PeakProcess uint64
	Total                            uint64
}

// NewSampler asks the device for its GPUs and returns a sampler for all of
// them. It does not start sampling.
func NewSampler(dev Device, opts SamplerOptions) (*Sampler, error) {
	if dev == nil {
		return nil, errors.New("new sampler: no device")
	}
	iv := opts.Interval
	if iv == 0 {
		iv = DefaultInterval
	}
	if iv < MinInterval {
		return nil, fmt.Errorf("sampling interval %v is shorter than %v: use a longer --interval", iv, MinInterval)
	}
	gpus, err := dev.GPUs()
	if err != nil {
		return nil, fmt.Errorf("list GPUs of %s: %w", dev.Kind(), err)
	}
	if len(gpus) == 0 {
		return nil, fmt.Errorf("device %s has no GPU", dev.Kind())
	}
	s := &Sampler{dev: dev, gpus: gpus, interval: iv, trace: opts.Trace, live: make([]liveGPU, len(gpus))}
	env := opts.Environ
	if es, ok := dev.(EnvironSource); ok && env == nil {
		env = es
	}
	s.ranks = newRankTracker(env, opts.RanksPath)
	s.monoBase, s.timeBase = MonotonicNS(), time.Now()
	return s, nil
}

// GPUs returns the sampled GPUs.
func (s *Sampler) GPUs() []GPU { return s.gpus }

// Interval returns the sampling interval.
func (s *Sampler) Interval() time.Duration { return s.interval }

// Now returns CLOCK_MONOTONIC in nanoseconds (as MonotonicNS).
func (s *Sampler) Now() int64 { return s.monoBase + int64(time.Since(s.timeBase)) }

// SetTracked sets the PIDs whose per-process memory makes up the process
// figure. nil counts every process on the GPU (a simulated or replayed
// workload); an empty, non-nil slice counts none.
func (s *Sampler) SetTracked(pids []int) {
	if pids == nil {
		s.tracked.Store(nil)
		return
	}
	m := make(map[int]struct{}, len(pids))
	for _, p := range pids {
		m[p] = struct{}{}
	}
	s.tracked.Store(&m)
}

// SampleOnce reads every GPU once, now. It returns the first trace write
// error (sampling goes on regardless).
func (s *Sampler) SampleOnce() error {
	now := s.Now()
	for i := range s.gpus {
		s.sampleGPU(now, i)
	}
	return s.err
}

func (s *Sampler) sampleGPU(now int64, i int) {
	g := s.gpus[i].Index
	row := Sample{TNS: now, GPU: g}
	m, err := s.dev.Memory(g)
	if err != nil {
		row.Err = err.Error()
		s.gaps.Add(1)
		s.write(row)
		return
	}
	row.Used, row.Reserved, row.Total = m.Used, m.Reserved, m.Total
	if row.Total == 0 {
		row.Total = s.gpus[i].TotalBytes
	}
	s.infoVersion.Store(int64(m.InfoVersion))
	procs, perr := s.dev.Processes(g)
	if perr != nil {
		s.procUnsupported.Add(1)
	} else {
		row.HasProcess = true
		set := s.tracked.Load()
		for _, p := range procs {
			if set == nil {
				row.Process += p.Used
				continue
			}
			if _, ok := (*set)[p.PID]; ok {
				row.Process += p.Used
			}
		}
		switch {
		case row.Process > 0:
			s.procMatched.Add(1)
		case len(procs) > 0:
			s.procForeign.Add(1)
		}
		s.ranks.observe(now, g, procs, set)
	}
	l := &s.live[i]
	l.used.Store(row.Used)
	l.reserved.Store(row.Reserved)
	if row.Used > l.peak.Load() {
		l.peak.Store(row.Used)
	}
	l.process.Store(row.Process)
	if row.Process > l.peakProcess.Load() {
		l.peakProcess.Store(row.Process)
	}
	s.samples.Add(1)
	s.write(row)
}

func (s *Sampler) write(row Sample) {
	if s.trace == nil || s.err != nil {
		return
	}
	s.err = s.trace.Write(row)
}

// Run samples at every interval until ctx is done. It sleeps to absolute
// deadlines on CLOCK_MONOTONIC (clock_nanosleep, TIMER_ABSTIME): Go's
// timers are too coarse for sub-millisecond intervals. The schedule does
// not drift: a late wake-up is caught up (up to a few ticks; beyond that the
// missed ticks are dropped), it does not shift the later ones. Sleeps last at most 5 ms (1 ms when raw, below) so that a cancelled
// ctx stops it promptly. A trace write error stops it at once, and it
// returns that error. (SIGXFSZ, sent when a write passes RLIMIT_FSIZE, is
// ignored by the Go runtime, so such a write fails with EFBIG instead of
// killing memval.)
func (s *Sampler) Run(ctx context.Context) error {
	chunk := int64(5 * time.Millisecond)
	const maxLag = 4 // ticks late beyond which missed ticks are dropped, not caught up
	iv := int64(s.interval)
	// A raw system call sleeps without the Go scheduler's hand-off of the
	// processor (entersyscall, and sysmon waking another thread), which
	// halves the CPU cost of a wake-up (measured here: 2.2% against 4.4%
	// of a core at 1 kHz). It keeps its P while it sleeps, so it is used
	// only when another P is left for the rest of the program, and in
	// chunks of at most 1 ms so that a stop-the-world waits no longer.
	raw := runtime.GOMAXPROCS(0) >= 2
	if raw {
		chunk = int64(time.Millisecond)
	}
	done := ctx.Done()
	next := s.Now() + iv
	for {
		for now := s.Now(); now < next; now = s.Now() {
			ts := unix.NsecToTimespec(min(next, now+chunk))
			if raw {
				unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
					uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			} else {
				unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
			}
			select {
			case <-done:
				return s.err
			default:
			}
		}
		select {
		case <-done:
			return s.err
		default:
		}
		if err := s.SampleOnce(); err != nil {
			return err // a trace that cannot be written: stop, the runner says so
		}
		next += iv
		if now := s.Now(); now-next >= maxLag*iv {
			next += ((now-next)/iv + 1) * iv // too far behind: drop the missed ticks
		}
	}
}

// Live returns each GPU's current and peak figures.
func (s *Sampler) Live() []LiveGPU {
	out := make([]LiveGPU, len(s.gpus))
	for i := range s.gpus {
		l := &s.live[i]
		out[i] = LiveGPU{Index: s.gpus[i].Index, Used: l.used.Load(), Peak: l.peak.Load(),
			Process: l.process.Load(), PeakProcess: l.peakProcess.Load(), Total: s.gpus[i].TotalBytes}
	}
	return out
}

// Counts returns the successful readings and the gaps so far (all GPUs).
func (s *Sampler) Counts() (samples, gaps int) {
	return int(s.samples.Load()), int(s.gaps.Load())
}

// MemoryInfoVersion is the InfoVersion of the last successful reading.
func (s *Sampler) MemoryInfoVersion() int { return int(s.infoVersion.Load()) }

// processFallbackReason says why the process tree's figure is not
// available, from what the sampler saw; "" when it is.
func (s *Sampler) processFallbackReason() string {
	switch {
	case s.procMatched.Load() > 0:
		return ""
	case s.procForeign.Load() > 0:
		return "no process of the tree among the GPU's processes; in a container the PIDs are the host's"
	case s.procUnsupported.Load() > 0:
		return "per-process memory not supported by the device"
	default:
		return "no process of the tree held GPU memory"
	}
}
