package estimate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// Request is one estimate: the model, the workload, which formulas to use
// and what to fit the peak into. Each field says the option of `memval
// estimate` it comes from.
type Request struct {
	// Arch is the model, normalized (--model, --config or the dimension
	// flags).
	Arch model.Arch
	// Workload is the step's shape and settings (--batch, --seq,
	// --precision, ...). Its DP and TP must be at least 1; a negative
	// Dropout means the model's own (Arch.Dropout). With MaxBatch the
	// batch, with MaxSeq the sequence length is searched and the given
	// one ignored.
	Workload model.Workload

	// Formula is one of analytic.Formulas(), or "all" for every formula
	// that applies (--formula, whose default is breakdown). It is
	// required.
	Formula string
	// GPU names the GPU to fit on (--gpu, see analytic.GPUByName), or
	// Budget gives the memory instead, e.g. "80GiB" (--budget). At most
	// one of them; with neither, nothing is fitted.
	GPU, Budget string
	// MaxBatch finds the largest batch (--max-batch), MaxSeq the longest
	// sequence (--max-seq) whose peak fits; at most one, and only with a
	// GPU or Budget.
	MaxBatch, MaxSeq bool
	// Calibration is the path of a calibration.json written by memval fit
	// (--calibration); its fitted coefficients are applied to every
	// estimate. "" applies none.
	Calibration string
	// AllocConf is the caching allocator's configuration in
	// PYTORCH_CUDA_ALLOC_CONF syntax (--alloc-conf); "" is PyTorch's
	// default.
	AllocConf string
	// Context is the CUDA context in bytes, e.g. "520MiB", or a context
	// file written by memval devices --measure-context --write (--context);
	// "" takes memval's figure for the module loading mode.
	Context string
	// EagerLoading is CUDA_MODULE_LOADING=EAGER (--module-loading eager).
	EagerLoading bool
	// Timeline keeps each estimate's played step (Device.Timeline), for
	// --plot.
	Timeline bool
}

// device returns the device-level options req asks for.
func (req Request) device() (analytic.DeviceOptions, error) {
	opts := analytic.DeviceOptions{GPU: req.GPU, EagerLoading: req.EagerLoading, Timeline: req.Timeline}
	cfg, err := alloc.ParseConf(req.AllocConf)
	if err != nil {
		return opts, inputf("--alloc-conf %q: %w", req.AllocConf, err)
	}
	opts.Alloc = cfg
	if req.Context != "" {
		f, err := analytic.ParseContextOption(req.Context)
		if err != nil {
			return opts, inputf("--context: %w", err)
		}
		opts.Context, opts.ContextGiven, opts.ContextFigure = f.Bytes, true, f
	}
	return opts, nil
}

// InputError is an error that is the Request's fault (a usage error of the
// command). Its message names the option at fault and what to do.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputf(format string, args ...any) error {
	return &InputError{fmt.Errorf(format, args...)}
}

// formulas returns the formulas req.Formula names.
func (req Request) formulas() ([]string, error) {
	switch {
	case req.Formula == "all":
		return analytic.Formulas(), nil
	case analytic.FormulaDoc(req.Formula) == "":
		return nil, inputf("--formula %q: unknown; use one of %s, or all", req.Formula, strings.Join(analytic.Formulas(), ", "))
	}
	return []string{req.Formula}, nil
}

// gpu returns what the peak is fitted into, or nil for nothing.
func (req Request) gpu() (*GPU, error) {
	switch {
	case req.GPU != "" && req.Budget != "":
		return nil, inputf("--gpu %q and --budget %q are exclusive; give one of them", req.GPU, req.Budget)
	case req.GPU != "":
		g, err := analytic.GPUByName(req.GPU)
		if err != nil {
			return nil, inputf("--gpu: %w", err)
		}
		return &GPU{Name: g.Name, TotalBytes: g.Bytes}, nil
	case req.Budget != "":
		b, err := analytic.ParseBytes(req.Budget)
		if err != nil {
			return nil, inputf("--budget: %w", err)
		}
		if b == 0 {
			return nil, inputf("--budget %q: must be more than 0 bytes", req.Budget)
		}
		return &GPU{Name: "budget", TotalBytes: b}, nil
	}
	return nil, nil
}

// workload returns the workload to estimate: the model's dropout where
// none is given, and batch or sequence 1 where it is searched.
func (req Request) workload() (model.Workload, error) {
	w := req.Workload
	if w.Dropout < 0 {
		w.Dropout = req.Arch.Dropout
	}
	if w.DP <= 0 {
		return w, inputf("--dp %d: must be a positive integer", w.DP)
	}
	if w.TP <= 0 {
		return w, inputf("--tp %d: must be a positive integer", w.TP)
	}
	if req.MaxBatch {
		w.Batch = 1
	}
	if req.MaxSeq {
		w.Seq = 1
	}
	return w, nil
}

// workloadFlags maps Workload JSON fields to the command's flags.
var workloadFlags = map[string]string{
	"batch": "--batch", "seq": "--seq", "precision": "--precision", "optimizer": "--optimizer",
	"dropout": "--dropout", "attention": "--attention", "checkpointing": "--checkpointing",
	"backend": "--backend", "zero": "--zero", "dp": "--dp", "tp": "--tp",
	"pp": "--pp", "pp_interleave": "--pp-interleave", "microbatches": "--microbatches", "pp_stage": "--pp-stage",
	"cp": "--cp", "offload": "--offload", "engine": "--engine", "bucket_view": "--bucket-view", "fsdp_mp": "--fsdp-mp", "inference": "--inference",
	"ep": "--ep", "moe_imbalance": "--moe-imbalance",
	"lora_rank": "--lora-rank", "lora_alpha": "--lora-alpha", "lora_dropout": "--lora-dropout", "lora_targets": "--lora-targets",
	"weights": "--weights", "optimizer_impl": "--optimizer-impl", "grad_accum": "--grad-accum", "zero_grad": "--zero-grad",
	"head": "--head", "labels": "--head",
	"attn_impl":           "--attn-impl",
	"offload_activations": "--offload-activations",
	"prompt":              "--prompt", "generate": "--generate", "kv_cache": "--kv-cache", "prompt_lengths": "--prompt-lengths", "logits": "--logits",
}

// predictError maps an analytic error to an *InputError naming the flag
// where the input is at fault.
func predictError(formula string, err error) error {
	var fe *model.FieldError
	switch {
	case errors.As(err, &fe):
		if flag, ok := workloadFlags[fe.Field]; ok {
			return inputf("%s %v: %s", flag, fe.Value, fe.Reason)
		}
		return inputf("model: %w", err)
	case errors.Is(err, analytic.ErrNotApplicable):
		// The formulas say "to inference" when inference is what they lack.
		if strings.Contains(err.Error(), "to inference") {
			return inputf("--formula %s: %v; drop --inference or choose another formula", formula, err)
		}
		return inputf("--formula %s: %v; choose another formula", formula, err)
	case errors.Is(err, analytic.ErrOverflow):
		return inputf("%s: the sizes overflow (more than 2^62 bytes); use a smaller --batch or --seq", formula)
	}
	return fmt.Errorf("%s: %w", formula, err)
}
