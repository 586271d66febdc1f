package profiler

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestMonotonicNSIsClockMonotonic: MonotonicNS, derived from Go's clock,
// lies between two direct clock_gettime(CLOCK_MONOTONIC) readings taken
// around it (within the pairing error of clockBase, far under 100 µs).
func TestMonotonicNSIsClockMonotonic(t *testing.T) {
	raw := func() int64 {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		return ts.Nano()
	}
	const slack = 100_000 // ns
	for i := 0; i < 1000; i++ {
		before := raw()
		got := MonotonicNS()
		after := raw()
		if got < before-slack || got > after+slack {
			t.Fatalf("MonotonicNS %d outside [%d, %d] ± %d ns", got, before, after, slack)
		}
	}
}

func BenchmarkMonotonicNS(b *testing.B) {
	for b.Loop() {
		MonotonicNS()
	}
}
