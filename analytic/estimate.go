package analytic

import (
	"encoding/json"
	"fmt"
)

// Group says what a Term's memory is for.
type Group string

const (
	GroupWeights     Group = "weights"
	GroupGradients   Group = "gradients"
	GroupOptimizer   Group = "optimizer"
	GroupActivations Group = "activations"
	GroupLogits      Group = "logits"
	GroupKVCache     Group = "kv_cache"
	GroupInput       Group = "input"
	GroupOverhead    Group = "overhead" // CUDA context, workspaces, allocator effects
)

// Term is one named part of a prediction. Bytes = Coef * Feature, rounded
// up. Feature is the formula's unit quantity (parameters N, elements B*S*H*L,
// B*S*S*h*L, B*S*V, or 1 for a constant) and Coef its bytes per unit, so a
// calibration can refit Coef per term name without knowing the formula.
type Term struct {
	Name    string  `json:"name"`
	Group   Group   `json:"group"`
	Feature float64 `json:"feature"`
	Unit    string  `json:"unit"` // what Feature counts, e.g. "params", "B*S*H*L"
	Coef    float64 `json:"coef"` // bytes per unit
	Bytes   uint64  `json:"bytes"`
	Peak    bool    `json:"peak_only,omitempty"` // counted in Peak but not in Steady
	// Phase, when set, limits the term to one phase of the step (PhaseForward,
	// PhaseOptimizer): Peak is then the largest phase total (see Totals).
	// Empty means live throughout.
	Phase string `json:"phase,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Estimate is one formula's prediction for one Arch and Workload.
type Estimate struct {
	Formula string   `json:"formula"`
	Params  int64    `json:"params"`
	Terms   []Term   `json:"terms"`
	Steady  uint64   `json:"steady_bytes"` // memory held between steps (weights, grads, optimizer states, overhead)
	Peak    uint64   `json:"peak_bytes"`   // highest point of a step
	Notes   []string `json:"notes,omitempty"`
	// Device, from PredictDevice, is what the device shows: the allocated,
	// reserved and device (NVML) peaks.
	Device *Device `json:"device,omitempty"`
	// Host, with offloading, is the host memory per rank (memory_parallel.go).
	Host *Host `json:"host,omitempty"`
}

// EncodeEstimates writes each estimate as the raw JSON object result.json
// keeps (schema.Result.Predictions).
func EncodeEstimates(es []Estimate) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(es))
	for i := range es {
		b, err := json.Marshal(&es[i])
		if err != nil {
			return nil, fmt.Errorf("encode prediction %s: %w", es[i].Formula, err)
		}
		out[i] = b
	}
	return out, nil
}

// DecodeEstimates reads the predictions of a result.json
// (schema.Result.Predictions). Errors name the prediction by its index.
func DecodeEstimates(raw []json.RawMessage) ([]Estimate, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]Estimate, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, fmt.Errorf("field predictions[%d]: %w", i, err)
		}
	}
	return out, nil
}
