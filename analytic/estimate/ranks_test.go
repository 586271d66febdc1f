package estimate

import (
	"errors"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func TestRunPerRank(t *testing.T) {
	req := gpt2(t, func(r *Request) {
		r.Formula, r.GPU = "breakdown", "h100-80gb"
		r.Workload.PP = 4
	})
	rep, err := Run(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ranks) != 4 {
		t.Fatalf("pp 4: %d ranks, want 4", len(rep.Ranks))
	}
	var worst uint64
	for s, r := range rep.Ranks {
		if r.Stage != s || len(r.Estimates) != 1 || len(r.Results) != 1 {
			t.Fatalf("rank %d: %+v", s, r)
		}
		worst = max(worst, r.Estimates[0].DevicePeak())
	}
	if got := rep.Estimates[0].DevicePeak(); got != worst || rep.Ranks[rep.Workload.PPStage].Estimates[0].DevicePeak() != worst {
		t.Errorf("top-level device peak %d (stage %d), want the highest stage's %d", got, rep.Workload.PPStage, worst)
	}
	if rep.Ranks[0].Ranks != "pp stage 0 (first)" || rep.Ranks[3].Ranks != "pp stage 3 (last)" {
		t.Errorf("labels %q, %q", rep.Ranks[0].Ranks, rep.Ranks[3].Ranks)
	}

	// --max-batch: the stage with the smallest batch decides.
	req.MaxBatch = true
	if rep, err = Run(req); err != nil {
		t.Fatal(err)
	}
	least := int(^uint(0) >> 1)
	for _, r := range rep.Ranks {
		least = min(least, *r.Results[0].MaxBatch)
	}
	if *rep.MaxBatch != least {
		t.Errorf("max batch %d, want the smallest stage's %d", *rep.MaxBatch, least)
	}

	// Offload: one kind of rank, with its host memory.
	req = gpt2(t, func(r *Request) {
		r.Formula = "all"
		r.Workload.Offload = model.OffloadOptimizer
	})
	if rep, err = Run(req); err != nil {
		t.Fatal(err)
	}
	if len(rep.Ranks) != 1 || rep.Ranks[0].Ranks != "every rank" || rep.Ranks[0].Estimates[0].Host == nil || rep.Ranks[0].Estimates[0].Host.Bytes == 0 {
		t.Fatalf("offload: ranks %+v", rep.Ranks)
	}
	if len(rep.Estimates) != 1 || len(rep.Skipped) == 0 {
		t.Errorf("offload with all formulas: %d estimates, skipped %v; want the breakdown only", len(rep.Estimates), rep.Skipped)
	}

	// A bad degree names its flag.
	req = gpt2(t, func(r *Request) { r.Formula = "breakdown"; r.Workload.PP = 5 })
	var bad *InputError
	if _, err = Run(req); !errors.As(err, &bad) || !containsAll(err.Error(), "--pp 5", "12 layers") {
		t.Errorf("pp 5: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
