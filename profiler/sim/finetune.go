package sim

import (
	"fmt"
	"strings"

	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// simFinetune is what the simulator plays of issue 15's setups: a frozen
// base (no gradients or optimizer states for it) with fp32 LoRA adapters,
// quantized linear weights, task heads' parameters, Adafactor, Lion and
// paged 8-bit AdamW states, torch.optim's implementations, gradient
// accumulation and zero_grad to zeros. The saved activations of a LoRA
// step are played as full fine-tuning's (an upper bound: the frozen base
// keeps fewer); the breakdown models them exactly.
type simFinetune struct {
	lora     bool
	adapters []uint64 // fp32 adapter parameter tensors (A and B of each adapted module and layer)
	quant    model.WeightFormat
	hidden   int
	ffn      int
	base     uint64 // bytes per element of the frozen, unquantized base (the precision's, or weights)
	adaGrads []alloc.BlockID
	adaState []alloc.BlockID
	heldOK   bool
	head     string // a classifier head on a decoder (model.HeadSeqCls, HeadTokenCls; "" for the rest)
	labels   uint64
	upcast   bool // the head's loss casts the logits to fp32 (transformers' generic token classifier)
}

// newSimFinetune reads w's fine-tuning settings for model m of arch a,
// adding a task head's parameters to m.
func newSimFinetune(a model.Arch, w model.Workload, m *simModel, dt simDtypes) (*simFinetune, error) {
	wf, err := model.ParseWeights(w.Weights)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	f := &simFinetune{lora: w.LoRA(), quant: wf, hidden: a.Hidden, ffn: a.FFN, base: dt.param}
	if wf.Name != "" && !wf.Quantized() {
		f.base = uint64(wf.BytesPerParam(1, 1))
	}
	if pb, err := model.Params(a); err == nil {
		for _, c := range pb.Components {
			switch c.Name {
			case "cls.dense", "classifier", "score", "mlm.transform", "mlm.decoder.bias":
				m.add(c.Name, int(c.Count))
			}
		}
	}
	if fam, ok := model.FamilyOf(a.Family); ok && !fam.NoHead && (a.Head == model.HeadSeqCls || a.Head == model.HeadTokenCls) {
		f.head, f.labels = a.Head, uint64(a.Labels)
		f.upcast = a.Head == model.HeadTokenCls && fam.Layer.Name == model.LlamaLayerName
	}
	if f.lora {
		an := a
		if err := an.Normalize(); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		ts, err := model.LoRATargets(an, w)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		for l := 0; l < a.Layers; l++ {
			for _, t := range ts {
				f.adapters = append(f.adapters, uint64(w.LoRARank*t.In), uint64(w.LoRARank*t.Out))
			}
		}
	}
	return f, nil
}

// quantized reports whether parameter name is a layer's linear weight the
// format quantizes, and its bytes per element.
func (f *simFinetune) weightBytes(name string, dt simDtypes) float64 {
	linear := strings.HasSuffix(name, "_proj.weight") || strings.HasSuffix(name, "c_attn.weight") ||
		strings.HasSuffix(name, "c_proj.weight") || strings.HasSuffix(name, "mlp.gate.weight") ||
		strings.HasSuffix(name, "mlp.up.weight") || strings.HasSuffix(name, "mlp.down.weight")
	if f.quant.Quantized() && linear && strings.HasPrefix(name, "h.") {
		in := f.hidden
		if strings.HasSuffix(name, "mlp.down.weight") {
			in = f.ffn
		}
		return f.quant.BytesPerParam(float64(in), float64(f.hidden))
	}
	if f.lora || f.quant.Name != "" {
		return float64(f.base)
	}
	return float64(dt.param)
}

// frozen reports whether the base's parameters get no gradients.
func (f *simFinetune) frozen() bool { return f.lora }

// allocAdapters allocates the adapters with the weights.
func (s *simTraining) allocAdapters() {
	for _, n := range s.ft.adapters {
		s.p.alloc(n * 4)
	}
}

// adapterGrads allocates the adapters' fp32 gradients at the end of
// backward (once; accumulation adds into them).
func (s *simTraining) adapterGrads() {
	if len(s.ft.adaGrads) > 0 {
		return
	}
	for _, n := range s.ft.adapters {
		s.ft.adaGrads = append(s.ft.adaGrads, s.p.alloc(n*4))
	}
}

// freeGrads is zero_grad: set_to_none frees every gradient (base and
// adapters); zeros keeps them.
func (s *simTraining) freeGrads() {
	if s.w.ZeroGrad == model.ZeroGradZeros {
		return
	}
	for i := range s.m.params {
		if id, ok := s.grads[i]; ok {
			s.p.free(id)
			delete(s.grads, i)
		}
	}
	for _, id := range s.ft.adaGrads {
		s.p.free(id)
	}
	s.ft.adaGrads = s.ft.adaGrads[:0]
}

// accumulate runs the micro-batches before the last of a gradient
// accumulation step: forward and backward, the gradients kept.
func (s *simTraining) accumulate() {
	for j := 1; j < s.w.GradAccum && s.p.err == nil; j++ {
		layers, headOps, head := s.forward()
		s.backward(layers, headOps, head)
		for _, id := range head {
			s.p.free(id)
		}
		if s.ft.lora {
			s.adapterGrads()
		}
	}
}

// finetuneStep is the optimizer step of what optimizerStep does not play:
// the adapters' states (LoRA), Adafactor, Lion and paged 8-bit AdamW, and
// the fused and for-loop implementations. It reports whether it played the
// step.
func (s *simTraining) finetuneStep(k int) bool {
	w := s.w
	if !s.ft.lora && w.OptimizerImpl == "" && w.Optimizer != model.Adafactor && w.Optimizer != model.Lion && w.Optimizer != model.PagedAdamW8bit {
		return false
	}
	p := s.p
	sizes, elem := make([]uint64, 0, len(s.m.params)), s.dt.state
	if s.ft.lora {
		sizes, elem = append(sizes, s.ft.adapters...), 4
	} else {
		for _, prm := range s.m.params {
			sizes = append(sizes, prm.numel)
		}
	}
	if k == 0 {
		for _, n := range sizes {
			switch w.Optimizer {
			case "", model.AdamW:
				s.state = append(s.state, p.alloc(n*elem), p.alloc(n*elem))
			case model.Lion, model.SGDMomentum:
				s.state = append(s.state, p.alloc(n*elem))
			case model.Adam8bit, model.PagedAdamW8bit:
				s.state = append(s.state, p.alloc(n+n/2048*4), p.alloc(n+n/2048*4))
			case model.Adafactor:
				s.state = append(s.state, p.alloc(adafactorState(n, s.m.hidden)*elem))
			}
		}
	}
	if w.Optimizer == model.AdamW || w.Optimizer == "" || w.Optimizer == model.Adafactor {
		switch w.OptimizerImpl {
		case model.ImplFused:
		case model.ImplForLoop:
			var big uint64
			for _, n := range sizes {
				big = max(big, n)
			}
			p.free(p.alloc(big * elem))
		default:
			var tmp []alloc.BlockID
			for _, n := range sizes {
				tmp = append(tmp, p.alloc(n*elem))
			}
			for _, id := range tmp {
				p.free(id)
			}
		}
	}
	return true
}

// adafactorState approximates Adafactor's factored second moment of a
// tensor of n elements as a matrix of hidden rows: rows + columns.
func adafactorState(n uint64, hidden int) uint64 {
	h := uint64(hidden)
	if n <= h || n%h != 0 {
		return n
	}
	return h + n/h
}

// taskHeadOps plays a decoder's classifier head and its loss after the
// final norm (analytic's taskHeadTerms): token-cls's dropout (transformers'
// default classifier_dropout 0.1; the norm's kept output stands for the
// dropout's), the classifier's 16-bit weight copy under autocast, the
// sequence classifier's logits of every position and the two index tensors
// that pick the last token's, and cross entropy over B (seq-cls) or B*S
// rows. ok is false for the LM head.
func (s *simTraining) taskHeadOps(o *opList, ru simRules) (ops []fwdOp, ok bool) {
	f := s.ft
	if f == nil || f.head == "" {
		return nil, false
	}
	B, S, H, N := uint64(s.w.Batch), uint64(s.w.Seq), uint64(s.m.hidden), f.labels
	cls := s.m.ref("score", "classifier")
	rows := B * S
	if f.head == model.HeadTokenCls {
		mask := uint64(1)
		if ru.cpu {
			mask = s.dt.resid // the norm output's dtype
		}
		o.dropout(true, rows*H, mask)
	} else {
		rows = B
	}
	if s.dt.autocast {
		o.save(H * N * 2)
	}
	hold := func(bytes uint64, params ...int) {
		o.ops = append(o.ops, fwdOp{bytes: bytes, hold: true, params: params})
	}
	if f.head == model.HeadSeqCls {
		o.temp(B*S*N*ru.a, cls...) // every position's logits
		o.save(2 * B * 8)          // the index tensors
		hold(B * N * ru.a)
	} else {
		hold(rows*N*ru.a, cls...)
	}
	if s.w.Inference {
		return o.ops, true
	}
	ce := ru.a
	if s.dt.autocast || f.upcast {
		ce = 4
	}
	if ce != ru.a {
		o.temp(rows * N * ce)
	}
	o.save(rows * N * ce) // log_softmax output
	o.save(rows * 8)      // the labels
	o.scalar(ce, false)
	hold(512) // the loss
	return o.ops, true
}
