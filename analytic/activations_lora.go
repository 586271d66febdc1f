package analytic

import "github.com/memval/memval/analytic/model"

// loraShape is what LoRA changes in the saved activations (see
// actShape.initLoRA): the base is frozen, so autograd keeps no tensor
// that only a frozen weight's gradient needs (a frozen linear layer's
// input, an RMSNorm's normalized x before its weight, the LM head's
// input, the token ids), while each adapter (PEFT's lora.Linear:
// result + lora_B(lora_A(dropout(x.to(fp32)))) * scaling) saves its
// input (the base layer's storage when it is already fp32 and there is no
// dropout; else its own fp32 copy, or under autocast its own 16-bit copy),
// the dropout mask, and the rank-r intermediate lora_A's output. The
// input of the first layer requires grad, as PEFT's
// enable_input_require_grads (prepare_model_for_kbit_training, or any
// gradient checkpointing) makes it.
type loraShape struct {
	r       float64
	targets []model.LinearModule
	roles   map[string]bool // the roles adapted
	own     bool            // each adapter keeps its own copy of its input
	inDT    float64         // bytes of that copy
	midDT   float64         // bytes of lora_A's output
	params  float64         // adapter parameters per layer
	fp32    bool            // fp32 residual stream (the norm's x*rsqrt is then only the weight's)
	// bnbInputs: 4-bit bitsandbytes layers before 0.43 keep their input
	// (model/releases.go), as a trained linear layer does.
	bnbInputs bool
}

// initLoRA sets s.lora from w (nil without LoRA).
func (s *actShape) initLoRA(a *model.Arch, w *model.Workload) error {
	s.lora = nil
	s.initHead(a, w) // task heads (activations_heads.go)
	if !w.LoRA() {
		return nil
	}
	ts, err := model.LoRATargets(*a, *w)
	if err != nil {
		return err
	}
	l := &loraShape{r: float64(w.LoRARank), targets: ts, roles: map[string]bool{}, inDT: 4, midDT: 4, fp32: s.r == 4}
	for _, m := range ts {
		l.roles[m.Role] = true
		l.params += l.r * float64(m.In+m.Out)
	}
	l.own = w.LoRADropout > 0 || s.a != 4 || s.autocast
	if s.autocast {
		l.inDT, l.midDT = 2, 2
	}
	if wf, _ := model.ParseWeights(w.Weights); w.BitsandbytesBefore(0, 43) && wf.Bnb4bit() {
		if s.autocast {
			return &model.FieldError{Field: "bitsandbytes", Value: w.Bitsandbytes,
				Reason: "a release before 0.43 is modelled without autocast (its 4-bit layers' inputs are then the shared norm and projection outputs); use a pure precision (bf16-pure) or leave bitsandbytes unset"}
		}
		l.bnbInputs = true
	}
	s.lora, s.loraDropout = l, w.LoRADropout > 0
	if s.cuda || w.Weights != "" {
		s.note = noteDerived
	}
	return nil
}

// kept is the share of a linear layer's input the frozen base still saves:
// 1 when an adapter of one of roles shares its storage, else 0.
func (l *loraShape) kept(roles ...string) float64 {
	if l.bnbInputs {
		return 1 // the 4-bit layer keeps its input itself
	}
	if l.own {
		return 0
	}
	for _, r := range roles {
		if l.roles[r] {
			return 1
		}
	}
	return 0
}

// keep is the factor on the Feature of the base's saved term name under
// a frozen base.
func (l *loraShape) keep(name string) float64 {
	switch name {
	case "ln.fp32", "lnf.fp32":
		if l.fp32 {
			return 0 // x*rsqrt, saved for the norm's weight only
		}
	case "ln.normed16", "lnf.normed16", "head.in", "ln.out_copies", "input.ids", "embed.positions",
		"ln.normed_fp32", "lnf.normed_fp32", "attn.qk_norm_out": // the last three: activations_variants.go
		return 0
	case "ln.out":
		return (l.kept(model.RoleQ, model.RoleK, model.RoleV, model.RoleQKV) + l.kept(model.RoleGate, model.RoleUp, model.RoleGateUp)) / 2
	case "attn.qkv_in":
		return l.kept(model.RoleQ, model.RoleK, model.RoleV, model.RoleQKV)
	case "attn.proj_in":
		return l.kept(model.RoleOut)
	case "mlp.fc_in":
		return l.kept(model.RoleUp, model.RoleGate, model.RoleGateUp)
	case "mlp.proj_in":
		return l.kept(model.RoleDown)
	}
	return 1
}

// loraLayerTerms adds the adapters' saved tensors of the L layers.
func (s *actShape) loraLayerTerms(b *actBuilder) {
	l := s.lora
	if l == nil {
		return
	}
	BSL := s.B * s.S * s.L
	var in float64
	for _, m := range l.targets {
		in += float64(m.In)
	}
	if l.own {
		b.add("lora.in", GroupActivations, BSL*in, "B*S*in*L", l.inDT)
	}
	if s.loraDropout {
		b.add("lora.dropout_mask", GroupActivations, BSL*in, "B*S*in*L", s.maskBytes(4))
	}
	b.add("lora.mid", GroupActivations, BSL*l.r*float64(len(l.targets)), "B*S*r*L", l.midDT)
	if s.autocast {
		b.add("lora.autocast_weight_copy", GroupActivations, l.params*s.L, "L*adapter params", 2)
	}
}
