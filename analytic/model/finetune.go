package model

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file holds the settings of the fine-tuning setups people run (issue
// 15): LoRA adapters, quantized base weights, the optimizer's
// implementation and gradient accumulation. Each is a Workload field whose
// zero value means full training as before.

// Optimizers beyond the four of workload.go.
const (
	Adafactor      Optimizer = "adafactor"       // factored second moments (a row and a column vector per matrix), no first moment (torch.optim.Adafactor, beta1 None)
	Lion           Optimizer = "lion"            // one momentum buffer (lion-pytorch; bitsandbytes Lion)
	PagedAdamW8bit Optimizer = "paged-adamw8bit" // bitsandbytes PagedAdamW8bit: 8-bit states in paged (unified) memory
)

// OptimizerImpl is torch.optim's implementation of the step, which decides
// its temporaries.
type OptimizerImpl string

const (
	ImplDefault OptimizerImpl = ""         // torch's choice: foreach on CUDA
	ImplForeach OptimizerImpl = "foreach"  // one temporary of the gradients' size
	ImplFused   OptimizerImpl = "fused"    // none
	ImplForLoop OptimizerImpl = "for-loop" // one temporary of the largest parameter's size
)

// OptimizerImpls lists the OptimizerImpl values a Workload accepts.
func OptimizerImpls() []string {
	return []string{string(ImplForeach), string(ImplFused), string(ImplForLoop)}
}

// ZeroGrad is how optimizer.zero_grad() leaves the gradients.
type ZeroGrad string

const (
	ZeroGradNone  ZeroGrad = "none"  // set_to_none=True (torch's default): freed after each step
	ZeroGradZeros ZeroGrad = "zeros" // set_to_none=False: kept allocated (zeroed) for the whole step
)

// ZeroGrads lists the ZeroGrad values a Workload accepts.
func ZeroGrads() []string { return []string{string(ZeroGradNone), string(ZeroGradZeros)} }

// Weight storage formats of the base model's weights (Workload.Weights).
const (
	WeightsFP32 = "fp32"
	WeightsFP16 = "fp16"
	WeightsBF16 = "bf16"
	WeightsInt8 = "int8" // bitsandbytes LLM.int8: int8 weights, one fp32 scale per output row
	WeightsNF4  = "nf4"  // bitsandbytes 4-bit NormalFloat, blocks of 64, double quantization
	WeightsFP4  = "fp4"  // bitsandbytes 4-bit float, as nf4
	// Without double quantization (bitsandbytes compress_statistics=False:
	// BitsAndBytesConfig's default bnb_4bit_use_double_quant=False,
	// Lightning's and litgpt's "bnb.nf4" as against "bnb.nf4-dq").
	WeightsNF4NoDQ = "nf4-nodq"
	WeightsFP4NoDQ = "fp4-nodq"
	WeightsInt4    = "int4" // GPTQ/AWQ-style: "int4:G", groups of G input rows
)

// WeightFormats lists the values of Workload.Weights (int4 with its group
// size, e.g. int4:128).
func WeightFormats() []string {
	return []string{WeightsFP32, WeightsFP16, WeightsBF16, WeightsInt8, WeightsNF4, WeightsFP4, WeightsNF4NoDQ, WeightsFP4NoDQ, WeightsInt4 + ":G"}
}

// LoRAAllLinear is the LoRA target that adapts every linear layer of the
// transformer layers (PEFT's "all-linear", which leaves the output layer
// out).
const LoRAAllLinear = "all-linear"

// WeightFormat is a parsed Workload.Weights.
type WeightFormat struct {
	Name  string // one of the Weights* constants; "" for the precision's own
	Group int    // int4's group size
}

// Bnb4bit reports whether the format is one of bitsandbytes' 4-bit ones
// (Linear4bit: nf4 or fp4, with or without double quantization).
func (f WeightFormat) Bnb4bit() bool {
	switch f.Name {
	case WeightsNF4, WeightsFP4, WeightsNF4NoDQ, WeightsFP4NoDQ:
		return true
	}
	return false
}

// Quantized reports whether the format stores the linear layers'
// weights in fewer than 16 bits with scales.
func (f WeightFormat) Quantized() bool {
	switch f.Name {
	case WeightsInt8, WeightsNF4, WeightsFP4, WeightsNF4NoDQ, WeightsFP4NoDQ, WeightsInt4:
		return true
	}
	return false
}

// BytesPerParam is the storage of one weight of a linear layer of in
// inputs in format f, its scales included:
//
//	fp32 4, fp16 and bf16 2
//	int8 (LLM.int8, bitsandbytes Int8Params): 1 + 4/in  (int8 CB, one fp32 SCB per output row)
//	nf4, fp4 (bitsandbytes Params4bit, blocksize 64, compress_statistics=True):
//	     0.5 + 1/64 + 4/(64*256) + 1092/(in*out)
//	     (packed 4-bit codes; an 8-bit absmax per block of 64, quantized again
//	     in blocks of 256 with an fp32 absmax; per tensor the fp32 code books
//	     of 16 and 256 entries and the offset)
//	nf4-nodq, fp4-nodq (compress_statistics=False): 0.5 + 4/64 + 64/(in*out)
//	     (packed 4-bit codes, an fp32 absmax per block of 64, the code book
//	     of 16 fp32 entries per tensor)
//	int4:G (GPTQ/AWQ packed int32 qweight): 0.5 + (2 + 0.5)/G + 4/out
//	     (an fp16 scale and a packed 4-bit zero per group of G inputs and output,
//	     GPTQ's int32 g_idx per input row)
//
// from the documented storage formats; the 4-bit formats and int8 are held to
// bitsandbytes' CPU backend within 0.1% (scenarios TestQuantStorageTruth),
// int4 is derived. The
// precision's own format (Name "") returns 0: the caller takes its bytes.
func (f WeightFormat) BytesPerParam(in, out float64) float64 {
	switch f.Name {
	case WeightsFP32:
		return 4
	case WeightsFP16, WeightsBF16:
		return 2
	case WeightsInt8:
		return 1 + 4/in
	case WeightsNF4, WeightsFP4:
		return 0.5 + 1.0/64 + 4.0/(64*256) + 1092/(in*out)
	case WeightsNF4NoDQ, WeightsFP4NoDQ:
		return 0.5 + 4.0/64 + 64/(in*out)
	case WeightsInt4:
		return 0.5 + 2.5/float64(f.Group) + 4/out
	}
	return 0
}

// ParseWeights parses a Workload.Weights value; "" is the precision's own.
func ParseWeights(s string) (WeightFormat, error) {
	if s == "" {
		return WeightFormat{}, nil
	}
	bad := &FieldError{Field: "weights", Value: fmt.Sprintf("%q", s),
		Reason: "unknown weight format; use one of " + strings.Join(WeightFormats(), ", ") + " (G a group size such as 128)"}
	name, group, hasGroup := strings.Cut(s, ":")
	switch name {
	case WeightsFP32, WeightsFP16, WeightsBF16, WeightsInt8, WeightsNF4, WeightsFP4, WeightsNF4NoDQ, WeightsFP4NoDQ:
		if hasGroup {
			return WeightFormat{}, bad
		}
		return WeightFormat{Name: name}, nil
	case WeightsInt4:
		g, err := strconv.Atoi(group)
		if !hasGroup || err != nil || g < 1 || g > MaxDim {
			return WeightFormat{}, &FieldError{Field: "weights", Value: fmt.Sprintf("%q", s),
				Reason: "int4 needs a positive group size, e.g. int4:128 (GPTQ/AWQ's usual) or int4:32"}
		}
		return WeightFormat{Name: name, Group: g}, nil
	}
	return WeightFormat{}, bad
}

// LoRA returns whether w trains LoRA adapters instead of the weights.
func (w Workload) LoRA() bool { return w.LoRARank > 0 }

// checkFinetune checks the fields of this file (called by WithDefaults).
func (w *Workload) checkFinetune() error {
	if w.LoRARank < 0 || w.LoRARank > MaxDim {
		return &FieldError{Field: "lora_rank", Value: w.LoRARank, Reason: "must be a positive integer (0: no LoRA)"}
	}
	if !w.LoRA() {
		switch {
		case w.LoRATargets != "":
			return &FieldError{Field: "lora_targets", Value: fmt.Sprintf("%q", w.LoRATargets), Reason: "needs a LoRA rank (--lora-rank, spec lora_rank); give it too"}
		case w.LoRAAlpha != 0:
			return &FieldError{Field: "lora_alpha", Value: w.LoRAAlpha, Reason: "needs a LoRA rank (--lora-rank, spec lora_rank); give it too"}
		case w.LoRADropout != 0:
			return &FieldError{Field: "lora_dropout", Value: w.LoRADropout, Reason: "needs a LoRA rank (--lora-rank, spec lora_rank); give it too"}
		}
	}
	if math.IsNaN(w.LoRAAlpha) || math.IsInf(w.LoRAAlpha, 0) || w.LoRAAlpha < 0 {
		return &FieldError{Field: "lora_alpha", Value: w.LoRAAlpha, Reason: "must be a non-negative number (0: the rank)"}
	}
	if !(w.LoRADropout >= 0 && w.LoRADropout < 1) {
		return &FieldError{Field: "lora_dropout", Value: w.LoRADropout, Reason: "must be a probability in [0, 1)"}
	}
	wf, err := ParseWeights(w.Weights)
	if err != nil {
		return err
	}
	if wf.Quantized() && !w.LoRA() && !w.Inference {
		return &FieldError{Field: "weights", Value: w.Weights,
			Reason: "quantized weights cannot be trained; add a LoRA rank (--lora-rank, spec lora_rank: QLoRA) or inference"}
	}
	if wf.Name != "" && !wf.Quantized() && !w.LoRA() && !w.Inference {
		return &FieldError{Field: "weights", Value: w.Weights,
			Reason: "with full training the precision decides the weights' dtype; use --precision, or add a LoRA rank (--lora-rank) or inference"}
	}
	if w.OptimizerImpl, err = enumOrDefault("optimizer_impl", w.OptimizerImpl, ImplDefault, OptimizerImpls()); err != nil {
		return err
	}
	if w.OptimizerImpl != ImplDefault {
		switch w.Optimizer {
		case Adam8bit, PagedAdamW8bit, Lion:
			return &FieldError{Field: "optimizer_impl", Value: w.OptimizerImpl,
				Reason: fmt.Sprintf("optimizer %s has its own kernels; torch.optim's implementations apply to adamw, sgd, sgd-momentum and adafactor", w.Optimizer)}
		}
	}
	if w.GradAccum < 0 || w.GradAccum > MaxDim {
		return &FieldError{Field: "grad_accum", Value: w.GradAccum, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.ZeroGrad, err = enumOrDefault("zero_grad", w.ZeroGrad, "", ZeroGrads()); err != nil {
		return err
	}
	return nil
}

// GradientsHeld reports whether the gradients stay allocated through the
// forward pass: with gradient accumulation (every micro-batch after the
// first runs with the previous ones' gradients) or zero_grad(set_to_none=
// False).
func (w Workload) GradientsHeld() bool { return w.GradAccum > 1 || w.ZeroGrad == ZeroGradZeros }
