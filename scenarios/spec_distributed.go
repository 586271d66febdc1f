package scenarios

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/memval/memval/analytic/model"
)

// distributed decodes one of the distributed fields of a spec.
func (p *parser) distributed(key string, v *yaml.Node, field string, s *Spec) error {
	var err error
	switch key {
	case "zero":
		s.ZeRO, err = p.nonNegative(v, field)
		if err == nil && s.ZeRO > 3 {
			err = p.errf(v, field, "%d is not a ZeRO stage: use 0, 1, 2 or 3", s.ZeRO)
		}
	case "dp":
		s.DP, err = p.positive(v, field)
	case "tp":
		s.TP, err = p.positive(v, field)
	case "sp":
		s.SP, err = p.boolean(v, field)
	case "pp":
		s.PP, err = p.positive(v, field)
	case "pp_interleave":
		s.PPInterleave, err = p.positive(v, field)
	case "microbatches":
		s.Microbatches, err = p.positive(v, field)
	case "cp":
		s.CP, err = p.positive(v, field)
	case "offload":
		var x string
		x, err = p.oneOf(v, field, model.Offloads())
		s.Offload = model.Offload(x)
	case "engine":
		var x string
		x, err = p.oneOf(v, field, model.Engines())
		s.Engine = model.Engine(x)
	case "bucket_view":
		s.BucketView, err = p.boolean(v, field)
	case "fsdp_mp":
		s.FSDPMixed, err = p.str(v, field)
	}
	return err
}

// distributedInto copies the spec's distributed settings into w (degrees
// of 1 as the Workload's "not used") and checks them together.
func (s *Spec) distributedInto(w *model.Workload) error {
	one := func(n int) int {
		if n == 1 {
			return 0
		}
		return n
	}
	w.ZeRO, w.DP, w.TP, w.SP = s.ZeRO, s.DP, s.TP, s.SP
	w.PP, w.PPInterleave, w.Microbatches, w.CP = one(s.PP), one(s.PPInterleave), s.Microbatches, one(s.CP)
	w.Offload, w.Engine, w.BucketView, w.FSDPMixed = s.Offload, s.Engine, s.BucketView, s.FSDPMixed
	if !s.distributed() {
		return nil
	}
	if _, err := w.WithDefaults(); err != nil {
		return fmt.Errorf("scenario %s: %w: %w", s.Name, ErrInvalid, err)
	}
	return nil
}

// distributed reports whether the spec asks for more than one process.
func (s *Spec) distributed() bool {
	return s.ZeRO > 0 || s.DP > 1 || s.TP > 1 || s.SP || s.PP > 1 || s.PPInterleave > 1 || s.CP > 1 ||
		s.Offload != "" || s.Engine != "" || s.BucketView || s.Microbatches > 0 || s.FSDPMixed != ""
}
