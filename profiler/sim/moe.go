package sim

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// simMoE is a sparse block's routing (model.OpMoE), from the arch and the
// family's layer.
type simMoE struct {
	sharedFFN  int
	sharedGate bool
	normTopK   bool
	aux        bool // the load-balancing loss
	routerFP32 bool // routing weights stay fp32 (Mixtral)
}

func newSimMoE(a model.Arch, l *model.Layer) *simMoE {
	if a.Experts == 0 || !l.HasOp(model.OpMoE) {
		return nil
	}
	return &simMoE{sharedFFN: a.SharedFFN, sharedGate: a.SharedExpertGate, normTopK: a.NormTopK,
		aux: a.RouterAuxLoss, routerFP32: l.RouterFP32}
}

// normConsumers is how many linear layers read the second norm's output
// in a sparse layer: the router, the shared expert's gate and up
// projections and its sigmoid gate (each keeps its own autocast copy).
func (m *simModel) normConsumers() int {
	n := 1
	if m.moe.sharedFFN > 0 {
		n += 2
	}
	if m.moe.sharedGate {
		n++
	}
	return n
}

// moeOps appends the sparse block as transformers 5.x runs it with its
// grouped experts: the shared expert, the router and its fp32 softmax,
// top-k, the k*T rows sorted by expert and gathered, the grouped gate|up
// and down matmuls (in the weights' dtype: grouped_mm is on no autocast
// list), the weighting, the unsort and the sum per token, and the shared
// expert's sigmoid gate. Its input is the op before it.
func (m *simModel) moeOps(o *opList, pf string, T uint64, dt simDtypes, ru simRules, ep, rows uint64) {
	H, F, a := uint64(m.hidden), uint64(m.ffn), ru.a
	E, k := uint64(m.experts), uint64(m.topK)
	x := a // the experts' dtype
	if dt.autocast {
		x = 4
	}
	mm := m.moe
	if Fs := uint64(mm.sharedFFN); Fs > 0 {
		sp := pf + "shared_expert."
		m.castCache(o, dt, sp+"gate.weight", sp+"up.weight")
		o.keep(T*Fs*a, m.ref(sp+"gate.weight")...) // saved by the activation
		o.keep(T * Fs * a)                         // act(gate)
		o.keep(T*Fs*a, m.ref(sp+"up.weight")...)   // saved by the product
		o.keep(T * Fs * a)                         // the product, down's input
		m.castCache(o, dt, sp+"down.weight")
		o.keepIf(mm.sharedGate, T*H*a, m.ref(sp+"down.weight")...) // saved by the gating product
	}
	m.castCache(o, dt, pf+"router")
	o.temp(T*E*a, m.ref(pf+"router")...) // router logits
	o.save(T * E * 4)                    // softmax (fp32)
	o.save(T * k * 8)                    // topk's indices
	if mm.normTopK {
		o.save(T * k * 4) // the top-k weights the division keeps
		o.save(T * 4)     // and their sum
	}
	w := a
	if mm.routerFP32 {
		w = 4
	}
	o.save(3 * k * T * 8) // the sort permutation, each row's token, the inverse
	o.save(E / ep * 4)    // the grouped matmuls' int32 offsets
	experts := m.expertParams(pf)
	o.keep(rows * H * x)              // the gathered rows
	o.keep(rows*2*F*x, experts[0]...) // gate|up, saved by the activation and the product
	o.keep(rows * F * x)              // act(gate)
	o.keep(rows*F*x, experts[1]...)   // the product, down's input
	o.keep(k * T * H * x)             // down's output, saved by the weighting
	o.save(k * T * w)                 // the rows' weights
	o.temp(k * T * H * x)             // weighted
	o.temp(k * T * H * x)             // unsorted
	o.temp(T * H * x)                 // summed per token
	if mm.sharedGate {
		m.castCache(o, dt, pf+"shared_expert_gate")
		o.keep(T*a, m.ref(pf+"shared_expert_gate")...) // the sigmoid, saved by the product
		o.temp(T * H * a)
	}
}

// expertParams are the routed experts' gate and up, and down parameters
// of layer pf.
func (m *simModel) expertParams(pf string) [2][]int {
	var ps [2][]int
	for e := 0; e < m.experts; e++ {
		mp := fmt.Sprintf("%sexperts.%d.", pf, e)
		ps[0] = append(ps[0], m.ref(mp+"gate.weight", mp+"up.weight")...)
		ps[1] = append(ps[1], m.ref(mp+"down.weight")...)
	}
	return ps
}

// auxLossOps is the load-balancing loss over every layer's router logits:
// per layer a softmax in the logits' dtype and its top-k indices, and the
// E fp32 assignment counts. Under full checkpointing the logits come from
// the no-grad forward and nothing is saved.
func (s *simTraining) auxLossOps() []fwdOp {
	m := s.m
	if m.moe == nil || !m.moe.aux || s.w.Inference || s.w.Checkpointing == model.FullCheckpointing {
		return nil
	}
	T := uint64(s.w.Batch) * uint64(s.w.Seq)
	E, k := uint64(m.experts), uint64(m.topK)
	a := newSimRules(s.w, s.dt).a
	o := &opList{}
	for l := 0; l < m.layers; l++ {
		o.save(T * E * a)
		o.save(T * k * 8)
	}
	o.save(E * 4)
	return o.ops
}

// moeRows is the routed rows the busiest expert-parallel rank computes:
// k*T with one rank, else (analytic's model) the busiest expert at
// MoEImbalance times the mean and the rank's other experts at the mean of
// the rest.
func moeRows(k, T, E, ep uint64, imb float64) uint64 {
	if ep <= 1 || E <= 1 {
		return k * T
	}
	if imb < 1 {
		imb = 1
	}
	e, p := float64(E), float64(ep)
	r := float64(k*T) * p / e * (imb + (e/p-1)*(e-imb)/(e-1))
	return uint64(r + 0.5)
}
