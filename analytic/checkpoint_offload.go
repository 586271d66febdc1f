package analytic

import "github.com/memval/memval/analytic/model"

// Activation offloading (model.Workload.OffloadActivations), as
// transformers' activation_checkpointing_enable(offload=True)
// (transformers/modeling_utils.py: each checkpointed layer runs inside
// torch.autograd.graph.save_on_cpu(pin_memory=True)) and torchtune's
// OffloadActivations around checkpointed layers do it: what a checkpointed
// layer saves, its input (ckpt.block_in) and the arguments passed with it
// (ckpt.mask; rope.cos_sin in the hand-built program), lives in pinned host memory (Estimate.Host) instead of on
// the GPU; in backward one layer's input is copied back before its
// recompute (ckpt.reload, with the recompute).

// offloadsRope reports whether rotary's cos and sin go to host memory
// too: the hand-built program passes them to every checkpointed layer as
// arguments, and when every layer is checkpointed nothing else saves them
// (transformers passes them as keyword arguments, not saved at all).
func (s *actShape) offloadsRope() bool {
	return s.offload && !s.hf() && s.allCheckpointed()
}

// reloadTerm adds the one layer's input copied back to the GPU for its
// recompute (the extras' hook).
func (s *actShape) reloadTerm(b *actBuilder, slot int) {
	if !s.offload || s.ckpt != model.FullCheckpointing && s.checkpointedLayers() == 0 {
		return
	}
	b.put("ckpt.reload", GroupActivations, s.B*s.S*s.H, "B*S*H", s.r, slot, b.note)
}

// activationHost moves the offloaded terms' bytes to e.Host (the
// breakdown's hook, before the parallel terms): the builder left them out
// of the device sums, so they are kept here with Peak false and phase "".
func activationHost(e *Estimate, host []Term) {
	if len(host) == 0 {
		return
	}
	if e.Host == nil {
		e.Host = &Host{}
	}
	for _, t := range host {
		t.Peak, t.Phase = false, ""
		t.Note = "pinned host memory (activation offloading)"
		e.Host.Terms = append(e.Host.Terms, t)
		e.Host.Bytes += t.Bytes
	}
}
