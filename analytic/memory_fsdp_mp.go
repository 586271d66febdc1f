package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// FSDP mixed precision (Workload.FSDPMixed, see analytic/model/fsdp_mp.go
// for the library rules it follows). Derived from torch's and accelerate's
// code; the shards, the states, the gathered copies and the activations
// measured on the CPU against FSDP2 (scenarios/truth_fsdp_mp_test.go), the
// gather and reduce-scatter peaks on CUDA and FSDP1 not.

// fsdpMP reports whether the workload runs FSDP with MixedPrecision, and
// the bytes of its param and reduce dtypes.
func (in *inputs) fsdpMP() (param, reduce float64, ok bool) {
	p, r, err := model.ParseFSDPMixed(in.w.FSDPMixed) // checked by WithDefaults
	return p, r, err == nil && p > 0
}

// computeWorkload is the workload as the layers compute it: under FSDP
// MixedPrecision the gathered parameters and (cast_forward_inputs) the
// inputs are in param_dtype, so the activations are those of a pure
// 16-bit model (bf16-pure), whatever dtype the shards keep.
func (in *inputs) computeWorkload() *model.Workload {
	if _, _, ok := in.fsdpMP(); !ok {
		return &in.w
	}
	w := in.w
	w.Precision = model.BF16Pure
	return &w
}

// fsdpMPCoefs replaces c, under FSDP MixedPrecision, by the coefficients of
// fp32 shards: weights, gradients and the optimizer's states (and foreach
// temporaries) in fp32, no master copy (the optimizer steps on the fp32
// shard), activations in param_dtype. A bf16-pure model is upcast first
// (accelerate). computeGrad is the unsharded gradient's bytes, param_dtype.
func (in *inputs) fsdpMPCoefs(c stateCoefs) stateCoefs {
	p, _, ok := in.fsdpMP()
	if !ok {
		return c
	}
	c = in.finetuneCoefsFor(model.FP32)
	c.weight, c.grad, c.master, c.act, c.computeGrad = 4, 4, 0, p, p
	return c
}

// fsdpMPStateTerms is modelStateTerms under FSDP MixedPrecision, per rank
// with N_tp from tpParams and d the sharding group:
//
//	weights           = N_tp * 4 / d     fp32 shard (steady)
//	gradients         = N_tp * 4 / d     fp32 shard (gradPhase)
//	optimizer_states  = N_tp * c.optim / d
//	zero 3: zero3_gather_buffer = (root + k layers) * param bytes, gatherPhase:
//	        the param_dtype copies of the root unit, which stays gathered,
//	        and of k layers (1 on the CPU, measured; 2 with CUDA's forward
//	        prefetch, derived), freed after use (reshard_after_forward=True)
//
// With zero 2 (reshard_after_forward=False) the param_dtype copies of all
// units are engineTerms' fsdp_unsharded_params. Unlike the other engines
// the shards are 1/d of the parameters for zero 2 too: FSDP stores every
// parameter sharded between steps. The gather terms are counted for d = 1
// as well: the cast to param_dtype makes the copy whatever the world size.
func (in *inputs) fsdpMPStateTerms(e *Estimate, c stateCoefs, gradPhase, gatherPhase string) float64 {
	p, _, _ := in.fsdpMP()
	shard := in.tpParams() * in.stateParamsFrac() / in.dp
	e.add("weights", GroupWeights, shard, "params", c.weight).Note = "fp32 parameter shard (FSDP MixedPrecision)"
	g := e.add("gradients", GroupGradients, shard, "params", c.grad)
	g.Phase, g.Note = gradPhase, "fp32 gradient shard: the reduced gradient cast back to the parameters' dtype"
	e.add("optimizer_states", GroupOptimizer, shard, "params", c.optim)
	if in.w.ZeRO >= 3 {
		units, note := in.fsdpGathered()
		e.addPeak("zero3_gather_buffer", GroupWeights, units, "params", p, gatherPhase).Note =
			fmt.Sprintf("%s copies of %s, freed after use", in.mpParamName(), note)
	}
	return shard
}

// fsdpGathered is the parameters FSDP holds gathered at once under zero 3,
// per rank: the root unit (every parameter outside the layers: embeddings,
// final norm, head), which stays gathered while the layers run, and the
// layer computed, measured with torch 2.11's fully_shard on the CPU
// (scenarios TestFSDPMixedTruth); on CUDA also the next layer, which the
// forward prefetches (derived, not measured).
func (in *inputs) fsdpGathered() (float64, string) {
	layers, note := 2.0, "the root unit (embeddings, head, final norm), the layer computed and the one prefetched"
	if in.w.Backend == model.CPU {
		layers, note = 1, "the root unit (embeddings, head, final norm) and the layer computed"
	}
	pb, err := model.Params(in.a)
	if err != nil || in.a.Layers == 0 { // normalized archs count: fall back to the unit sizes
		return 2 * in.fsdpUnit(), "the unit being computed and the prefetched one"
	}
	root := float64(pb.Total - int64(in.a.Layers)*pb.PerLayer)
	return (root + layers*float64(pb.PerLayer)) / in.t, note
}

// fsdpUnit is the parameters of one FSDP unit on this rank: the larger of
// a layer and the largest module (embedding, head) over the TP degree.
func (in *inputs) fsdpUnit() float64 {
	return max(in.layerParams(), in.largestModuleParams()) / in.t
}

// mpParamName is the param dtype of FSDPMixed, for notes.
func (in *inputs) mpParamName() string {
	if in.w.FSDPMixed[:4] == "fp16" {
		return "fp16"
	}
	return "bf16"
}

// fsdpMPEngineTerms are engineTerms' FSDP buffers under MixedPrecision:
//
//	fsdp_reduce_scatter_buffer, backward: one unit's unsharded gradients
//	    in param_dtype, plus their copy in reduce_dtype when it differs
//	    (FSDP1 casts the unsharded gradient before the reduce-scatter,
//	    FSDP2 copies it into its reduce-scatter input in reduce_dtype)
//	zero 2: fsdp_unsharded_params, forward: every unit's param_dtype copy,
//	    all N_tp parameters, kept from forward to the end of backward
func (in *inputs) fsdpMPEngineTerms(e *Estimate) {
	p, r, _ := in.fsdpMP()
	rs := p
	if r != p {
		rs += r
	}
	e.addPeak("fsdp_reduce_scatter_buffer", GroupComm, in.fsdpUnit(), "params", rs, PhaseBackward).Note =
		"one unit's unsharded gradients in param_dtype (and reduce_dtype) before the reduce-scatter"
	if in.w.ZeRO == 2 {
		ntp := in.tpParams() * in.stateParamsFrac()
		e.addPeak("fsdp_unsharded_params", GroupComm, ntp, "params", p, PhaseForward).Note =
			fmt.Sprintf("SHARD_GRAD_OP: every unit's %s copy stays gathered from forward to the end of backward", in.mpParamName())
	}
}
