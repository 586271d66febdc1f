package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

// finetuneOptions are estimate's flags for fine-tuning setups: LoRA,
// quantized base weights, the task head, the optimizer's implementation
// and gradient accumulation (issue 15).
type finetuneOptions struct {
	loraRank               int
	loraAlpha, loraDropout float64
	loraTargets            string
	weights, head, optImpl string
	gradAccum              int
	zeroGrad               string
}

func (o *finetuneOptions) bind(f *pflag.FlagSet) {
	f.IntVar(&o.loraRank, "lora-rank", 0, "LoRA rank r: train adapters on a frozen base (0: train every weight)")
	f.Float64Var(&o.loraAlpha, "lora-alpha", 0, "LoRA alpha (scaling only; memory does not depend on it)")
	f.Float64Var(&o.loraDropout, "lora-dropout", 0, "dropout on each LoRA adapter's input")
	f.StringVar(&o.loraTargets, "lora-targets", "", "modules to adapt, as PEFT names them (e.g. q_proj,v_proj), or all-linear (default: the query and value projections)")
	f.StringVar(&o.weights, "weights", "", "base weights' storage: "+orList(model.WeightFormats())+" (default: the precision's)")
	f.StringVar(&o.head, "head", "", "task head: "+orList(model.HeadChoices())+" (default: the model's own, or a classifier its config.json names)")
	f.StringVar(&o.optImpl, "optimizer-impl", "", "torch.optim implementation: "+orList(model.OptimizerImpls())+" (default: foreach)")
	f.IntVar(&o.gradAccum, "grad-accum", 1, "micro-batches accumulated per optimizer step (gradients held through the forward passes)")
	f.StringVar(&o.zeroGrad, "zero-grad", "none", "optimizer.zero_grad: none (set_to_none=True) or zeros (gradients kept allocated)")
}

// apply puts the flags into the arch and workload; a bad --head is a
// usage error naming it.
func (o *finetuneOptions) apply(a *model.Arch, w *model.Workload) error {
	if o.head != "" {
		h, n, err := model.ParseHead(o.head)
		if err != nil {
			return usagef("--head: %v", err)
		}
		a.Head, a.Labels = h, n
		if err := a.Normalize(); err != nil {
			return usagef("--head %q: %v", o.head, err)
		}
	}
	w.LoRARank, w.LoRAAlpha, w.LoRADropout, w.LoRATargets = o.loraRank, o.loraAlpha, o.loraDropout, o.loraTargets
	w.Weights, w.OptimizerImpl = o.weights, model.OptimizerImpl(o.optImpl)
	if o.gradAccum < 1 {
		return usagef("--grad-accum %d: must be a positive integer (1: no accumulation)", o.gradAccum)
	}
	if o.gradAccum > 1 {
		w.GradAccum = o.gradAccum
	}
	if o.zeroGrad != "none" {
		w.ZeroGrad = model.ZeroGrad(o.zeroGrad)
	}
	return nil
}

// finetuneHeader is the header's account of a fine-tuning setup: the
// trainable parameters, the LoRA and the weights' format.
func finetuneHeader(rep *estimate.Report) string {
	w := rep.Workload
	var s string
	if rep.Model.TrainableParams > 0 {
		s += ", " + groupThousands(rep.Model.TrainableParams) + " trainable"
	}
	if w.LoRA() {
		t := w.LoRATargets
		if t == "" {
			t = "query and value"
		}
		s += fmt.Sprintf(", LoRA r=%d on %s", w.LoRARank, t)
	}
	if w.Weights != "" {
		s += ", weights " + w.Weights
	}
	if w.GradAccum > 1 {
		s += fmt.Sprintf(", %d micro-batches accumulated", w.GradAccum)
	}
	return s
}
