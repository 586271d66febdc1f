package estimate

import (
	"errors"
	"fmt"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// Rank is the estimate of one kind of rank, where ranks differ: each
// pipeline stage holds its own layers and micro-batches in flight (the
// first the embeddings, the last the head and the logits). Without a
// pipeline there is one kind, "every rank" (with offloading, to show the
// host memory beside the GPU's).
type Rank struct {
	Stage     int                 `json:"pp_stage"`
	Ranks     string              `json:"ranks"` // which ranks, e.g. "pp stage 0 (first)"
	Estimates []analytic.Estimate `json:"estimates"`
	Results   []Result            `json:"results,omitempty"` // with a GPU
}

// label names the ranks of stage s of p.
func label(s, p int) string {
	switch {
	case p == 1:
		return "every rank"
	case s == 0:
		return "pp stage 0 (first)"
	case s == p-1:
		return fmt.Sprintf("pp stage %d (last)", s)
	}
	return fmt.Sprintf("pp stage %d", s)
}

// ranks fills rep.Ranks with every pipeline stage's estimates (one entry
// without a pipeline), and makes the top-level estimates those of the
// stage that decides: with --max-batch or --max-seq the smallest size
// found, else the highest device peak of the first formula. rep.Workload's
// pp_stage says which stage that is.
func (req Request) ranks(rep *Report, formulas []string, w model.Workload, gpu *GPU, cal *analytic.Calibration, dev *analytic.DeviceOptions) error {
	p := w.PPDegree()
	worst := -1
	for s := 0; s < p; s++ {
		ws := w
		ws.PPStage = s
		r := Rank{Stage: s, Ranks: label(s, p)}
		for _, f := range formulas {
			e, res, err := req.one(f, ws, gpu, cal, dev)
			switch {
			case errors.Is(err, analytic.ErrNotApplicable):
				continue
			case err != nil:
				return err
			}
			r.Estimates = append(r.Estimates, e)
			r.Results = append(r.Results, res)
		}
		if len(r.Estimates) == 0 {
			continue
		}
		if gpu == nil {
			r.Results = nil
		}
		rep.Ranks = append(rep.Ranks, r)
		if worst < 0 || worse(r, rep.Ranks[worst], req) {
			worst = len(rep.Ranks) - 1
		}
	}
	if worst < 0 {
		return nil
	}
	d := rep.Ranks[worst]
	rep.Estimates = append(rep.Estimates[:0], d.Estimates...)
	if gpu != nil {
		rep.Results = append(rep.Results[:0], d.Results...)
	}
	rep.Workload.PPStage = d.Stage
	return nil
}

// worse reports whether rank a decides over b: a smaller largest size
// (when solving), or a higher device peak.
func worse(a, b Rank, req Request) bool {
	if req.MaxBatch || req.MaxSeq {
		n := func(r Rank) int {
			if len(r.Results) == 0 {
				return -1
			}
			x := r.Results[0].MaxBatch
			if req.MaxSeq {
				x = r.Results[0].MaxSeq
			}
			if x == nil {
				return int(^uint(0) >> 1)
			}
			return *x
		}
		return n(a) < n(b)
	}
	return a.Estimates[0].DevicePeak() > b.Estimates[0].DevicePeak()
}
