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
	attnImpl   string
	offloadAct bool
}

func (c *convOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&c.loss, "loss", "shift", "loss convention: "+orList(model.Losses())+
		" (shift: logits shifted and copied, memval's program; hf: transformers' ForCausalLMLoss; torchtitan and nanogpt: labels shifted by the data loader; chunked[:N]: torchtune's chunked output; fused: Liger's fused linear cross entropy)")
	f.StringVar(&c.attnImpl, "attn-impl", "", "whose attention: "+orList(model.AttnImpls())+
		" (hand: memval's program with --attention; eager, sdpa, flash-attention-2: transformers' attn_implementation, which sets --attention; default: the config.json's attn_implementation, else hand)")
	f.BoolVar(&c.offloadAct, "offload-activations", false, "keep the checkpointed layers' inputs in host memory (transformers' activation_checkpointing_enable(offload=True), torchtune's offloading); needs --checkpointing full or layers:N")
	f.BoolVar(&c.freeLogits, "free-logits", false, "the training loop drops the logits before backward (transformers' Trainer, torchtitan, torchtune)")
}

// attnImplDefaults takes the model's config.json attn_implementation when
// --attn-impl is not given, and leaves --attention to the implementation
// when it is not given either.
func (c *convOptions) attnImplDefaults(w *model.Workload, a model.Arch, attentionGiven bool) {
	if w.AttnImpl == "" {
		w.AttnImpl = a.AttnImpl
	}
	if w.AttnImpl.Transformers() && !attentionGiven {
		w.Attention = ""
	}
}

// into sets w's convention fields (shift as "", the workload's default).
func (c *convOptions) into(w *model.Workload) {
	if c.loss != string(model.ShiftLoss) {
		w.Loss = model.Loss(c.loss)
	}
	w.FreeLogits = c.freeLogits
	w.AttnImpl = model.AttnImpl(c.attnImpl)
	w.OffloadActivations = c.offloadAct
}
