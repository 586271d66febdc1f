package analytic

import (
	"fmt"
	"strings"

	"github.com/memval/memval/analytic/model"
)

// Per-op selective checkpointing (model.OpsCheckpointingPrefix). Under
// ops:torchtitan (model.TorchtitanOpsPolicy) every layer is checkpointed
// with torch.utils.checkpoint's non-reentrant checkpoint and
// create_selective_checkpoint_contexts, so a layer keeps what full
// checkpointing keeps (its input, ckpt.block_in; transformers' eager GPT-2
// mask, ckpt.mask) plus the outputs the policy saves:
//
//	ckpt.sac_mm     the odd-numbered aten.mm outputs of the layer's forward
//	                (torchtitan's "every second mm" recomputed), in the
//	                activations' dtype. nn.Linear without bias runs aten.mm;
//	                with a bias on a contiguous 3-d input, and GPT-2's
//	                Conv1D, run aten.addmm, which the save list lacks.
//	                Order: q, k, v (or one fused qkv), o; gate, up, down
//	                (or fc, proj).
//	ckpt.sac_sdpa   on CUDA with flash attention, the SDPA kernel's output
//	                (B*S*h*d) and its fp32 logsumexp (B*h*S). torch's CPU
//	                kernel (aten._scaled_dot_product_flash_attention_for_cpu)
//	                is not in torchtitan's list: on the CPU it is recomputed.
//
// The recompute in backward is one layer at a time, as under full
// (ckpt.recompute_layer). Measured on the CPU (torch 2.11, hand-built and
// transformers 5.24 GPT-2 and Llama; scenarios/truth_sac_test.go); the
// CUDA SDPA term is derived, not measured.

// sacLinear is one linear layer of a layer's forward: its output width
// and whether it runs aten.addmm (bias or Conv1D) instead of aten.mm.
type sacLinear struct {
	name  string
	width float64
	addmm bool
}

// initOpsCkpt sets the per-op policy's fields of s (initDefaulted's hook):
// s.ckpt becomes full, whose terms the policy keeps, and s.sacElems the
// saved mm outputs' elements per token and layer.
func (s *actShape) initOpsCkpt(a *model.Arch, w *model.Workload, layer *model.Layer) error {
	if w.Checkpointing.OpsPolicy() == "" {
		return nil
	}
	if s.moe != nil || s.lora != nil {
		return &model.FieldError{Field: "checkpointing", Value: string(w.Checkpointing),
			Reason: "per-op checkpointing is modelled for dense layers without LoRA; use full or layers:N"}
	}
	s.sac, s.ckpt = true, model.FullCheckpointing
	conv1D := layer != nil && layer.Conv1D
	var lin []sacLinear
	qd, kvd := s.h*s.hd, s.kv*s.hd
	switch {
	case s.llama || layer != nil && layer.SplitQKV:
		lin = append(lin, sacLinear{"q", qd, a.QKVBias}, sacLinear{"k", kvd, a.QKVBias}, sacLinear{"v", kvd, a.QKVBias})
	default:
		lin = append(lin, sacLinear{"qkv", qd + 2*kvd, a.QKVBias || conv1D})
	}
	lin = append(lin, sacLinear{"o", s.H, a.OutBias || conv1D})
	if s.llama || a.GatedMLP {
		lin = append(lin, sacLinear{"gate", s.F, a.MLPBias}, sacLinear{"up", s.F, a.MLPBias})
	} else {
		lin = append(lin, sacLinear{"fc", s.F, a.MLPBias || conv1D})
	}
	lin = append(lin, sacLinear{"down", s.H, a.MLPBias || conv1D})
	var names []string
	n := 0
	for _, l := range lin {
		if l.addmm {
			continue
		}
		n++
		if n%2 == 1 {
			s.sacElems += l.width
			names = append(names, l.name)
		}
	}
	s.sacNames = strings.Join(names, "+")
	return nil
}

// sacTerms adds what the per-op policy saves in each layer beyond full
// checkpointing's terms.
func (s *actShape) sacTerms(b *actBuilder) {
	if s.sacElems > 0 {
		b.add("ckpt.sac_mm", GroupActivations, s.B*s.S*s.sacElems*s.L, fmt.Sprintf("B*S*(%s)*L", s.sacNames), s.a)
	}
	if s.cuda && s.flash {
		b.add("ckpt.sac_sdpa", GroupActivations, s.B*s.S*s.h*s.hd*s.L, "B*S*h*d*L", s.a)
		b.add("ckpt.sac_lse", GroupActivations, s.B*s.h*s.S*s.L, "B*h*S*L", 4)
	}
}
