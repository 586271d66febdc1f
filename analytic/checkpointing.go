package analytic

import (
	"math"

	"github.com/memval/memval/analytic/model"
)

// Checkpointing policies beyond none, full and selective (see
// model.Checkpointing):
//
//	layers:N   torchtitan's every-Nth-layer mode: floor(L/N) layers keep
//	           only their input (ckpt.block_in, as full), the other
//	           L - floor(L/N) layers all their saved tensors (as none); one
//	           checkpointed layer is recomputed at a time in backward
//	           (ckpt.recompute_layer), when any is checkpointed. Under
//	           transformers' modeling code (Workload.AttnImpl eager, sdpa or
//	           flash-attention-2) it is activation_checkpointing_enable's
//	           every_n_layers (transformers/modeling_utils.py
//	           _set_gradient_checkpointing: layer_index % N == 0, counting
//	           from 0): ceil(L/N) layers.

// checkpointedLayers is the number of layers a layers:N policy
// checkpoints.
func (s *actShape) checkpointedLayers() float64 {
	n := s.ckptEvery
	if n <= 0 {
		return 0
	}
	if s.hf() {
		return math.Ceil(s.L / float64(n))
	}
	return math.Floor(s.L / float64(n))
}

// everyNthLayer adds the per-layer terms of a layers:N policy: the
// checkpointed layers as full, the rest as none.
func (s *actShape) everyNthLayer(b *actBuilder) {
	c := s.checkpointedLayers()
	if c > 0 {
		full := *s
		full.ckpt, full.ckptEvery, full.L = model.FullCheckpointing, 0, c
		full.layerTerms(b)
	}
	if s.L > c {
		rest := *s
		rest.ckpt, rest.ckptEvery, rest.L = model.NoCheckpointing, 0, s.L-c
		rest.layerTerms(b)
	}
}

// everyNthRecompute adds the recompute of one checkpointed layer under a
// layers:N policy (the extras' hook).
func (s *actShape) everyNthRecompute(b *actBuilder, slot int) {
	if s.checkpointedLayers() == 0 {
		return
	}
	one := *s
	one.ckpt, one.ckptEvery, one.L = model.NoCheckpointing, 0, 1
	inner := actBuilder{sumOnly: true, softmaxIn: s.softmaxIn}
	one.layerTerms(&inner)
	b.put("ckpt.recompute_layer", GroupActivations, float64(inner.sum), "bytes", 1, slot, b.note)
}
