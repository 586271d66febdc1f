package analytic

import (
	"errors"
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// ErrNoFit is returned (wrapped) by MaxBatch and MaxSeq when even a batch
// (or sequence) of 1 does not fit the budget. The returned Estimate is the
// one for 1, so the caller can say by how much.
var ErrNoFit = errors.New("does not fit")

// ErrUnbounded is returned (wrapped) by MaxBatch and MaxSeq when the
// formula's peak does not grow with the searched size (accelerate,
// deepspeed), so the budget cannot bound it.
var ErrUnbounded = errors.New("peak does not grow with the searched size")

// Search limits: the largest batch and sequence the solver tries.
const (
	MaxSolveBatch = 1 << 24
	MaxSolveSeq   = 1 << 24
)

// MaxBatch returns the largest micro-batch B for which formula's Peak for
// a and w (with w.Batch = B) is at most budget bytes, and the Estimate at
// that batch. It assumes Peak is non-decreasing in B and searches by
// doubling, then bisection: O(log B) calls to Predict. Predict errors at
// batch 1 are returned as they are; when batch 1 does not fit the result
// is 0, the Estimate for batch 1 and an error wrapping ErrNoFit.
func MaxBatch(formula string, a model.Arch, w model.Workload, budget uint64) (int, Estimate, error) {
	return MaxBatchDevice(formula, a, w, budget, nil)
}

// MaxBatchDevice is MaxBatch fitting the device peak (PredictDevice with
// opts) into the budget; with nil opts it is MaxBatch.
func MaxBatchDevice(formula string, a model.Arch, w model.Workload, budget uint64, opts *DeviceOptions) (int, Estimate, error) {
	return maxFit(formula, "batch", MaxSolveBatch, budget, func(n int, e *Estimate) error {
		w.Batch = n
		if opts != nil {
			return PredictDevice(e, formula, a, w, *opts)
		}
		return PredictInto(e, formula, a, w)
	})
}

// MaxSeq is MaxBatch for the sequence length S at w.Batch. The search stops
// at the model's learned position table (a.MaxPositions after Normalize)
// when it has one: a result equal to that size means the table, not the
// budget, is the limit.
func MaxSeq(formula string, a model.Arch, w model.Workload, budget uint64) (int, Estimate, error) {
	return MaxSeqDevice(formula, a, w, budget, nil)
}

// MaxSeqDevice is MaxSeq fitting the device peak (PredictDevice with opts)
// into the budget; with nil opts it is MaxSeq.
func MaxSeqDevice(formula string, a model.Arch, w model.Workload, budget uint64, opts *DeviceOptions) (int, Estimate, error) {
	limit := MaxSolveSeq
	na := a
	if err := na.Normalize(); err != nil {
		return 0, Estimate{}, err
	}
	if na.MaxPositions > 0 {
		limit = na.MaxPositions
	}
	return maxFit(formula, "seq", limit, budget, func(n int, e *Estimate) error {
		w.Seq = n
		if opts != nil {
			return PredictDevice(e, formula, na, w, *opts)
		}
		return PredictInto(e, formula, na, w)
	})
}

// maxFit finds the largest n in [1, limit] with eval(n).Peak <= budget. An
// error from eval above 1 (an overflow) counts as "does not fit". eval
// writes into one of two Estimates that the search swaps, so that their
// terms are allocated once.
func maxFit(formula, what string, limit int, budget uint64, eval func(int, *Estimate) error) (int, Estimate, error) {
	var best, cur Estimate // best: the largest n that fits so far
	if err := eval(1, &best); err != nil {
		return 0, Estimate{}, err
	}
	if p := best.DevicePeak(); p > budget {
		return 0, best, fmt.Errorf("%s: %w: %s 1 needs %s, %s more than the budget of %s", formula, ErrNoFit, what,
			FormatBytes(p), FormatBytes(p-budget), FormatBytes(budget))
	}
	fits := func(n int) bool {
		if err := eval(n, &cur); err != nil || cur.DevicePeak() > budget {
			return false
		}
		best, cur = cur, best
		return true
	}
	if limit > 1 {
		if err := eval(2, &cur); err == nil && cur.Peak == best.Peak && cur.DevicePeak() == best.DevicePeak() {
			return 0, best, fmt.Errorf("%s: %w (%s); the budget does not bound it", formula, ErrUnbounded, what)
		}
	}
	lo := 1 // lo fits
	hi := 0 // hi does not fit (0: not found yet)
	for hi == 0 {
		next := lo * 2
		if next > limit {
			next = limit
		}
		if next == lo {
			return lo, best, nil
		}
		if fits(next) {
			lo = next
		} else {
			hi = next
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, best, nil
}
