package fit

import (
	"encoding/json"
	"fmt"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler/schema"
)

// Inconsistent says why a published measurement cannot be what its
// conditions state, or "" when nothing says so. A run on one model replica
// (no ZeRO sharding, tensor or pipeline parallelism, offload) holds its
// weights, gradients and optimizer states all at once when the optimizer
// steps; a figure below their bytes, on any basis (allocated <= reserved
// <= NVML used), measured some other setup. The bytes are the breakdown's
// steady weight, gradient and optimizer terms of the stated setup, which
// equal the truth on the CPU (parameter, trainable and optimizer-state
// counts within 0.01 %); only a figure more than inconsistentMargin below
// them counts. Such a measurement is kept and shown, with every
// formula's figure, but no formula is scored on it. It needs the stored
// predictions (TestPublishedPredictions), decoded as preds.
func Inconsistent(res *schema.Result, preds []analytic.Estimate) string {
	p := res.Published
	if p == nil || p.NotEvaluated != "" || p.PeakBytes == 0 || res.Summary.OOM || len(res.Scenario) == 0 {
		return ""
	}
	var sc PublishedScenario
	if err := json.Unmarshal(res.Scenario, &sc); err != nil || sc.Workload == nil {
		return ""
	}
	w := sc.Workload
	if w.ZeRO > 0 || w.TP > 1 || w.PP > 1 || w.CP > 1 || w.Offload != "" {
		return "" // sharded or offloaded: what one GPU holds at once is not the whole model's states
	}
	var e *analytic.Estimate
	for i := range preds {
		if preds[i].Formula == "breakdown" {
			e = &preds[i]
		}
	}
	if e == nil {
		return ""
	}
	var floor uint64
	for _, t := range e.Terms {
		if !t.Peak && (t.Group == analytic.GroupWeights || t.Group == analytic.GroupGradients || t.Group == analytic.GroupOptimizer) {
			floor += t.Bytes
		}
	}
	if float64(p.PeakBytes) >= (1-inconsistentMargin)*float64(floor) {
		return ""
	}
	what := "weights, gradients and optimizer states the stated setup holds at once when the optimizer steps"
	if w.Inference {
		what = "weights the stated setup holds"
	}
	return fmt.Sprintf("the figure (%s) is %.0f %% below the %s of %s (%s parameters)",
		GiB(float64(p.PeakBytes)), 100*(1-float64(p.PeakBytes)/float64(floor)), GiB(float64(floor)), what, thousands(e.Params))
}

// inconsistentMargin is how far below the model states a figure must be
// to be called inconsistent: room for what the floor may count that a run
// does not hold (a buffer, a tied weight), so that only a setup that cannot
// have run as stated is set apart.
const inconsistentMargin = 0.05

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
