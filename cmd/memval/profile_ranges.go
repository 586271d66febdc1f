package main

import (
	"time"

	"github.com/memval/memval/analytic/model"
)

// Bounds of memval profile's numeric flags beyond "positive".
const (
	// maxInterval is the longest sampling interval: a peak between two
	// samples is missed, and a minute already misses most of a step's.
	maxInterval = time.Minute
	// maxSimSteps bounds --sim-steps: the simulator plans every step ahead.
	maxSimSteps = 100_000
)

// checkSimRanges checks the upper bounds of the --sim-* flags.
func (o *profileOptions) checkSimRanges() error {
	switch {
	case o.simBatch > model.MaxDim:
		return usagef("--sim-batch %d: want 1 to %d", o.simBatch, model.MaxDim)
	case o.simSeq > model.MaxDim:
		return usagef("--sim-seq %d: want 1 to %d", o.simSeq, model.MaxDim)
	case o.simSteps > maxSimSteps:
		return usagef("--sim-steps %d: want 1 to %d", o.simSteps, maxSimSteps)
	}
	return nil
}
