package model

import (
	"fmt"
	"slices"
	"strings"
)

// Precision says how weights, gradients and activations are stored.
type Precision string

const (
	FP32       Precision = "fp32"        // everything fp32
	FP16Mixed  Precision = "fp16"        // torch.autocast(fp16): fp32 weights, grads and states; 16-bit activations where autocast casts
	BF16Mixed  Precision = "bf16"        // torch.autocast(bf16): as fp16
	BF16Pure   Precision = "bf16-pure"   // model.to(bfloat16): bf16 weights, grads, states, activations
	BF16Master Precision = "bf16-master" // bf16 weights and grads with fp32 master weights in the optimizer (Megatron / DeepSpeed style)
)

// Optimizer names the optimizer whose state is kept per parameter.
type Optimizer string

const (
	AdamW       Optimizer = "adamw"        // exp_avg + exp_avg_sq
	Adam8bit    Optimizer = "adam8bit"     // bitsandbytes 8-bit states
	SGD         Optimizer = "sgd"          // no state
	SGDMomentum Optimizer = "sgd-momentum" // momentum buffer
)

// Attention is how attention scores are computed.
type Attention string

const (
	MathAttention  Attention = "math"  // eager: softmax(QK^T) kept per head
	FlashAttention Attention = "flash" // SDPA/flash: no S*S matrix kept, a logsumexp per row instead
)

// Checkpointing is the activation recomputation strategy.
type Checkpointing string

const (
	NoCheckpointing        Checkpointing = "none"
	FullCheckpointing      Checkpointing = "full"      // only each layer's input is kept
	SelectiveCheckpointing Checkpointing = "selective" // attention core (scores, softmax, dropout) recomputed
)

// Backend is where the framework runs; it changes how some tensors are kept
// (torch's CPU dropout keeps a mask in the input's dtype, CUDA a 1-byte mask).
type Backend string

const (
	CUDA Backend = "cuda"
	CPU  Backend = "cpu"
)

// Workload is one training (or inference) step's shape and settings. The
// zero value of every optional field is documented on the field.
type Workload struct {
	Batch int `json:"batch"` // B, micro-batch per GPU
	Seq   int `json:"seq"`   // S, tokens per sample

	Precision     Precision     `json:"precision"`     // default fp32
	Optimizer     Optimizer     `json:"optimizer"`     // default adamw
	Dropout       float64       `json:"dropout"`       // probability; 0 means no dropout layers run
	Attention     Attention     `json:"attention"`     // default math
	Checkpointing Checkpointing `json:"checkpointing"` // default none
	Backend       Backend       `json:"backend"`       // default cuda

	ZeRO int  `json:"zero"` // 0 (plain DDP), 1, 2 or 3 (FSDP full shard)
	DP   int  `json:"dp"`   // data-parallel degree; 0 means 1
	TP   int  `json:"tp"`   // tensor-parallel degree; 0 means 1
	SP   bool `json:"sp"`   // sequence parallelism (with TP)
	// EP is the expert-parallel degree: a mixture-of-experts model's
	// experts are sharded over EP of the DP data-parallel ranks, and the
	// routed tokens travel to their experts' ranks and back (all-to-all);
	// 0 means 1.
	EP int `json:"ep,omitempty"`
	// MoEImbalance is the busiest expert's routed tokens over the mean
	// (k*B*S/experts per rank): 1 (0 means 1) is perfect balance. It sets
	// the busiest expert-parallel rank's share of the routed rows; with
	// EP 1 the grouped experts keep k*B*S rows whatever the balance.
	MoEImbalance float64 `json:"moe_imbalance,omitempty"`

	Inference bool `json:"inference,omitempty"` // weights + KV cache only

	// Distributed settings beyond ZeRO and TP (see parallel.go); every
	// zero value means "not used", so workloads without them encode as
	// before.
	PP           int     `json:"pp,omitempty"`            // pipeline-parallel stages; 0 means 1
	PPInterleave int     `json:"pp_interleave,omitempty"` // virtual stages (model chunks) per pipeline rank; 0 means 1 (plain 1F1B)
	Microbatches int     `json:"microbatches,omitempty"`  // micro-batches per step (gradient accumulation); 0 means enough to fill the pipeline
	PPStage      int     `json:"pp_stage,omitempty"`      // the pipeline stage estimated, 0 (first) .. PP-1 (last)
	CP           int     `json:"cp,omitempty"`            // context-parallel degree; 0 means 1
	Offload      Offload `json:"offload,omitempty"`       // CPU offload: "", optimizer or params
	Engine       Engine  `json:"engine,omitempty"`        // whose communication buffers to count: "", ddp, fsdp, fsdp2, deepspeed
	BucketView   bool    `json:"bucket_view,omitempty"`   // DDP gradient_as_bucket_view=True: no bucket copies of the gradients
	FSDPMixed    string  `json:"fsdp_mp,omitempty"`       // FSDP MixedPrecision PARAM[:REDUCE] (fsdp_mp.go); "": none

	// How the training loop computes the loss (see conventions.go); the
	// zero values are memval's own program, so workloads without them
	// encode as before.
	Loss       Loss `json:"loss,omitempty"`        // "" (shift), hf, torchtitan, nanogpt, chunked[:N], fused
	FreeLogits bool `json:"free_logits,omitempty"` // the loop drops the logits before backward (transformers' Trainer, torchtitan, torchtune); false: held until the step ends
	// Fine-tuning settings (see finetune.go); every zero value means full
	// training as before.
	LoRARank      int           `json:"lora_rank,omitempty"`      // LoRA rank r; 0: no LoRA, every weight trained
	LoRAAlpha     float64       `json:"lora_alpha,omitempty"`     // scaling alpha/r; 0 means r (memory does not depend on it)
	LoRADropout   float64       `json:"lora_dropout,omitempty"`   // dropout on each adapter's input
	LoRATargets   string        `json:"lora_targets,omitempty"`   // comma-separated module names as PEFT matches them, or all-linear; "": the family's query and value projections
	Weights       string        `json:"weights,omitempty"`        // base weights' storage: fp32, fp16, bf16, int8, nf4, fp4, int4:G; "": the precision's
	OptimizerImpl OptimizerImpl `json:"optimizer_impl,omitempty"` // foreach, fused or for-loop; "": torch's default (foreach)
	GradAccum     int           `json:"grad_accum,omitempty"`     // micro-batches accumulated per optimizer step; 0 means 1
	ZeroGrad      ZeroGrad      `json:"zero_grad,omitempty"`      // none (set_to_none=True, the default) or zeros
	// AttnImpl is whose modeling code and attention implementation run
	// (see attention_impl.go): "" (memval's hand-built program), eager,
	// sdpa or flash-attention-2 (transformers'); it sets Attention.
	AttnImpl AttnImpl `json:"attn_impl,omitempty"`
	// OffloadActivations keeps the inputs of the checkpointed layers in
	// host memory (see checkpoint_offload.go); needs full or layers:N.
	OffloadActivations bool `json:"offload_activations,omitempty"`
	// Generation (inference only, see generation.go); every zero value
	// means one forward over Seq tokens, as before.
	Prompt        int    `json:"prompt,omitempty"`         // prompt tokens; 0: Seq (or the longest of PromptLengths)
	Generate      int    `json:"generate,omitempty"`       // tokens generated after the prompt
	KVCache       string `json:"kv_cache,omitempty"`       // dynamic, static, sliding:W, quantized:BITS; "": dynamic
	PromptLengths string `json:"prompt_lengths,omitempty"` // comma-separated prompt lengths of a ragged batch, padded to the longest
	Logits        string `json:"logits,omitempty"`         // last (generate's logits_to_keep=1) or all; "": last
	// Torch and Bitsandbytes are the releases the step runs on, MAJOR.MINOR
	// (releases.go); "": the ones memval measures against.
	Torch        string `json:"torch,omitempty"`
	Bitsandbytes string `json:"bitsandbytes,omitempty"`
}

// WithDefaults returns w with its zero fields set to their documented
// defaults, or a *FieldError naming the first bad field.
func (w Workload) WithDefaults() (Workload, error) {
	if w.Batch <= 0 {
		return w, &FieldError{Field: "batch", Value: w.Batch, Reason: "must be a positive integer"}
	}
	if w.Seq <= 0 {
		return w, &FieldError{Field: "seq", Value: w.Seq, Reason: "must be a positive integer"}
	}
	if w.Batch > MaxDim {
		return w, &FieldError{Field: "batch", Value: w.Batch, Reason: fmt.Sprintf("out of range: must be at most %d", MaxDim)}
	}
	if w.Seq > MaxDim {
		return w, &FieldError{Field: "seq", Value: w.Seq, Reason: fmt.Sprintf("out of range: must be at most %d", MaxDim)}
	}
	var err error
	if w.Precision, err = enumOrDefault("precision", w.Precision, FP32, Precisions()); err != nil {
		return w, err
	}
	if w.Optimizer, err = enumOrDefault("optimizer", w.Optimizer, AdamW, Optimizers()); err != nil {
		return w, err
	}
	if err := w.applyAttnImpl(); err != nil { // attention_impl.go
		return w, err
	}
	if w.Attention, err = enumOrDefault("attention", w.Attention, MathAttention, Attentions()); err != nil {
		return w, err
	}
	if w.Checkpointing, err = checkpointingOrDefault(w.Checkpointing); err != nil {
		return w, err
	}
	if w.Backend, err = enumOrDefault("backend", w.Backend, CUDA, Backends()); err != nil {
		return w, err
	}
	if w.ZeRO < 0 || w.ZeRO > 3 {
		return w, &FieldError{Field: "zero", Value: w.ZeRO, Reason: "must be 0, 1, 2 or 3"}
	}
	if w.DP < 0 || w.DP > MaxDim {
		return w, &FieldError{Field: "dp", Value: w.DP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.TP < 0 || w.TP > MaxDim {
		return w, &FieldError{Field: "tp", Value: w.TP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.EP < 0 || w.EP > MaxDim {
		return w, &FieldError{Field: "ep", Value: w.EP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.EP == 0 {
		w.EP = 1
	}
	if w.MoEImbalance == 0 {
		w.MoEImbalance = 1
	}
	if !(w.MoEImbalance >= 1 && w.MoEImbalance <= MaxDim) { // also rejects NaN
		return w, &FieldError{Field: "moe_imbalance", Value: w.MoEImbalance,
			Reason: "must be at least 1 (the busiest expert's tokens over the mean; 1 is balanced)"}
	}
	if w.DP == 0 {
		w.DP = 1
	}
	if w.TP == 0 {
		w.TP = 1
	}
	if err := w.checkParallel(); err != nil {
		return w, err
	}
	if err := w.checkConventions(); err != nil {
		return w, err
	}
	if err := w.checkGeneration(); err != nil { // generation.go
		return w, err
	}
	if err := w.checkReleases(); err != nil { // releases.go
		return w, err
	}
	if !(w.Dropout >= 0 && w.Dropout < 1) {
		return w, &FieldError{Field: "dropout", Value: w.Dropout, Reason: "must be a probability in [0, 1)"}
	}
	return w, w.checkFinetune()
}

// The lists below are the one place each kind's values are enumerated:
// flag help, spec parsers and error messages take them from here, in this
// order.

// Precisions lists the Precision values a Workload accepts.
func Precisions() []string {
	return []string{string(FP32), string(FP16Mixed), string(BF16Mixed), string(BF16Pure), string(BF16Master)}
}

// Optimizers lists the Optimizer values a Workload accepts.
func Optimizers() []string {
	return []string{string(AdamW), string(SGD), string(SGDMomentum), string(Adam8bit), string(Adafactor), string(Lion), string(PagedAdamW8bit)}
}

// Attentions lists the Attention values a Workload accepts.
func Attentions() []string {
	return []string{string(MathAttention), string(FlashAttention)}
}

// Checkpointings lists the Checkpointing values a Workload accepts.
func Checkpointings() []string {
	return []string{string(NoCheckpointing), string(FullCheckpointing), string(SelectiveCheckpointing)}
}

// Backends lists the Backend values a Workload accepts.
func Backends() []string {
	return []string{string(CUDA), string(CPU)}
}

// CheckEnum returns a *FieldError naming field unless value is one of
// choices (one of the lists above).
func CheckEnum(field, value string, choices []string) error {
	if slices.Contains(choices, value) {
		return nil
	}
	return enumError(field, value, choices)
}

// enumOrDefault returns v, or def when v is empty, or a *FieldError naming
// field when v is not one of choices.
func enumOrDefault[T ~string](field string, v, def T, choices []string) (T, error) {
	if v == "" {
		return def, nil
	}
	return v, CheckEnum(field, string(v), choices)
}

func enumError(field, value string, choices []string) error {
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", value), Reason: "unknown value; use one of " + strings.Join(choices, ", ")}
}
