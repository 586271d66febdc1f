package scenarios

import (
	"math"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// checkTransformersTruth holds r, one truth job run on transformers' class
// of a under w, to the breakdown, as the per-family truth tests do: the
// job ran transformers' class; its parameters, all trainable, are
// model.Params'; its optimizer-state bytes (optimStates) and its
// saved-for-backward bytes (analytic.SavedActivations) are within 0.1%,
// a mismatch listing the saved tensors beside the terms; with
// wantMeasured every term is noted measured. It returns the terms.
func checkTransformersTruth(t *testing.T, name string, a model.Arch, w model.Workload, r truthResult, wantMeasured bool) []analytic.Term {
	t.Helper()
	if r.Impl != "transformers" {
		t.Fatalf("%s: impl %q, want transformers", name, r.Impl)
	}
	pb, err := model.Params(a)
	if err != nil {
		t.Fatal(err)
	}
	if r.Params != pb.Total || r.Trainable != pb.Total {
		t.Errorf("%s: params %d trainable %d, want model.Params %d", name, r.Params, r.Trainable, pb.Total)
	}
	if opt := optimStates(t, a, w); math.Abs(float64(r.OptimBytes)-opt) > 0.001*opt {
		t.Errorf("%s: optimizer state %d bytes, want the breakdown's %.0f", name, r.OptimBytes, opt)
	}
	terms, err := analytic.SavedActivations(a, w)
	if err != nil {
		t.Fatal(err)
	}
	want, got := float64(analytic.SavedBytes(terms)), float64(r.SavedBytes[0])
	t.Logf("%-60s analytic %8.0f transformers %8.0f", name, want, got)
	if math.Abs(got-want) > 0.001*want {
		t.Errorf("%s: transformers %s saved %.0f bytes, want analytic %.0f (%+.0f, %+.3f%%)\n%s",
			name, r.Transformers, got, want, got-want, 100*(got/want-1), listSavedAndTerms(r.Saved, terms))
	}
	if wantMeasured {
		for _, term := range terms {
			if !strings.HasPrefix(term.Note, "measured") {
				t.Errorf("%s: term %s note %q, want measured", name, term.Name, term.Note)
				break
			}
		}
	}
	return terms
}
