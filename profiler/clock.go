package profiler

import "golang.org/x/sys/unix"

// MonotonicNS is CLOCK_MONOTONIC in nanoseconds: the clock of trace.csv's
// t_ns column and of the side channel's "t" (Python's time.monotonic_ns()).
func MonotonicNS() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC exists on every Linux; reaching this is a broken
		// platform, a programmer-level failure.
		panic("profiler: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
