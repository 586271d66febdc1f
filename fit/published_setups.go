package fit

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/memval/memval/analytic/model"
)

// Setups writes, as a Markdown table, how the breakdown formula fares on
// the evaluated measurements of each training setup (full training,
// LoRA, QLoRA, quantized inference, inference), each measurement compared
// on its own basis.
func (an *PublishedAnalysis) Setups(w io.Writer) {
	type row struct {
		n       int
		sources []string
		errs    []float64
	}
	rows := map[string]*row{}
	var order []string
	for _, r := range an.Runs {
		e := r.Prediction("breakdown")
		p := r.Result.Published
		if e == nil || e.Peak == 0 {
			continue
		}
		s := setupOf(r.Result.Scenario)
		x := rows[s]
		if x == nil {
			x = &row{}
			rows[s] = x
			order = append(order, s)
		}
		x.n++
		if !slices.Contains(x.sources, p.Source.Name) {
			x.sources = append(x.sources, p.Source.Name)
		}
		x.errs = append(x.errs, RelError(float64(PredictedOn(e, p.Basis)), float64(p.PeakBytes)))
	}
	slices.Sort(order)
	fmt.Fprintf(w, "| setup (breakdown formula, each on its basis) | measurements | sources | median \\|error\\| | max \\|error\\| | bias |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|\n")
	for _, s := range order {
		x := rows[s]
		var abs []float64
		var bias, mx float64
		for _, e := range x.errs {
			abs = append(abs, math.Abs(e))
			bias += e / float64(len(x.errs))
			mx = max(mx, math.Abs(e))
		}
		slices.Sort(abs)
		med := abs[len(abs)/2]
		if len(abs)%2 == 0 {
			med = (abs[len(abs)/2-1] + abs[len(abs)/2]) / 2
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s |\n", s, x.n, len(x.sources), pct(med), pct(mx), spct(bias))
	}
}

// setupOf names the setup of a published scenario's workload.
func setupOf(raw json.RawMessage) string {
	var sc PublishedScenario
	if json.Unmarshal(raw, &sc) != nil || sc.Workload == nil {
		return "unknown"
	}
	w := sc.Workload
	wf, _ := model.ParseWeights(w.Weights)
	switch {
	case w.LoRA() && wf.Quantized():
		return "qlora"
	case w.LoRA():
		return "lora"
	case w.Inference && wf.Quantized():
		return "inference, quantized weights"
	case w.Inference:
		return "inference"
	}
	return "full training"
}
