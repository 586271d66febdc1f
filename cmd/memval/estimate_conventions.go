package main

import (
	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/model"
)

// convOptions are the flags of the training loop's conventions
// (model.Workload's Loss and FreeLogits).
type convOptions struct {
	loss       string
	freeLogits bool
}

func (c *convOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&c.loss, "loss", "shift", "loss convention: "+orList(model.Losses())+
		" (shift: logits shifted and copied, memval's program; hf: transformers' ForCausalLMLoss; torchtitan and nanogpt: labels shifted by the data loader; chunked[:N]: torchtune's chunked output; fused: Liger's fused linear cross entropy)")
	f.BoolVar(&c.freeLogits, "free-logits", false, "the training loop drops the logits before backward (transformers' Trainer, torchtitan, torchtune)")
}

// into sets w's convention fields (shift as "", the workload's default).
func (c *convOptions) into(w *model.Workload) {
	if c.loss != string(model.ShiftLoss) {
		w.Loss = model.Loss(c.loss)
	}
	w.FreeLogits = c.freeLogits
}
