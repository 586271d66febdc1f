package estimate

import (
	"encoding/json"
	"io"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// Report is what Run returns and `memval estimate --json` prints. Schema 1:
//
//	{
//	  "schema": 1,
//	  "model": {<model.Arch fields>, "params": N},
//	  "workload": {<model.Workload, defaults filled>},
//	  "estimates": [<analytic.Estimate>...],        // one per formula, in order
//	  "gpu": {"name": "h100-80gb", "total_bytes": B}, // with --gpu or --budget (name "budget")
//	  "fits": true,                                   // first estimate's peak <= total_bytes (with a gpu)
//	  "max_batch": 17,                                // with --max-batch (first formula); "max_seq" with --max-seq
//	  "results": [{"formula", "fits", "free_bytes", "short_bytes", "max_batch", "max_seq", "unbounded", "reason", "warnings"}],
//	  "skipped": ["megatron: formula does not apply to inference", ...],
//	  "seed_rules": [{"dtype", "model_bytes", "inference_bytes", "training_bytes"}], // with the seed formula
//	  "ranks": [{"pp_stage", "ranks", "estimates", "results"}],  // with pp, cp, offload or engine
//	  "warnings": ["calibration fitted on simulated data ...", "batch 64 is outside the fitted range 1..40: extrapolating"] // with a calibration
//	}
//
// Sizes are bytes. Fields are only added in later versions of schema 1.
type Report struct {
	Schema    int                 `json:"schema"`
	Model     Model               `json:"model"`
	Workload  model.Workload      `json:"workload"`
	Estimates []analytic.Estimate `json:"estimates"`
	GPU       *GPU                `json:"gpu,omitempty"`
	Fits      *bool               `json:"fits,omitempty"`
	MaxBatch  *int                `json:"max_batch,omitempty"`
	MaxSeq    *int                `json:"max_seq,omitempty"`
	// Results has one verdict per estimate, in the same order; only with a
	// GPU.
	Results []Result `json:"results,omitempty"`
	// Skipped names the formulas of "all" that do not apply, with why.
	Skipped []string `json:"skipped,omitempty"`
	// SeedRules, with the seed formula: the article's model memory per
	// dtype and its rules of thumb (inference ~2x, training ~4x).
	SeedRules []SeedRule `json:"seed_rules,omitempty"`
	// Warnings, with a calibration: simulated data, extrapolation beyond
	// the fitted range (also in the calibrated result's warnings).
	Warnings []string `json:"warnings,omitempty"`
	// Ranks, with pp, cp, offload or an engine (Workload.Distributed):
	// each kind of rank's estimates; the top-level ones are those of the
	// rank that decides (see ranks.go).
	Ranks []Rank `json:"ranks,omitempty"`
}

// Model is the model estimated and its parameter count.
type Model struct {
	model.Arch
	Params int64 `json:"params"`
	// TrainableParams is the parameters the step trains when that is not
	// all of them (LoRA: the adapters, and a classifier head); 0 for full
	// training (every parameter) and inference.
	TrainableParams int64 `json:"trainable_params,omitempty"`
}

// GPU is what the peak is fitted into: a named GPU, or a budget (Name
// "budget").
type GPU struct {
	Name       string `json:"name"`
	TotalBytes uint64 `json:"total_bytes"`
}

// Budget reports whether the GPU is a --budget rather than a named GPU.
func (g GPU) Budget() bool { return g.Name == "budget" }

// Result is one formula's verdict against the GPU.
type Result struct {
	Formula    string   `json:"formula"`
	Fits       bool     `json:"fits"`
	FreeBytes  uint64   `json:"free_bytes,omitempty"`
	ShortBytes uint64   `json:"short_bytes,omitempty"`
	MaxBatch   *int     `json:"max_batch,omitempty"`
	MaxSeq     *int     `json:"max_seq,omitempty"`
	Unbounded  bool     `json:"unbounded,omitempty"` // the formula does not grow with the searched size
	Reason     string   `json:"reason,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// SeedRule is the seed article's model memory at one dtype.
type SeedRule struct {
	DType          string `json:"dtype"`
	ModelBytes     uint64 `json:"model_bytes"`
	InferenceBytes uint64 `json:"inference_bytes"` // 2x model memory
	TrainingBytes  uint64 `json:"training_bytes"`  // 4x model memory
}

// seedDTypes are the dtypes of the seed's rules of thumb, in print order.
var seedDTypes = []string{"fp32", "fp16", "bf16", "int8", "int4"}

// seedRules computes the seed's model memory rules for n parameters.
func seedRules(n int64) ([]SeedRule, error) {
	var rules []SeedRule
	for _, dt := range seedDTypes {
		bpp, err := analytic.DTypeBytes(dt)
		if err != nil {
			return nil, err
		}
		m, inf, tr, err := analytic.ModelMemory(n, bpp)
		if err != nil {
			return nil, err
		}
		rules = append(rules, SeedRule{DType: dt, ModelBytes: m, InferenceBytes: inf, TrainingBytes: tr})
	}
	return rules, nil
}

// WriteJSON writes r as indented JSON (schema 1), as --json prints it.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
