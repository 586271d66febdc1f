package analytic

import "github.com/memval/memval/analytic/model"

// stateCoefs are bytes per parameter of each kind of model state, for one
// precision and optimizer, before any sharding.
type stateCoefs struct {
	weight float64 // the weights the model computes with
	grad   float64 // their gradients
	master float64 // fp32 master copy kept by the optimizer (bf16-master only)
	optim  float64 // optimizer states (exp_avg + exp_avg_sq, momentum, ...)
	temp   float64 // foreach optimizer-step temporaries (peak of the step)
	act    float64 // bytes per element of most saved activations
	// computeGrad is the bytes of a gradient as backward computes it, when
	// it differs from grad (FSDP MixedPrecision's param_dtype); 0: grad.
	computeGrad float64
}

// coefsFor returns the per-parameter bytes of weights, gradients and
// optimizer states for precision p and optimizer o:
//
//	precision    weight grad master  state element  activations
//	fp32            4     4     0        4              4
//	fp16, bf16      4     4     0        4              2   (autocast keeps fp32 weights)
//	bf16-pure       2     2     0        2              2
//	bf16-master     2     2     4        4              2   (Megatron/DeepSpeed; grads 2, some keep them in fp32)
//
// optimizer states per parameter: adamw 2 elements (exp_avg, exp_avg_sq),
// sgd 0, sgd-momentum 1 element, adam8bit 2 bytes (bitsandbytes 8-bit
// states, whatever the precision). PyTorch's multi-tensor ("foreach") AdamW
// allocates one parameter-sized temporary (sqrt(exp_avg_sq)) in the state
// dtype during the step; SGD (weight decay 0) and 8-bit Adam (fused kernel)
// none.
func coefsFor(p model.Precision, o model.Optimizer) stateCoefs {
	var c stateCoefs
	elem := 4.0
	switch p {
	case model.FP32:
		c.weight, c.grad, c.act = 4, 4, 4
	case model.FP16Mixed, model.BF16Mixed:
		c.weight, c.grad, c.act = 4, 4, 2
	case model.BF16Pure:
		c.weight, c.grad, c.act = 2, 2, 2
		elem = 2
	case model.BF16Master:
		c.weight, c.grad, c.master, c.act = 2, 2, 4, 2
	}
	switch o {
	case model.AdamW:
		c.optim, c.temp = 2*elem, elem
	case model.SGDMomentum:
		c.optim = elem
	case model.Adam8bit:
		c.optim = 2
	}
	return c
}

// replicatedParams counts the parameters tensor parallelism keeps whole on
// every rank: norms, the position and token-type tables. Everything else
// (attention and MLP matrices, vocabulary-parallel embedding and head) is
// split t ways, as Megatron-LM does.
func (in *inputs) replicatedParams() float64 {
	a := &in.a
	norm := in.H
	if a.Norm == model.LayerNorm {
		norm = 2 * in.H
	}
	r := in.L * float64(a.NormsPerLayer) * norm
	if a.FinalNorm {
		r += norm
	}
	if a.EmbedNorm {
		r += norm
	}
	r += float64(a.MaxPositions+a.PositionOffset+a.TokenTypes) * in.H
	return min(r, float64(in.n))
}

// tpParams is the number of parameters one tensor-parallel rank holds:
//
//	N_tp = R + (N - R) / t
//
// with R the replicated parameters (replicatedParams).
func (in *inputs) tpParams() float64 {
	n := float64(in.n)
	if in.t == 1 {
		return n
	}
	r := in.replicatedParams()
	return r + (n-r)/in.t
}

// embedWidth is the width of the token embedding (OPT's word_embed_proj_dim
// when set, else Hidden).
func (in *inputs) embedWidth() float64 {
	if in.a.EmbedProj > 0 {
		return float64(in.a.EmbedProj)
	}
	return in.H
}

// layerParams is the parameter count of one transformer layer: attention
// (H*(h+2kv)*hd + h*hd*H and biases), the MLP (2 or 3 matrices of H*d_ff per
// expert, biases, the router) and the norms. It is the FSDP wrapping unit.
func (in *inputs) layerParams() float64 {
	a := &in.a
	q, kv := in.h*in.hd, in.kv*in.hd
	p := in.H*(q+2*kv) + q*in.H
	if a.QKVBias {
		p += q + 2*kv
	}
	if a.OutBias {
		p += in.H
	}
	experts := max(1.0, float64(a.Experts))
	mats, bias := 2.0, in.ffn+in.H
	if a.GatedMLP {
		mats, bias = 3, 2*in.ffn+in.H
	}
	mlp := mats * in.H * in.ffn
	if a.MLPBias {
		mlp += bias
	}
	p += experts * mlp
	if a.Experts > 0 {
		p += in.H * float64(a.Experts)
	}
	p += mats * in.H * float64(a.SharedFFN) // qwen2_moe's shared expert
	if a.SharedExpertGate {
		p += in.H
	}
	norm := in.H
	if a.Norm == model.LayerNorm {
		norm = 2 * in.H
	}
	switch a.QKNorm { // per-head or whole-projection q/k norms (qwen3, gemma3, olmo2)
	case model.QKNormHead:
		p += 2 * in.hd * norm / in.H
	case model.QKNormFull:
		p += (q + kv) * norm / in.H
	}
	if a.LayerScale { // DINOv2's two per-channel scales
		p += 2 * in.H
	}
	return p + float64(a.NormsPerLayer)*norm
}

// largestModuleParams is the parameter count of the largest single module
// (its own parameters, not its children's), what DeepSpeed's ZeRO-3
// estimator calls largest_layer_params: the token embedding or the LM
// head (V*H), the position table, an MLP projection or a fused QKV
// projection (gpt2, gpt_neox).
func (in *inputs) largestModuleParams() float64 {
	a := &in.a
	m := in.V * in.embedWidth()
	m = max(m, float64(a.MaxPositions+a.PositionOffset)*in.H)
	up := in.H * in.ffn
	if a.MLPBias {
		up += in.ffn
	}
	m = max(m, up)
	q, kv := in.h*in.hd, in.kv*in.hd
	if fam, ok := model.FamilyOf(a.Family); ok && fam.FusedQKVModule {
		qkv := in.H * (q + 2*kv)
		if a.QKVBias {
			qkv += q + 2*kv
		}
		m = max(m, qkv)
	} else {
		m = max(m, in.H*q)
	}
	if !a.TiedHead && !a.NoHead {
		head := in.V * in.embedWidth()
		if a.HeadBias {
			head += in.V
		}
		m = max(m, head)
	}
	return m
}

// modelStateTerms appends the weights, master weights, gradients and
// optimizer states one GPU holds, with tensor parallelism t and ZeRO stage
// z over d data-parallel ranks:
//
//	weights    = N_tp * c.weight / (z >= 3 ? d : 1)
//	master     = N_tp * c.master / (z >= 1 ? d : 1)
//	gradients  = N_tp * c.grad   / (z >= 2 ? d : 1)
//	optimizer  = N_tp * c.optim  / (z >= 1 ? d : 1)
//
// in bytes, N_tp from tpParams. ZeRO-3 (FSDP full shard) adds a peak-only
// gather buffer of 2 layers' full weights (the unit being computed and the
// one prefetched). gradPhase limits the gradients to a phase ("" for the
// whole step). It returns the parameters per GPU whose optimizer states it
// counted.
func (in *inputs) modelStateTerms(e *Estimate, c stateCoefs, gradPhase, gatherPhase string) float64 {
	gradPhase = in.gradPhase(gradPhase) // gradient accumulation (memory_finetune.go)
	if in.w.LoRA() || in.w.Weights != "" {
		return in.loraStateTerms(e, c, gradPhase)
	}
	if _, _, ok := in.fsdpMP(); ok {
		return in.fsdpMPStateTerms(e, c, gradPhase, gatherPhase) // memory_fsdp_mp.go
	}
	ntp := in.tpParams() * in.stateParamsFrac() // a pipeline stage holds its share
	// With expert parallelism a rank holds its ep-th of the experts; ZeRO
	// shards those over the dp/ep ranks that hold the same experts, which
	// comes to ntp/dp in all (see epLocalParams).
	local := in.epLocalParams(ntp)
	wp, gp, op := local, local, local
	z := in.w.ZeRO
	if z >= 1 {
		op = ntp / in.dp
	}
	if z >= 2 {
		gp = ntp / in.dp
	}
	if z >= 3 {
		wp = ntp / in.dp
	}
	e.add("weights", GroupWeights, wp, "params", c.weight)
	if c.master > 0 {
		e.add("master_weights", GroupOptimizer, op, "params", c.master)
	}
	if c.grad > 0 {
		g := e.add("gradients", GroupGradients, gp, "params", c.grad)
		g.Phase = gradPhase
	}
	e.add("optimizer_states", GroupOptimizer, op, "params", c.optim)
	if z >= 3 && in.dp > 1 {
		unit := max(in.layerParams(), in.largestModuleParams()) / in.t
		e.addPeak("zero3_gather_buffer", GroupWeights, unit, "params", 2*c.weight, gatherPhase).Note =
			"full weights of the unit being computed and of the prefetched one"
	}
	return op
}
