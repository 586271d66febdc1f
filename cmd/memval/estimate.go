package main

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

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
	dist          distOptions
	ep            int     // expert-parallel degree
	moeImbalance  float64 // the busiest expert's tokens over the mean
	conv          convOptions
	ft            finetuneOptions
	gen           genOptions

	formula     string
	gpu, budget string
	maxBatch    bool
	maxSeq      bool
	calibration string
	allocConf   string
	context     string
	loading     string
	torch       string
	bnb         string
	plot        string
	decimal     bool
	json        bool

	out io.Writer
}

func newEstimateCmd(s streams) *cobra.Command {
	return newEstimateCmdWith(s, runEstimate)
}

// newEstimateCmdWith builds the command with run as its behaviour, so that
// flag parsing can be tested apart.
func newEstimateCmdWith(s streams, run func(context.Context, *estimateOptions) error) *cobra.Command {
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
			return run(c.Context(), opts)
		},
	}
	opts.model.bind(cmd.Flags())
	f := cmd.Flags()
	f.IntVar(&opts.batch, "batch", 1, "micro-batch size per GPU")
	f.IntVar(&opts.seq, "seq", 1024, "sequence length in tokens")
	f.StringVar(&opts.precision, "precision", "fp32", orList(model.Precisions())+"; fp16 and bf16 are autocast")
	f.StringVar(&opts.optimizer, "optimizer", "adamw", orList(model.Optimizers()))
	f.Float64Var(&opts.dropout, "dropout", -1, "dropout probability (default: the model's own)")
	f.StringVar(&opts.attention, "attention", "math", orList(model.Attentions()))
	f.StringVar(&opts.checkpointing, "checkpointing", "none", "activation recomputation: "+orList(model.CheckpointingChoices())+" (layers:N: every N-th layer, torchtitan)")
	f.StringVar(&opts.backend, "backend", "cuda", orList(model.Backends()))
	f.IntVar(&opts.zero, "zero", 0, "ZeRO stage 0..3 (3: FSDP full shard)")
	f.IntVar(&opts.dp, "dp", 1, "data-parallel degree")
	f.IntVar(&opts.tp, "tp", 1, "tensor-parallel degree")
	f.BoolVar(&opts.sp, "sp", false, "sequence parallelism (with --tp)")
	f.IntVar(&opts.ep, "ep", 1, "expert-parallel degree: a mixture-of-experts model's experts sharded over ep of the --dp ranks")
	f.Float64Var(&opts.moeImbalance, "moe-imbalance", 1, "mixture of experts: the busiest expert's routed tokens over the mean (1: balanced); sets the busiest --ep rank's share")
	f.BoolVar(&opts.inference, "inference", false, "inference: weights, KV cache and logits")
	opts.dist.bind(f)
	opts.conv.bind(f)
	opts.ft.bind(f)
	opts.gen.bind(f)
	f.StringVar(&opts.formula, "formula", "breakdown", "formula: "+strings.Join(analytic.Formulas(), ", ")+", or all")
	f.StringVar(&opts.gpu, "gpu", "", "GPU to fit on, e.g. h100-80gb (see the list in the error for an unknown name)")
	f.StringVar(&opts.budget, "budget", "", "memory budget instead of --gpu, e.g. 80GiB or 24GB")
	f.BoolVar(&opts.maxBatch, "max-batch", false, "find the largest batch whose peak fits (needs --gpu or --budget)")
	f.BoolVar(&opts.maxSeq, "max-seq", false, "find the longest sequence whose peak fits (needs --gpu or --budget)")
	f.StringVar(&opts.calibration, "calibration", "", "`FILE`: a calibration.json written by memval fit; apply its fitted coefficients")
	f.StringVar(&opts.allocConf, "alloc-conf", "", "the caching allocator's PYTORCH_CUDA_ALLOC_CONF, e.g. expandable_segments:True,max_split_size_mb:128")
	f.StringVar(&opts.context, "context", "", "`BYTES` of CUDA context instead of memval's figure, e.g. 520MiB, or a FILE written by memval devices --measure-context --write")
	f.StringVar(&opts.loading, "module-loading", "lazy", "CUDA_MODULE_LOADING: lazy (PyTorch's default) or eager (a larger CUDA context)")
	f.StringVar(&opts.torch, "torch", "", "`MAJOR.MINOR` of the PyTorch release the step runs on, where its saved tensors differ from torch 2.x's (before 1.11 softmax kept its input); default: 2.x")
	f.StringVar(&opts.bnb, "bitsandbytes", "", "`MAJOR.MINOR` of the bitsandbytes release under 4-bit weights, where it differs (before 0.43 each 4-bit layer kept its input for backward); default: 0.43 or later")
	f.StringVar(&opts.plot, "plot", "", "`FILE` (.svg or .png): draw allocated and reserved over the step's phases, with the GPU's capacity and the peak")
	f.BoolVar(&opts.decimal, "decimal", false, "print sizes in GB/MB (decimal) instead of GiB/MiB")
	f.BoolVar(&opts.json, "json", false, "print JSON (schema 1, see estimate.Report)")
	return cmd
}

// request turns the flags into the estimate to make. The model flags are
// resolved here; the rest is checked by estimate.Run.
func (o *estimateOptions) request() (estimate.Request, error) {
	a, err := o.model.resolve()
	if err != nil {
		return estimate.Request{}, err
	}
	if err := o.checkRanges(); err != nil {
		return estimate.Request{}, err
	}
	seq, err := imageSeq(a, o.seq, o.model.changed("seq"), o.maxSeq) // estimate_vision.go
	if err != nil {
		return estimate.Request{}, err
	}
	// --ep and --moe-imbalance go into the workload only when given, so
	// that a dense model's request and report are as before.
	ep, imbalance := 0, 0.0
	if o.model.changed("ep") {
		ep = o.ep
	}
	if o.model.changed("moe-imbalance") {
		imbalance = o.moeImbalance
	}
	dropout := o.dropout
	if !o.model.changed("dropout") {
		dropout = -1 // the model's own
	}
	if o.loading != "lazy" && o.loading != "eager" {
		return estimate.Request{}, usagef("--module-loading %q: use lazy or eager", o.loading)
	}
	if o.plot != "" && !strings.HasSuffix(o.plot, ".svg") && !strings.HasSuffix(o.plot, ".png") {
		return estimate.Request{}, usagef("--plot %q: the file must end in .svg or .png", o.plot)
	}
	req := estimate.Request{
		Arch: a,
		Workload: model.Workload{
			Batch: o.batch, Seq: seq,
			Precision: model.Precision(o.precision), Optimizer: model.Optimizer(o.optimizer),
			Dropout: dropout, Attention: model.Attention(o.attention),
			Checkpointing: model.Checkpointing(o.checkpointing), Backend: model.Backend(o.backend),
			ZeRO: o.zero, DP: o.dp, TP: o.tp, SP: o.sp, Inference: o.inference,
			PP: oneIsUnset(o.dist.pp), PPInterleave: oneIsUnset(o.dist.interleave), Microbatches: o.dist.microbatches,
			CP: oneIsUnset(o.dist.cp), Offload: model.Offload(o.dist.offload), Engine: model.Engine(o.dist.engine), BucketView: o.dist.bucketView, FSDPMixed: o.dist.fsdpMP,
			EP: ep, MoEImbalance: imbalance, Torch: o.torch, Bitsandbytes: o.bnb,
		},
		Formula: o.formula,
		GPU:     o.gpu, Budget: o.budget,
		MaxBatch: o.maxBatch, MaxSeq: o.maxSeq,
		Calibration: o.calibration,
		AllocConf:   o.allocConf, Context: o.context,
		EagerLoading: o.loading == "eager",
		Timeline:     o.plot != "",
	}
	o.conv.into(&req.Workload)
	if err := o.gen.into(&req.Workload, o.model.changed); err != nil {
		return req, err
	}
	o.conv.attnImplDefaults(&req.Workload, a, o.model.changed("attention"))
	return req, o.ft.apply(&req.Arch, &req.Workload)
}

func runEstimate(_ context.Context, o *estimateOptions) error {
	req, err := o.request()
	if err != nil {
		return err
	}
	rep, err := estimate.Run(req)
	var bad *estimate.InputError
	if errors.As(err, &bad) {
		return asUsage(err)
	}
	if err != nil {
		return err
	}
	if o.plot != "" {
		if err := plotStep(o.plot, rep); err != nil {
			return err
		}
	}
	if o.json {
		return rep.WriteJSON(o.out)
	}
	return printEstimate(o.out, rep, o.decimal)
}
