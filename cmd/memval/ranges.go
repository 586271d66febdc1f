package main

import (
	"time"

	"github.com/memval/memval/profiler"
)

// Upper bounds of numeric flags that nothing else bounds.
const (
	maxJobs    = 256         // memval sweep --jobs
	maxSimStep = time.Minute // --sim-step
)

// checkRanges checks estimate's flags that the formulas do not: --dropout
// when given, and --sp, which needs a tensor-parallel group.
func (o *estimateOptions) checkRanges() error {
	if o.model.changed("dropout") && !(o.dropout >= 0 && o.dropout < 1) {
		return usagef("--dropout %v: must be a probability in [0, 1) (leave it out for the model's own)", o.dropout)
	}
	if o.ep < 1 {
		return usagef("--ep %d: must be a positive integer (1: no expert parallelism)", o.ep)
	}
	if !(o.moeImbalance >= 1) {
		return usagef("--moe-imbalance %v: must be at least 1 (the busiest expert's tokens over the mean; 1 is balanced)", o.moeImbalance)
	}
	if o.sp && o.tp < 2 {
		return usagef("--sp needs --tp 2 or more: sequence parallelism splits activations across the tensor-parallel group (--tp is %d)", o.tp)
	}
	return nil
}

// checkRanges checks validate's and sweep's --interval and --sim-step
// (0 means the default).
func (m *measureOptions) checkRanges() error {
	if m.interval != 0 && (m.interval < profiler.MinInterval || m.interval > maxInterval) {
		return usagef("--interval %v: want %v to %v", m.interval, profiler.MinInterval, maxInterval)
	}
	if m.simStep < 0 || m.simStep > maxSimStep {
		return usagef("--sim-step %v: want 0 (the simulator's default) to %v", m.simStep, maxSimStep)
	}
	return nil
}
