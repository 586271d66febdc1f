package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// moeShape is what the saved activations of a sparse mixture-of-experts
// block (model.OpMoE) depend on, for one layer and one rank. The block is
// transformers 5.x's (MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock) with
// its default grouped-matmul experts, as scenarios/train.py builds it; per
// layer, with T = B*S tokens, k experts per token, E experts, F the
// expert's and Fs the shared expert's intermediate size, a the matmul
// dtype and x the experts' dtype (fp32 under autocast, whose lists do not
// hold grouped_mm, so the fp32 norm output goes in as it is; else a):
//
//	moe.router_probs      4*T*E     softmax of the router logits (fp32)
//	moe.topk_indices      8*T*k     topk's indices
//	moe.topk_norm         4*T*(k+1) the top-k weights and their sum (NormTopK)
//	moe.permutation       8*3*k*T   the sort permutation, the token of each row, the inverse permutation
//	moe.offsets           4*E       the grouped matmuls' int32 offsets
//	moe.expert_in         x*R*H     the gathered rows, the first grouped matmul's input
//	moe.expert_act        x*4*R*F   gate|up output (2F), act(gate), act(gate)*up
//	moe.expert_out        x*k*T*H   the down projection's output, saved by the weighting
//	moe.routing_weights   w*k*T     the rows' routing weights (w = 4 with Layer.RouterFP32, else a)
//	moe.shared_mlp        a*4*T*Fs  the shared expert's gate, act, up and product (SharedFFN)
//	moe.shared_gate       a*T       the shared expert's sigmoid gate (SharedExpertGate)
//	moe.shared_out        a*T*H     the shared expert's output, saved by the gating product
//
// R is the routed rows this rank's experts compute: k*T with EP 1 (the
// grouped matmuls keep exactly the routed rows, whatever the balance);
// with EP ranks each holding E/EP experts and the busiest expert at
// MoEImbalance times the mean, the busiest rank's
//
//	R = k*T*EP/E * (imb + (E/EP - 1)*(E - imb)/(E - 1))
//
// (the other experts of that rank at the mean of the rest), which is k*T
// when balanced. With RouterAuxLoss the loss adds, per layer, a second
// softmax of the router logits (a*T*E) and its top-k indices (8*T*k), and
// once the E fp32 assignment counts (moe.aux_*); under full checkpointing
// the router logits come from the no-grad forward and none is saved.
type moeShape struct {
	E, k, F, Fs, T, R float64
	sharedGate        bool
	normTopK          bool
	routerFP32        bool
	aux               bool
	ep                float64
}

// initMoE sets s.moe for a layer with the sparse block and checks the
// expert-parallel fields of w against a.
func (s *actShape) initMoE(a *model.Arch, w *model.Workload, sparse bool) error {
	s.moe = nil
	if a.Experts == 0 || !sparse {
		if w.EP > 1 {
			return &model.FieldError{Field: "ep", Value: w.EP,
				Reason: fmt.Sprintf("expert parallelism applies to mixture-of-experts models only (%s has no experts); use 1", a.Family)}
		}
		return nil
	}
	if err := checkEP(a, w); err != nil {
		return err
	}
	E, k := float64(a.Experts), float64(max(1, a.ExpertsPerToken))
	ep, imb := float64(w.EP), w.MoEImbalance
	T := float64(w.Batch) * float64(w.Seq)
	R := k * T
	if ep > 1 && E > 1 {
		R = k * T * ep / E * (imb + (E/ep-1)*(E-imb)/(E-1))
	}
	fam, _ := model.FamilyOf(a.Family)
	s.moe = &moeShape{E: E, k: k, F: s.F, Fs: float64(a.SharedFFN), T: T, R: R, ep: ep,
		sharedGate: a.SharedExpertGate, normTopK: a.NormTopK, aux: a.RouterAuxLoss,
		routerFP32: fam.Layer.RouterFP32}
	return nil
}

// checkEP checks the expert-parallel fields of a workload w (defaults
// filled) against the model a: ep divides the experts and dp, the
// imbalance is at most experts/k; ep above 1 needs experts.
func checkEP(a *model.Arch, w *model.Workload) error {
	if a.Experts == 0 {
		if w.EP > 1 {
			return &model.FieldError{Field: "ep", Value: w.EP,
				Reason: fmt.Sprintf("expert parallelism applies to mixture-of-experts models only (%s has no experts); use 1", a.Family)}
		}
		return nil
	}
	if a.Experts%w.EP != 0 {
		return &model.FieldError{Field: "ep", Value: w.EP,
			Reason: fmt.Sprintf("does not divide the %d experts; choose a divisor of %d", a.Experts, a.Experts)}
	}
	if w.DP%w.EP != 0 {
		return &model.FieldError{Field: "ep", Value: w.EP,
			Reason: fmt.Sprintf("must divide dp %d: the experts are sharded over ep of the data-parallel ranks", w.DP)}
	}
	if k := max(1, a.ExpertsPerToken); w.MoEImbalance > float64(a.Experts)/float64(k) {
		return &model.FieldError{Field: "moe_imbalance", Value: w.MoEImbalance,
			Reason: fmt.Sprintf("is more than experts/experts_per_token = %d/%d: an expert gets each token at most once", a.Experts, k)}
	}
	return nil
}

// expertParams is the routed experts' parameters over all layers, what
// expert parallelism shards.
func (in *inputs) expertParams() float64 {
	if in.a.Experts == 0 {
		return 0
	}
	mats, bias := 2.0, in.ffn+in.H
	if in.a.GatedMLP {
		mats, bias = 3, 2*in.ffn+in.H
	}
	mlp := mats * in.H * in.ffn
	if in.a.MLPBias {
		mlp += bias
	}
	return in.L * float64(in.a.Experts) * mlp
}

// epLocalParams is ntp, the parameters a tensor-parallel rank holds,
// less the experts the other ep-1 expert-parallel ranks hold.
func (in *inputs) epLocalParams(ntp float64) float64 {
	if in.w.EP <= 1 {
		return ntp
	}
	return ntp - in.expertParams()/in.t*(1-1/float64(in.w.EP))
}

// linearWeights is the weights of one layer's nn.Linear layers, which
// autocast copies: attention, the router, the shared expert and its gate
// (the experts' grouped matmuls are not on autocast's lists).
func (m *moeShape) linearWeights(H, qd, kvd float64) float64 {
	w := H*qd + 2*H*kvd + qd*H + m.E*H + 3*H*m.Fs
	if m.sharedGate {
		w += H
	}
	return w
}

// normCopies adds autocast's 16-bit copies of the norms' outputs: q, k, v
// read the first; the router, the shared expert's gate and up projections
// and its gate read the second.
func (m *moeShape) normCopies(b *actBuilder, s *actShape, BSH float64) {
	n := 4.0
	if m.Fs > 0 {
		n += 2
	}
	if m.sharedGate {
		n++
	}
	b.add("ln.out_copies", GroupActivations, n*BSH, fmt.Sprintf("%g*B*S*H*L", n), 2)
}

// layerTerms adds the sparse block's saved tensors, L layers.
func (m *moeShape) layerTerms(b *actBuilder, s *actShape) {
	L, T, k, H := s.L, m.T, m.k, s.H
	x := s.a
	if s.autocast {
		x = 4
	}
	b.add("moe.router_probs", GroupActivations, T*m.E*L, "B*S*E*L", 4)
	b.add("moe.topk_indices", GroupActivations, T*k*L, "B*S*k*L", 8)
	if m.normTopK {
		b.add("moe.topk_norm", GroupActivations, T*(k+1)*L, "B*S*(k+1)*L", 4)
	}
	b.add("moe.permutation", GroupActivations, 3*k*T*L, "3*k*B*S*L", 8)
	b.add("moe.offsets", GroupActivations, m.E/m.ep*L, "E/ep*L", 4)
	b.add("moe.expert_in", GroupActivations, m.R*H*L, "R*H*L", x)
	b.add("moe.expert_act", GroupActivations, 4*m.R*s.F*L, "4*R*F*L", x)
	b.add("moe.expert_out", GroupActivations, k*T*H*L, "k*B*S*H*L", x)
	w := s.a
	if m.routerFP32 {
		w = 4
	}
	b.add("moe.routing_weights", GroupActivations, k*T*L, "k*B*S*L", w)
	if m.Fs > 0 {
		b.add("moe.shared_mlp", GroupActivations, 4*T*m.Fs*L, "4*B*S*Fs*L", s.a)
		if m.sharedGate {
			b.add("moe.shared_gate", GroupActivations, T*L, "B*S*L", s.a)
			b.add("moe.shared_out", GroupActivations, T*H*L, "B*S*H*L", s.a)
		}
	}
}

// auxLossTerms adds the load-balancing loss's saved tensors.
func (m *moeShape) auxLossTerms(b *actBuilder, s *actShape) {
	if !m.aux || s.ckpt == model.FullCheckpointing {
		return
	}
	b.add("moe.aux_probs", GroupActivations, m.T*m.E*s.L, "B*S*E*L", s.a)
	b.add("moe.aux_topk", GroupActivations, m.T*m.k*s.L, "B*S*k*L", 8)
	b.add("moe.aux_counts", GroupActivations, m.E, "E", 4)
}

// extraTerms adds, with expert parallelism, the all-to-all buffers of one
// layer: the k*B*S rows sent to the experts' ranks and the R received
// (and the same back), live while a layer's block runs in either pass.
func (m *moeShape) extraTerms(b *actBuilder, s *actShape, slot int) {
	if m.ep <= 1 {
		return
	}
	x := s.a
	if s.autocast {
		x = 4
	}
	b.put("moe.all_to_all", GroupActivations, (m.k*m.T+m.R)*s.H, "(k*B*S+R)*H", x, slot, noteDerived)
}

// denseActivations is the error of a formula whose activations are those
// of a dense layer (a 4h MLP: Korthikanti et al.'s sbh(34 + 5as/h), the
// seed article's, Megatron's Table 2) asked about training a
// mixture-of-experts model, whose routed experts, router and dispatch
// buffers those papers do not count; nil for a dense model.
func (in *inputs) denseActivations(formula string) error {
	if in.a.Experts == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w to training %s: its activations are a dense layer's, without the router, the routed experts' k*B*S rows or the dispatch buffers of a mixture-of-experts layer; use breakdown",
		formula, ErrNotApplicable, in.a.Family)
}
