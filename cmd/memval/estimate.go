package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/memval/memval/analytic"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newEstimateCmd) }

// estimateOptions are the flags of memval estimate.
type estimateOptions struct {
	model modelOptions

	batch, seq    int
	precision     string
	optimizer     string
	dropout       float64 // < 0: the model's own
	attention     string
	checkpointing string
	backend       string
	zero, dp, tp  int
	sp, inference bool

	formula     string
	gpu, budget string
	maxBatch    bool
	maxSeq      bool
	calibration string
	decimal     bool
	json        bool

	out io.Writer
}

func newEstimateCmd(s streams) *cobra.Command {
	opts := &estimateOptions{out: s.out}
	cmd := &cobra.Command{
		Use:   "estimate",
		Short: "Predict the GPU memory of a training or inference step, and whether it fits",
		Long: `estimate predicts, per GPU, the memory one training (or inference) step of a
model needs, with one formula or all of them (--formula all): a table by
component, the steady state between steps and the peak. With --gpu or
--budget it says whether the peak fits; with --max-batch or --max-seq it
finds the largest batch or sequence that does.

Formulas: ` + strings.Join(analytic.Formulas(), ", ") + `.`,
		Example: `  memval estimate --model gpt2 --batch 8 --seq 1024 --precision bf16 --gpu h100-80gb
  memval estimate --model llama-2-7b --seq 4096 --precision bf16 --zero 3 --dp 8 --gpu a100-80gb --max-batch
  memval estimate --model llama-3-8b --batch 4 --seq 8192 --inference --precision bf16-pure --formula all --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runEstimate(c.Context(), opts)
		},
	}
	opts.model.bind(cmd.Flags())
	f := cmd.Flags()
	f.IntVar(&opts.batch, "batch", 1, "micro-batch size per GPU")
	f.IntVar(&opts.seq, "seq", 1024, "sequence length in tokens")
	f.StringVar(&opts.precision, "precision", "fp32", "fp32, fp16, bf16 (autocast), bf16-pure or bf16-master")
	f.StringVar(&opts.optimizer, "optimizer", "adamw", "adamw, sgd, sgd-momentum or adam8bit")
	f.Float64Var(&opts.dropout, "dropout", -1, "dropout probability (default: the model's own)")
	f.StringVar(&opts.attention, "attention", "math", "math or flash")
	f.StringVar(&opts.checkpointing, "checkpointing", "none", "activation recomputation: none, full or selective")
	f.StringVar(&opts.backend, "backend", "cuda", "cuda or cpu")
	f.IntVar(&opts.zero, "zero", 0, "ZeRO stage 0..3 (3: FSDP full shard)")
	f.IntVar(&opts.dp, "dp", 1, "data-parallel degree")
	f.IntVar(&opts.tp, "tp", 1, "tensor-parallel degree")
	f.BoolVar(&opts.sp, "sp", false, "sequence parallelism (with --tp)")
	f.BoolVar(&opts.inference, "inference", false, "inference: weights, KV cache and logits")
	f.StringVar(&opts.formula, "formula", "breakdown", "formula: "+strings.Join(analytic.Formulas(), ", ")+", or all")
	f.StringVar(&opts.gpu, "gpu", "", "GPU to fit on, e.g. h100-80gb (see the list in the error for an unknown name)")
	f.StringVar(&opts.budget, "budget", "", "memory budget instead of --gpu, e.g. 80GiB or 24GB")
	f.BoolVar(&opts.maxBatch, "max-batch", false, "find the largest batch whose peak fits (needs --gpu or --budget)")
	f.BoolVar(&opts.maxSeq, "max-seq", false, "find the longest sequence whose peak fits (needs --gpu or --budget)")
	f.StringVar(&opts.calibration, "calibration", "", "`FILE`: a calibration.json written by memval fit; apply its fitted coefficients")
	f.BoolVar(&opts.decimal, "decimal", false, "print sizes in GB/MB (decimal) instead of GiB/MiB")
	f.BoolVar(&opts.json, "json", false, "print JSON (schema 1, see estimateReport)")
	return cmd
}

// estimateReport is what estimate --json prints. Schema 1:
//
//	{
//	  "schema": 1,
//	  "model": {<analytic.Arch fields>, "params": N},
//	  "workload": {<analytic.Workload, defaults filled>},
//	  "estimates": [<analytic.Estimate>...],        // one per formula, in order
//	  "gpu": {"name": "h100-80gb", "total_bytes": B}, // with --gpu or --budget (name "budget")
//	  "fits": true,                                   // first estimate's peak <= total_bytes (with a gpu)
//	  "max_batch": 17,                                // with --max-batch (first formula); "max_seq" with --max-seq
//	  "results": [{"formula", "fits", "free_bytes", "short_bytes", "max_batch", "max_seq", "unbounded", "reason", "warnings"}],
//	  "skipped": ["megatron: formula does not apply to inference", ...],
//	  "seed_rules": [{"dtype", "model_bytes", "inference_bytes", "training_bytes"}], // with the seed formula
//	  "warnings": ["calibration fitted on simulated data ...", "batch 64 is outside the fitted range 1..40: extrapolating"] // with --calibration
//	}
//
// Sizes are bytes. Fields are only added in later versions of schema 1.
type estimateReport struct {
	Schema    int                 `json:"schema"`
	Model     modelReport         `json:"model"`
	Workload  analytic.Workload   `json:"workload"`
	Estimates []analytic.Estimate `json:"estimates"`
	GPU       *gpuReport          `json:"gpu,omitempty"`
	Fits      *bool               `json:"fits,omitempty"`
	MaxBatch  *int                `json:"max_batch,omitempty"`
	MaxSeq    *int                `json:"max_seq,omitempty"`
	Results   []fitResult         `json:"results,omitempty"`
	Skipped   []string            `json:"skipped,omitempty"`
	// SeedRules, with the seed formula: the article's model memory per
	// dtype and its rules of thumb (inference ~2x, training ~4x).
	SeedRules []seedRule `json:"seed_rules,omitempty"`
	// Warnings, with --calibration: simulated data, extrapolation beyond
	// the fitted range (also in each result's warnings).
	Warnings []string `json:"warnings,omitempty"`
}

// seedRule is the seed article's model memory at one dtype.
type seedRule struct {
	DType          string `json:"dtype"`
	ModelBytes     uint64 `json:"model_bytes"`
	InferenceBytes uint64 `json:"inference_bytes"` // 2x model memory
	TrainingBytes  uint64 `json:"training_bytes"`  // 4x model memory
}

// seedRules computes the seed's model memory rules for n parameters.
func seedRules(n int64) ([]seedRule, error) {
	var rules []seedRule
	for _, dt := range []string{"fp32", "fp16", "bf16", "int8", "int4"} {
		bpp, err := analytic.DTypeBytes(dt)
		if err != nil {
			return nil, err
		}
		m, inf, tr, err := analytic.ModelMemory(n, bpp)
		if err != nil {
			return nil, err
		}
		rules = append(rules, seedRule{DType: dt, ModelBytes: m, InferenceBytes: inf, TrainingBytes: tr})
	}
	return rules, nil
}

type modelReport struct {
	analytic.Arch
	Params int64 `json:"params"`
}

type gpuReport struct {
	Name       string `json:"name"`
	TotalBytes uint64 `json:"total_bytes"`
}

// fitResult is one formula's verdict against the budget.
type fitResult struct {
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

// workload turns the flags into a Workload for model a, or a usage error
// naming the flag.
func (o *estimateOptions) workload(a analytic.Arch) (analytic.Workload, error) {
	w := analytic.Workload{
		Batch: o.batch, Seq: o.seq,
		Precision: analytic.Precision(o.precision), Optimizer: analytic.Optimizer(o.optimizer),
		Dropout: o.dropout, Attention: analytic.Attention(o.attention),
		Checkpointing: analytic.Checkpointing(o.checkpointing), Backend: analytic.Backend(o.backend),
		ZeRO: o.zero, DP: o.dp, TP: o.tp, SP: o.sp, Inference: o.inference,
	}
	if err := o.checkRanges(); err != nil {
		return w, err
	}
	if !o.model.changed("dropout") {
		w.Dropout = a.Dropout
	}
	if o.dp <= 0 {
		return w, usagef("--dp %d: must be a positive integer", o.dp)
	}
	if o.tp <= 0 {
		return w, usagef("--tp %d: must be a positive integer", o.tp)
	}
	if o.maxBatch {
		w.Batch = 1
	}
	if o.maxSeq {
		w.Seq = 1
	}
	return w, nil
}

// workloadFlags maps Workload JSON fields to flags.
var workloadFlags = map[string]string{
	"batch": "--batch", "seq": "--seq", "precision": "--precision", "optimizer": "--optimizer",
	"dropout": "--dropout", "attention": "--attention", "checkpointing": "--checkpointing",
	"backend": "--backend", "zero": "--zero", "dp": "--dp", "tp": "--tp",
}

// predictError maps an analytic error to a usage error naming the flag
// where the input is at fault.
func predictError(formula string, err error) error {
	var fe *analytic.FieldError
	switch {
	case errors.As(err, &fe):
		if flag, ok := workloadFlags[fe.Field]; ok {
			return usagef("%s %v: %s", flag, fe.Value, fe.Reason)
		}
		return usagef("model: %w", err)
	case errors.Is(err, analytic.ErrNotApplicable):
		return usagef("--formula %s: %v; drop --inference or choose another formula", formula, err)
	case errors.Is(err, analytic.ErrOverflow):
		return usagef("%s: the sizes overflow (more than 2^62 bytes); use a smaller --batch or --seq", formula)
	}
	return fmt.Errorf("%s: %w", formula, err)
}

func runEstimate(_ context.Context, o *estimateOptions) error {
	a, err := o.model.resolve()
	if err != nil {
		return err
	}
	formulas := []string{o.formula}
	if o.formula == "all" {
		formulas = analytic.Formulas()
	} else if analytic.FormulaDoc(o.formula) == "" {
		return usagef("--formula %q: unknown; use one of %s, or all", o.formula, strings.Join(analytic.Formulas(), ", "))
	}
	if o.maxBatch && o.maxSeq {
		return usagef("--max-batch and --max-seq are exclusive; give one of them")
	}
	var gpu *gpuReport
	switch {
	case o.gpu != "" && o.budget != "":
		return usagef("--gpu %q and --budget %q are exclusive; give one of them", o.gpu, o.budget)
	case o.gpu != "":
		g, err := analytic.GPUByName(o.gpu)
		if err != nil {
			return usagef("--gpu: %w", err)
		}
		gpu = &gpuReport{Name: g.Name, TotalBytes: g.Bytes}
	case o.budget != "":
		b, err := analytic.ParseBytes(o.budget)
		if err != nil {
			return usagef("--budget: %w", err)
		}
		if b == 0 {
			return usagef("--budget %q: must be more than 0 bytes", o.budget)
		}
		gpu = &gpuReport{Name: "budget", TotalBytes: b}
	}
	if (o.maxBatch || o.maxSeq) && gpu == nil {
		return usagef("--max-batch and --max-seq need a budget: give --gpu NAME or --budget SIZE")
	}
	var cal *analytic.Calibration
	if o.calibration != "" {
		if cal, err = o.loadCalibration(gpu); err != nil {
			return err
		}
	}
	w, err := o.workload(a)
	if err != nil {
		return err
	}

	rep := estimateReport{Schema: 1, GPU: gpu}
	if cal != nil {
		rep.Warnings = append(rep.Warnings, cal.Warnings()...)
	}
	for _, f := range formulas {
		var (
			e   analytic.Estimate
			n   int
			err error
		)
		switch {
		case o.maxBatch:
			n, e, err = analytic.MaxBatch(f, a, w, gpu.TotalBytes)
		case o.maxSeq:
			n, e, err = analytic.MaxSeq(f, a, w, gpu.TotalBytes)
		default:
			e, err = analytic.Predict(f, a, w)
		}
		res := fitResult{Formula: f}
		switch {
		case errors.Is(err, analytic.ErrNotApplicable) && len(formulas) > 1:
			rep.Skipped = append(rep.Skipped, err.Error())
			continue
		case errors.Is(err, analytic.ErrNoFit), errors.Is(err, analytic.ErrUnbounded):
			res.Reason = err.Error()
			res.Unbounded = errors.Is(err, analytic.ErrUnbounded)
		case err != nil:
			return predictError(f, err)
		}
		if cal != nil && f == cal.Formula {
			var warns []string
			wc := w
			if o.maxBatch {
				wc.Batch = max(n, 1)
			} else if o.maxSeq {
				wc.Seq = max(n, 1)
			}
			if e, warns, err = cal.Apply(e, a, wc); err != nil {
				return fmt.Errorf("--calibration: %w", err)
			}
			res.Warnings = warns
			rep.Warnings = append(rep.Warnings, warns...)
		}
		if o.maxBatch && !errors.Is(err, analytic.ErrUnbounded) {
			res.MaxBatch = &n
		}
		if o.maxSeq && !errors.Is(err, analytic.ErrUnbounded) {
			res.MaxSeq = &n
		}
		if gpu != nil {
			res.Fits = e.Peak <= gpu.TotalBytes && res.Reason == ""
			if e.Peak <= gpu.TotalBytes {
				res.FreeBytes = gpu.TotalBytes - e.Peak
			} else {
				res.ShortBytes = e.Peak - gpu.TotalBytes
			}
		}
		rep.Estimates = append(rep.Estimates, e)
		rep.Results = append(rep.Results, res)
	}
	if len(rep.Estimates) == 0 {
		return usagef("no formula applies: %s", strings.Join(rep.Skipped, "; "))
	}
	if !o.maxBatch {
		rep.Workload, _ = normalizedWorkload(w)
	} else {
		rep.Workload = w
	}
	rep.Model = modelReport{Arch: a, Params: rep.Estimates[0].Params}
	if slices.Contains(formulas, "seed") {
		if rep.SeedRules, err = seedRules(rep.Model.Params); err != nil {
			return predictError("seed", err)
		}
	}
	if gpu != nil {
		first := rep.Results[0]
		rep.Fits = &first.Fits
		rep.MaxBatch, rep.MaxSeq = first.MaxBatch, first.MaxSeq
	} else {
		rep.Results = nil
	}
	if o.json {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printEstimate(o.out, rep, o)
}

// normalizedWorkload fills the Workload defaults for the report.
func normalizedWorkload(w analytic.Workload) (analytic.Workload, error) {
	if w.DP == 0 {
		w.DP = 1
	}
	if w.TP == 0 {
		w.TP = 1
	}
	return w, nil
}

// printEstimate writes the human-readable report.
func printEstimate(out io.Writer, rep estimateReport, o *estimateOptions) error {
	size := analytic.FormatBytes
	if o.decimal {
		size = analytic.FormatBytesDecimal
	}
	var b strings.Builder
	w := rep.Workload
	name := rep.Model.Name
	if name == "" {
		name = rep.Model.Family
	}
	mode := "training"
	if w.Inference {
		mode = "inference"
	}
	fmt.Fprintf(&b, "model %s (%s parameters), %s, batch %d, seq %d, %s", name, groupThousands(rep.Model.Params), mode, w.Batch, w.Seq, w.Precision)
	if !w.Inference {
		fmt.Fprintf(&b, ", %s, %s attention, checkpointing %s", w.Optimizer, w.Attention, w.Checkpointing)
	}
	if w.DP > 1 || w.TP > 1 || w.ZeRO > 0 {
		fmt.Fprintf(&b, ", ZeRO-%d dp %d tp %d", w.ZeRO, w.DP, w.TP)
		if w.SP {
			b.WriteString(" sp")
		}
	}
	b.WriteString("\n")
	for i, e := range rep.Estimates {
		fmt.Fprintf(&b, "\nformula %s", e.Formula)
		if len(rep.Results) > i {
			if r := rep.Results[i]; r.MaxBatch != nil {
				fmt.Fprintf(&b, " at batch %d", *r.MaxBatch)
			} else if r.MaxSeq != nil {
				fmt.Fprintf(&b, " at seq %d", *r.MaxSeq)
			}
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  group\tterm\t%12s\twhen\n", "bytes")
		var total uint64
		for _, t := range e.Terms {
			when := "steady"
			if t.Peak {
				when = "peak"
			}
			if t.Phase != "" {
				when += " (" + t.Phase + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%12s\t%s\n", t.Group, t.Name, size(t.Bytes), when)
			total += t.Bytes
		}
		fmt.Fprintf(tw, "  total\tall terms\t%12s\t\n", size(total))
		fmt.Fprintf(tw, "  steady\tbetween steps\t%12s\t\n", size(e.Steady))
		fmt.Fprintf(tw, "  peak\thighest phase\t%12s\t\n", size(e.Peak))
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if len(rep.Results) > i {
			b.WriteString(verdict(rep.Results[i], rep.GPU, e, size))
		}
	}
	if len(rep.SeedRules) > 0 {
		b.WriteString("\nseed rules of thumb: model memory = N x bytes per parameter; inference ~2x, training ~4x\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  dtype\tmodel\tinference (2x)\ttraining (4x)\t")
		for _, r := range rep.SeedRules {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", r.DType, size(r.ModelBytes), size(r.InferenceBytes), size(r.TrainingBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nskipped: %s\n", s)
	}
	if len(rep.Warnings) > 0 {
		b.WriteString("\n")
		for _, wn := range rep.Warnings {
			fmt.Fprintf(&b, "warning: %s\n", wn)
		}
	}
	if len(rep.Estimates) > 1 {
		b.WriteString("\nsummary\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := "  formula\tsteady\tpeak\t"
		if rep.GPU != nil {
			head += "fits\t"
		}
		fmt.Fprintln(tw, head)
		for i, e := range rep.Estimates {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t", e.Formula, size(e.Steady), size(e.Peak))
			if rep.GPU != nil {
				fits := "no"
				if rep.Results[i].Fits {
					fits = "yes"
				}
				if r := rep.Results[i]; r.Unbounded {
					fits = "not bounded"
				} else if r.MaxBatch != nil {
					fits = "max batch " + strconv.Itoa(*r.MaxBatch)
				} else if r.MaxSeq != nil {
					fits = "max seq " + strconv.Itoa(*r.MaxSeq)
				}
				fmt.Fprintf(tw, "%s\t", fits)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// verdict is the "fits on" line of one formula.
func verdict(r fitResult, g *gpuReport, e analytic.Estimate, size func(uint64) string) string {
	if g == nil {
		return ""
	}
	on := fmt.Sprintf("%s (%s)", g.Name, size(g.TotalBytes))
	if g.Name == "budget" {
		on = "a budget of " + size(g.TotalBytes)
	}
	switch {
	case r.Reason != "":
		if r.MaxBatch != nil || r.MaxSeq != nil {
			return fmt.Sprintf("  on %s: 0 fit: %s\n", on, r.Reason)
		}
		return fmt.Sprintf("  on %s: %s\n", on, r.Reason)
	case r.MaxBatch != nil:
		return fmt.Sprintf("  max batch on %s: %d (peak %s, %s free)\n", on, *r.MaxBatch, size(e.Peak), size(r.FreeBytes))
	case r.MaxSeq != nil:
		return fmt.Sprintf("  max seq on %s: %d (peak %s, %s free)\n", on, *r.MaxSeq, size(e.Peak), size(r.FreeBytes))
	case r.Fits:
		return fmt.Sprintf("  fits on %s: yes, %s free\n", on, size(r.FreeBytes))
	}
	return fmt.Sprintf("  fits on %s: no, %s short\n", on, size(r.ShortBytes))
}
