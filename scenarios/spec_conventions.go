package scenarios

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/memval/memval/analytic/model"
)

// conventions decodes one of the training-loop convention fields of a
// spec (model.Workload's Loss and FreeLogits).
func (p *parser) conventions(key string, v *yaml.Node, field string, s *Spec) error {
	var err error
	switch key {
	case "loss":
		var x string
		if x, err = p.scalar(v, field); err == nil {
			if cerr := model.CheckLoss(field, model.Loss(x)); cerr != nil {
				err = p.errf(v, field, "%v", cerr)
			}
			s.Loss = model.Loss(x)
		}
	case "free_logits":
		s.FreeLogits, err = p.boolean(v, field)
	case "offload_activations":
		s.OffloadActivations, err = p.boolean(v, field)
	case "attn_impl":
		var x string
		x, err = p.oneOf(v, field, model.AttnImpls())
		s.AttnImpl = model.AttnImpl(x)
	}
	return err
}

// conventionsInto copies the spec's conventions into w.
func (s *Spec) conventionsInto(w *model.Workload) {
	w.Loss, w.FreeLogits, w.AttnImpl = s.Loss, s.FreeLogits, s.AttnImpl
	w.OffloadActivations = s.OffloadActivations
}

// attnImplInto gives w the model's config.json attn_implementation when
// the spec names none, and checks it against the spec's attention.
func attnImplInto(w *model.Workload, a model.Arch) error {
	if w.AttnImpl == "" {
		w.AttnImpl = a.AttnImpl
	}
	v := *w
	return v.CheckAttnImpl()
}

// checkpointing decodes a spec's checkpointing: one of the workload's
// values or a parameterised policy (model.CheckCheckpointing).
func (p *parser) checkpointing(v *yaml.Node, field string, s *Spec) error {
	x, err := p.scalar(v, field)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(x, model.LayersCheckpointingPrefix) && !strings.HasPrefix(x, model.OpsCheckpointingPrefix) {
		x, err = p.oneOf(v, field, checkpointings)
	} else if cerr := model.CheckCheckpointing(field, model.Checkpointing(x)); cerr != nil {
		err = p.errf(v, field, "%v", cerr)
	}
	s.Checkpointing = model.Checkpointing(x)
	return err
}
