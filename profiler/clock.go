package profiler

import (
	"time"

	"golang.org/x/sys/unix"
)

// clockBase pairs one clock_gettime(CLOCK_MONOTONIC) reading with a Go
// time.Time taken at the same moment. Go's monotonic clock is
// CLOCK_MONOTONIC read through the vDSO, so their difference is constant
// and later readings need no system call (unix.ClockGettime makes one each
// time, which was two thirds of a simulated sample's cost).
var clockBase = newClockBase()

type monoClock struct {
	ns int64
	t  time.Time
}

func newClockBase() monoClock {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC exists on every Linux; reaching this is a broken
		// platform, a programmer-level failure.
		panic("profiler: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return monoClock{ns: ts.Nano(), t: time.Now()}
}

// MonotonicNS is CLOCK_MONOTONIC in nanoseconds: the clock of trace.csv's
// t_ns column and of the side channel's "t" (Python's time.monotonic_ns()).
func MonotonicNS() int64 {
	return clockBase.ns + int64(time.Since(clockBase.t))
}
