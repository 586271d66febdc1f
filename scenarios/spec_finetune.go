package scenarios

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/memval/memval/analytic/model"
)

// finetuneKeys are a spec's fine-tuning fields (issue 15), as memval
// estimate's flags of the same names take them.
var finetuneKeys = []string{"lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "weights", "head",
	"optimizer_impl", "grad_accum", "zero_grad"}

// FinetuneSpec is a spec's fine-tuning settings; every zero value means
// full training as before.
type FinetuneSpec struct {
	LoRARank      int     `json:"lora_rank,omitempty"`
	LoRAAlpha     float64 `json:"lora_alpha,omitempty"`
	LoRADropout   float64 `json:"lora_dropout,omitempty"`
	LoRATargets   string  `json:"lora_targets,omitempty"` // PEFT module names, comma-separated, or all-linear
	Weights       string  `json:"weights,omitempty"`      // fp32, fp16, bf16, int8, nf4, fp4 or int4:G
	Head          string  `json:"head,omitempty"`         // lm, seq-cls:N, token-cls:N, mlm or none
	OptimizerImpl string  `json:"optimizer_impl,omitempty"`
	GradAccum     int     `json:"grad_accum,omitempty"`
	ZeroGrad      string  `json:"zero_grad,omitempty"`
}

// finetune decodes one of finetuneKeys into s.
func (p *parser) finetune(key string, v *yaml.Node, field string, s *Spec) error {
	var err error
	f := &s.Finetune
	switch key {
	case "lora_rank":
		f.LoRARank, err = p.positive(v, field)
	case "lora_alpha":
		f.LoRAAlpha, err = p.float(v, field)
		if err == nil && f.LoRAAlpha < 0 {
			err = p.errf(v, field, "%v: want a non-negative number", f.LoRAAlpha)
		}
	case "lora_dropout":
		f.LoRADropout, err = p.float(v, field)
		if err == nil && (f.LoRADropout < 0 || f.LoRADropout >= 1) {
			err = p.errf(v, field, "%v is not a probability in [0, 1)", f.LoRADropout)
		}
	case "lora_targets":
		f.LoRATargets, err = p.str(v, field)
	case "weights":
		f.Weights, err = p.str(v, field)
		if err == nil {
			if _, perr := model.ParseWeights(f.Weights); perr != nil {
				err = p.errf(v, field, "%v", perr)
			}
		}
	case "head":
		f.Head, err = p.str(v, field)
		if err == nil {
			if _, _, perr := model.ParseHead(f.Head); perr != nil {
				err = p.errf(v, field, "%v", perr)
			}
		}
	case "optimizer_impl":
		f.OptimizerImpl, err = p.oneOf(v, field, model.OptimizerImpls())
	case "grad_accum":
		f.GradAccum, err = p.positive(v, field)
	case "zero_grad":
		f.ZeroGrad, err = p.oneOf(v, field, model.ZeroGrads())
	}
	return err
}

// finetuneInto copies the spec's fine-tuning settings into a and w and
// checks them against the model (targets naming its modules, a rank that
// fits them).
func (s *Spec) finetuneInto(a *model.Arch, w *model.Workload) error {
	f := s.Finetune
	if f == (FinetuneSpec{}) {
		return nil
	}
	if f.Head != "" {
		h, n, err := model.ParseHead(f.Head)
		if err != nil {
			return fmt.Errorf("scenario %s: %w: head: %w", s.Name, ErrInvalid, err)
		}
		a.Head, a.Labels = h, n
		if err := a.Normalize(); err != nil {
			return fmt.Errorf("scenario %s: %w: head: %w", s.Name, ErrInvalid, err)
		}
	}
	w.LoRARank, w.LoRAAlpha, w.LoRADropout, w.LoRATargets = f.LoRARank, f.LoRAAlpha, f.LoRADropout, f.LoRATargets
	w.Weights, w.OptimizerImpl, w.ZeroGrad = f.Weights, model.OptimizerImpl(f.OptimizerImpl), model.ZeroGrad(f.ZeroGrad)
	if f.GradAccum > 1 {
		w.GradAccum = f.GradAccum
	}
	if f.ZeroGrad == string(model.ZeroGradNone) {
		w.ZeroGrad = ""
	}
	if _, err := w.WithDefaults(); err != nil {
		return fmt.Errorf("scenario %s: %w: %w", s.Name, ErrInvalid, err)
	}
	if w.LoRA() {
		if _, err := model.LoRATargets(*a, *w); err != nil {
			return fmt.Errorf("scenario %s: %w: %w", s.Name, ErrInvalid, err)
		}
	}
	return nil
}
