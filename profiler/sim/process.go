package sim

// The simulated training process. It is derived from the model's modules as
// PyTorch (and Hugging Face's implementations) build them, independently of
// package analytic's closed forms, which it cannot import: it reads the
// model description (analytic/model's Arch and the family table's layer
// ops), enumerates the tensors itself and walks a training step tensor by
// tensor through the caching-allocator model. Comparing its figures with
// analytic's is therefore a test of both.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
)

// simParam is one parameter tensor.
type simParam struct {
	name  string
	numel uint64
}

// simModel is the model's shape with the family's defaults filled in by the
// simulator's own rules.
type simModel struct {
	layer      *model.Layer // what one layer computes, from the family table
	rotary     bool         // the layer applies rotary positions (cos/sin tables with the embeddings)
	layers     int
	hidden     int
	heads      int
	kvHeads    int
	headDim    int
	ffn        int
	vocab      int
	gated      bool
	experts    int
	topK       int
	rmsNorm    bool
	learnedPos int     // rows of the position table
	act        string  // the MLP's activation (lower case; empty: the family's default)
	moe        *simMoE // the sparse block's routing (nil: dense)

	params []simParam
	index  map[string]int
}

func (m *simModel) add(name string, numel int) {
	if numel <= 0 {
		return
	}
	m.index[name] = len(m.params)
	m.params = append(m.params, simParam{name: name, numel: uint64(numel)})
}

// ref returns the indices of the named parameters that exist.
func (m *simModel) ref(names ...string) []int {
	var out []int
	for _, n := range names {
		if i, ok := m.index[n]; ok {
			out = append(out, i)
		}
	}
	return out
}

func (m *simModel) numParams() int64 {
	var n int64
	for _, p := range m.params {
		n += int64(p.numel)
	}
	return n
}

// newSimModel enumerates a model's parameter tensors from the architecture's
// fields, module by module.
func newSimModel(a model.Arch) (*simModel, error) {
	if a.Layers <= 0 || a.Hidden <= 0 || a.Heads <= 0 || a.Vocab <= 0 {
		return nil, fmt.Errorf("sim: model %q needs layers, hidden, heads and vocab above zero (got %d, %d, %d, %d)", a.Name, a.Layers, a.Hidden, a.Heads, a.Vocab)
	}
	fam, ok := model.FamilyOf(strings.ToLower(a.Family))
	if !ok {
		return nil, fmt.Errorf("sim: model %q: family %q is not in the family table: use one of %s", a.Name, a.Family, strings.Join(model.Families(), ", "))
	}
	m := &simModel{
		layer:  fam.Layer,
		layers: a.Layers, hidden: a.Hidden, heads: a.Heads,
		kvHeads: a.KVHeads, headDim: a.HeadDim, ffn: a.FFN, vocab: a.Vocab,
		gated: a.GatedMLP, experts: a.Experts, topK: a.ExpertsPerToken, act: strings.ToLower(a.Act),
		index: make(map[string]int),
	}
	if m.kvHeads == 0 {
		m.kvHeads = m.heads
	}
	if m.headDim == 0 {
		m.headDim = m.hidden / m.heads
	}
	if m.ffn == 0 {
		m.ffn = 4 * m.hidden
	}
	for _, op := range m.layer.Ops {
		m.rotary = m.rotary || op == model.OpRotary
	}
	if fam.GatedMLP && !a.GatedMLP && a.Act == "" {
		m.gated = true // the family's MLP is gated unless the config says otherwise
	}
	if m.experts > 0 && m.topK == 0 {
		m.topK = 2
	}
	m.moe = newSimMoE(a, m.layer)
	m.rmsNorm = a.Norm == model.RMSNorm || (a.Norm == "" && fam.Norm == model.RMSNorm)
	if a.MaxPositions > 0 && !m.rotary {
		m.learnedPos = a.MaxPositions + a.PositionOffset
	}
	H, q, kv := m.hidden, m.heads*m.headDim, m.kvHeads*m.headDim
	widthNorm := func(prefix string, width int) {
		m.add(prefix+".weight", width)
		if !m.rmsNorm {
			m.add(prefix+".bias", width)
		}
	}
	norm := func(prefix string) { widthNorm(prefix, H) }
	embedDim := H
	if a.EmbedProj > 0 && a.EmbedProj != H {
		embedDim = a.EmbedProj
	}
	m.add("wte", m.vocab*embedDim)
	if embedDim != H {
		m.add("project_in", embedDim*H)
		m.add("project_out", H*embedDim)
	}
	m.add("wpe", m.learnedPos*H)
	m.add("token_type", a.TokenTypes*H)
	if a.EmbedNorm {
		norm("embed_norm")
	}
	norms := a.NormsPerLayer
	if norms == 0 {
		norms = 2
	}
	bias := func(on bool, n int) int {
		if on {
			return n
		}
		return 0
	}
	for l := 0; l < m.layers; l++ {
		p := fmt.Sprintf("h.%d.", l)
		norm(p + "ln_1")
		if norms > 1 {
			norm(p + "ln_2")
		}
		if m.layer.SplitQKV {
			m.add(p+"q_proj.weight", H*q)
			m.add(p+"q_proj.bias", bias(a.QKVBias, q))
			m.add(p+"k_proj.weight", H*kv)
			m.add(p+"k_proj.bias", bias(a.QKVBias, kv))
			m.add(p+"v_proj.weight", H*kv)
			m.add(p+"v_proj.bias", bias(a.QKVBias, kv))
			m.add(p+"o_proj.weight", q*H)
			m.add(p+"o_proj.bias", bias(a.OutBias, H))
		} else {
			// GPT-2's Conv1D c_attn is H x (q + 2kv), c_proj q x H.
			m.add(p+"c_attn.weight", H*(q+2*kv))
			m.add(p+"c_attn.bias", bias(a.QKVBias, q+2*kv))
			m.add(p+"c_proj.weight", q*H)
			m.add(p+"c_proj.bias", bias(a.OutBias, H))
		}
		switch a.QKNorm { // per-head or whole-projection norms on q and k
		case model.QKNormHead:
			widthNorm(p+"q_norm", m.headDim)
			widthNorm(p+"k_norm", m.headDim)
		case model.QKNormFull:
			widthNorm(p+"q_norm", q)
			widthNorm(p+"k_norm", kv)
		}
		experts := 1
		if m.experts > 0 {
			experts = m.experts
			m.add(p+"router", H*m.experts)
			if a.SharedFFN > 0 { // a shared expert every token passes through
				if m.gated {
					m.add(p+"shared_expert.gate.weight", H*a.SharedFFN)
				}
				m.add(p+"shared_expert.up.weight", H*a.SharedFFN)
				m.add(p+"shared_expert.down.weight", a.SharedFFN*H)
			}
			if a.SharedExpertGate {
				m.add(p+"shared_expert_gate", H)
			}
		}
		for e := 0; e < experts; e++ {
			mp := p + "mlp."
			if m.experts > 0 {
				mp = fmt.Sprintf("%sexperts.%d.", p, e)
			}
			if m.gated {
				m.add(mp+"gate.weight", H*m.ffn)
				m.add(mp+"gate.bias", bias(a.MLPBias, m.ffn))
			}
			m.add(mp+"up.weight", H*m.ffn)
			m.add(mp+"up.bias", bias(a.MLPBias, m.ffn))
			m.add(mp+"down.weight", m.ffn*H)
			m.add(mp+"down.bias", bias(a.MLPBias, H))
		}
	}
	if a.FinalNorm {
		norm("ln_f")
	}
	if !a.NoHead && !a.TiedHead {
		m.add("lm_head", m.vocab*embedDim)
	}
	if !a.NoHead && a.HeadBias {
		m.add("lm_head.bias", m.vocab)
	}
	if a.Pooler {
		m.add("pooler.weight", H*H)
		m.add("pooler.bias", H)
	}
	return m, nil
}

// simDtypes are the bytes per element the workload's precision gives each
// kind of tensor.
type simDtypes struct {
	autocast bool   // torch.autocast: fp32 weights, 16-bit matmul outputs
	param    uint64 // weights and gradients
	state    uint64 // optimizer states
	act      uint64 // matmul outputs
	norm     uint64 // norm outputs (autocast runs norms in fp32)
	softmax  uint64 // softmax output (autocast runs softmax in fp32)
	resid    uint64 // the residual stream
	master   bool   // fp32 master weights in the optimizer
}

func newSimDtypes(p model.Precision) (simDtypes, error) {
	switch p {
	case model.FP32, "":
		return simDtypes{param: 4, state: 4, act: 4, norm: 4, softmax: 4, resid: 4}, nil
	case model.FP16Mixed, model.BF16Mixed:
		return simDtypes{autocast: true, param: 4, state: 4, act: 2, norm: 4, softmax: 4, resid: 4}, nil
	case model.BF16Pure:
		return simDtypes{param: 2, state: 2, act: 2, norm: 2, softmax: 2, resid: 2}, nil
	case model.BF16Master:
		return simDtypes{param: 2, state: 4, act: 2, norm: 2, softmax: 2, resid: 2, master: true}, nil
	}
	return simDtypes{}, fmt.Errorf("sim: precision %q is not simulated: use %s", p, strings.Join(model.Precisions(), ", "))
}

// fwdOp is one tensor a forward pass allocates. The kept ones are exactly
// the storages autograd saves for backward (as train.py's saved-tensor
// hooks count them: each storage once, parameters left out, autocast's
// 16-bit weight copies in).
type fwdOp struct {
	bytes   uint64
	keep    bool  // saved for backward (freed when its backward runs); counted in the "saved" event
	core    bool  // attention core: recomputed under selective checkpointing
	act     bool  // backward produces a gradient of this size
	hold    bool  // not saved but alive until the step ends (logits, loss)
	noAlloc bool  // saved but takes no allocator block (host scalars, the input ids)
	params  []int // parameters whose gradients this op's backward produces
}

// simRules are the per-backend choices of what a saved tensor's dtype is.
// CPU is PyTorch 2.x's CPU backend (what scenarios/train.py measures in
// CI), CUDA that of PyTorch 2.x on a GPU.
type simRules struct {
	cpu      bool
	flash    bool   // SDPA flash attention (on the CPU only without dropout: torch 2.x's CPU flash kernel has none and falls back to math)
	a        uint64 // matmul outputs (16-bit under autocast)
	p        uint64 // weights, embedding outputs
	r        uint64 // the residual stream
	stat     uint64 // LayerNorm's saved mean and rstd: the input's dtype on CPU, fp32 on CUDA
	mask     uint64 // a dropout mask of a tensor of dtype a: 1-byte bool on CUDA, the input's dtype on CPU
	smax     uint64 // GPT-2's softmax output: fp32 under CUDA autocast, bf16 under CPU autocast
	powBytes uint64 // gelu_new's pow/tanh chain: fp32 under CUDA autocast (pow is on its fp32 list)
}

func newSimRules(w model.Workload, dt simDtypes) simRules {
	cpu := w.Backend == model.CPU
	r := simRules{cpu: cpu, flash: w.Attention == model.FlashAttention && (!cpu || w.Dropout == 0),
		a: dt.act, p: dt.param, r: dt.resid, stat: 4, mask: 1, smax: dt.act, powBytes: dt.act}
	if cpu {
		r.stat, r.mask = dt.norm, dt.act
	} else if dt.autocast {
		r.smax, r.powBytes = 4, 4
	}
	return r
}

// opList builds a forward op list.
type opList struct{ ops []fwdOp }

func (o *opList) keep(bytes uint64, params ...int) {
	o.ops = append(o.ops, fwdOp{bytes: bytes, keep: true, act: true, params: params})
}

// save is kept without a gradient of its own (masks, statistics, copies).
func (o *opList) save(bytes uint64) { o.ops = append(o.ops, fwdOp{bytes: bytes, keep: true}) }
func (o *opList) temp(bytes uint64, params ...int) {
	o.ops = append(o.ops, fwdOp{bytes: bytes, act: true, params: params})
}
func (o *opList) keepIf(on bool, bytes uint64, params ...int) {
	if on {
		o.keep(bytes, params...)
	} else {
		o.temp(bytes, params...)
	}
}
func (o *opList) core(bytes uint64) {
	o.ops = append(o.ops, fwdOp{bytes: bytes, keep: true, core: true, act: true})
}
func (o *opList) scalar(bytes uint64, core bool) {
	o.ops = append(o.ops, fwdOp{bytes: bytes, keep: true, core: core, noAlloc: true})
}

// attnCore appends eager attention's core for T tokens: q (q elements per
// token) and k (kv) made contiguous for the batched matmul, the scale
// divisor (a scalar of scalarBytes), the scores and their masked copy
// (temporaries), the softmax (smax bytes per element) and its cast back to
// the activation's a bytes, dropout's mask (mask bytes) and dropped
// probabilities, v (kv), probs @ v, and the merged heads the output
// projection reads. P is the number of score elements, B*h*S*S.
func (o *opList) attnCore(T, q, kv, P, a, smax, scalarBytes uint64, dropout bool, mask uint64) {
	o.core(T * q * a)
	o.core(T * kv * a)
	o.scalar(scalarBytes, true)
	o.temp(P * a) // scores
	o.temp(P * a) // scaled and causally masked
	o.core(P * smax)
	if smax != a { // the cast to the activation dtype
		if dropout {
			o.temp(P * a)
		} else {
			o.core(P * a)
		}
	}
	if dropout {
		o.core(P * mask) // mask
		o.core(P * a)    // dropped probabilities
	}
	o.core(T * kv * a) // v for the batched matmul
	o.temp(T * q * a)  // probs @ v
	o.keep(T * q * a)  // heads merged (contiguous)
}

// castCache: autocast keeps a 16-bit copy of each weight it casts (saved
// by the matmul that uses it).
func (m *simModel) castCache(o *opList, dt simDtypes, names ...string) {
	if !dt.autocast {
		return
	}
	for _, i := range m.ref(names...) {
		o.save(m.params[i].numel * 2)
	}
}

// residSaved says whether the residual stream's tensors are saved by the
// norm that reads them: LayerNorm saves its input; HF's RMSNorm saves
// x.to(float32), which is a copy (and the bf16 input unsaved) in bf16-pure.
func (m *simModel) residSaved(dt simDtypes) bool { return !m.rmsNorm || dt.resid == 4 }

// norm appends a norm's saved tensors, its input being the op before it.
// consumers is how many linears read the output: under autocast each casts
// the fp32 output to 16 bits itself and saves its own copy.
func (m *simModel) norm(o *opList, names []string, T uint64, dt simDtypes, ru simRules, consumers int) {
	ps := m.ref(names...)
	H := uint64(m.hidden)
	in := dt.resid
	if m.rmsNorm {
		if in != 4 {
			o.save(T * H * 4) // x.to(float32)
		}
		o.temp(T * H * 4) // x.pow(2): torch 2.x's mean saves no input (1.13 saved it)
		o.save(T * 4)     // rsqrt(var)
		if in != 4 {
			o.temp(T * H * 4) // x * rsqrt(var)
		}
		o.save(T * H * in) // normalised x (cast back), saved by weight * x
	} else {
		o.save(T * ru.stat) // mean
		o.save(T * ru.stat) // rstd
	}
	if dt.autocast {
		o.temp(T*H*dt.norm, ps...)
		for c := 0; c < consumers; c++ {
			o.save(T * H * 2)
		}
		return
	}
	o.keep(T*H*in, ps...)
}

// dropout appends a dropout of numel elements of b bytes whose input is the
// op before it: the mask is saved, the output is the next op.
func (o *opList) dropout(on bool, numel, mask uint64) {
	if on {
		o.save(numel * mask)
	}
}

// layerOps lists, in order, what one transformer layer's forward allocates,
// as Hugging Face's GPT-2 and Llama modules run it in eager mode: one step
// per op of the family's layer (model.Layer.Ops). The first op's input (the
// layer's input) is the op before the list; the last op is the layer's
// output, kept when the next norm saves it.
func (m *simModel) layerOps(l int, w model.Workload, dt simDtypes) []fwdOp {
	pf := fmt.Sprintf("h.%d.", l)
	ru := newSimRules(w, dt)
	ly := m.layer
	B, S := uint64(w.Batch), uint64(w.Seq)
	T := B * S
	H, q, kv := uint64(m.hidden), uint64(m.heads*m.headDim), uint64(m.kvHeads*m.headDim)
	h := uint64(m.heads)
	P := B * h * S * S // attention matrix elements
	dropout := w.Dropout > 0
	selective := w.Checkpointing == model.SelectiveCheckpointing
	a := ru.a
	o := &opList{}
	// What the ops leave for the ones after them: the bytes per element of
	// q and k after rotary (rotated), the size of k as attention reads it
	// (kSaved) and whether GQA repeats k and v (repeat).
	rotated, kSaved := a, kv
	repeat := ly.RepeatKV && kv != q
	norms := 0
	for _, op := range ly.Ops {
		switch op {
		case model.OpNorm:
			norms++
			ln := fmt.Sprintf("%sln_%d.", pf, norms)
			if _, ok := m.index[ln+"weight"]; !ok {
				continue // one norm per layer (parallel blocks)
			}
			consumers := 1 // linears reading the output: each keeps its own autocast copy
			switch {
			case norms == 1 && ly.SplitQKV:
				consumers = 3
			case norms == 2 && m.moe != nil:
				consumers = m.normConsumers()
			case norms == 2 && m.gated:
				consumers = 2
			}
			m.norm(o, []string{ln + "weight", ln + "bias"}, T, dt, ru, consumers)
		case model.OpQKV:
			if !ly.SplitQKV {
				m.castCache(o, dt, pf+"c_attn.weight")
				// the fused QKV output: q, k, v are views of it, saved as such by
				// SDPA or by the selective checkpoint around the attention core
				o.keepIf(selective || ru.flash, T*(q+2*kv)*a, m.ref(pf+"c_attn.weight", pf+"c_attn.bias")...)
				continue
			}
			m.castCache(o, dt, pf+"q_proj.weight", pf+"k_proj.weight", pf+"v_proj.weight")
			o.temp(T*q*a, m.ref(pf+"q_proj.weight", pf+"q_proj.bias")...)
			o.temp(T*kv*a, m.ref(pf+"k_proj.weight", pf+"k_proj.bias")...)
			// v_proj's output is what the attention reads unless GQA repeats it
			o.keepIf((selective || ru.flash) && !repeat, T*kv*a, m.ref(pf+"v_proj.weight", pf+"v_proj.bias")...)
		case model.OpRotary:
			// q*cos + rotate_half(q)*sin (cos and sin are saved once per
			// forward, with the embeddings). The tables have the embeddings'
			// dtype, so under autocast the rotated q and k are fp32 and SDPA
			// or the matmul saves 16-bit casts of them.
			if dt.autocast {
				rotated = 4
			}
			saveRot := selective || (ru.flash && rotated == a)
			o.temp(T * q * rotated)
			o.keepIf(saveRot, T*q*rotated) // rotated q
			o.temp(T * kv * rotated)
			o.keepIf(saveRot && !repeat, T*kv*rotated) // rotated k
			if repeat {
				kSaved = q
				o.keepIf(saveRot, T*q*rotated)         // repeat_kv copy of k
				o.keepIf(selective || ru.flash, T*q*a) // and of v
			}
		case model.OpAttention:
			if ru.flash && rotated != a {
				o.save(T * q * a)      // q cast for SDPA
				o.save(T * kSaved * a) // k likewise
			}
			if ru.flash {
				o.keep(T * q * a)     // attention output, the output projection's input
				o.save(B * h * S * 4) // logsumexp per row
				continue
			}
			// GPT-2 divides by torch.full([], sqrt(head_dim)) in the scores'
			// dtype, Llama by math.sqrt (a wrapped float64) and runs
			// softmax(dtype=float32); k and v are q-sized after a GQA repeat.
			smax, scalar, kvCore := ru.smax, a, kv
			if ly.SoftmaxFP32 {
				smax = 4
			}
			if ly.ScaleFloat64 {
				scalar = 0 // a Python float: torch 2.x saves no wrapped-number tensor
			}
			if ly.RepeatKV {
				kvCore = q
			}
			o.attnCore(T, q, kvCore, P, a, smax, scalar, dropout, ru.mask)
		case model.OpOutProj:
			proj := "c_proj"
			if ly.SplitQKV {
				proj = "o_proj"
			}
			m.castCache(o, dt, pf+proj+".weight")
			o.temp(T*H*a, m.ref(pf+proj+".weight", pf+proj+".bias")...)
		case model.OpDropout:
			o.dropout(dropout, T*H, ru.mask)
			if dropout {
				o.temp(T * H * a)
			}
		case model.OpResidual:
			o.keepIf(m.residSaved(dt), T*H*ru.r) // the residual add: the next norm's (or layer's) input
		case model.OpMLP:
			m.mlpOps(o, pf, T, dt, ru)
		case model.OpMoE:
			ep := uint64(max(1, w.EP))
			m.moeOps(o, pf, T, dt, ru, ep, moeRows(uint64(m.topK), T, uint64(m.experts), ep, w.MoEImbalance))
		}
	}
	return o.ops
}

// mlpOps appends the feed-forward block: the router and the routed
// experts, or the MLP, gated or with its activation.
func (m *simModel) mlpOps(o *opList, pf string, T uint64, dt simDtypes, ru simRules) {
	H, F, a := uint64(m.hidden), uint64(m.ffn), ru.a
	experts := []string{pf + "mlp."}
	if m.experts > 0 {
		o.keep(T*uint64(m.experts)*4, m.ref(pf+"router")...) // router logits
		o.save(T * uint64(m.experts) * 4)                    // routing weights
		experts = experts[:0]
		for e := 0; e < m.topK && e < m.experts; e++ {
			experts = append(experts, fmt.Sprintf("%sexperts.%d.", pf, e))
		}
	}
	for _, mp := range experts {
		m.castCache(o, dt, mp+"gate.weight", mp+"up.weight")
		Fe := T * F
		up := m.ref(mp+"up.weight", mp+"up.bias")
		if m.gated {
			o.keep(Fe*a, m.ref(mp+"gate.weight", mp+"gate.bias")...) // saved by the activation
			o.keep(Fe * a)                                           // act(gate), saved by the product
			o.keep(Fe*a, up...)                                      // saved by the product
			o.keep(Fe * a)                                           // act(gate) * up, down's input
		} else {
			switch m.act {
			case "", "gelu_new":
				// HF's NewGELUActivation written out:
				// 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*pow(x,3))))
				if ru.powBytes != a {
					o.temp(Fe*a, up...)
					o.save(Fe * ru.powBytes) // x cast to fp32, saved by pow
				} else {
					o.keep(Fe*a, up...) // saved by pow
				}
				// its three Python float constants: torch 2.x saves no
				// wrapped-number tensors (torch 1.13 saved 24 bytes)
				o.temp(Fe * ru.powBytes) // the polynomial
				o.save(Fe * ru.powBytes) // tanh output
				o.save(Fe * ru.powBytes) // 1 + tanh
				o.save(Fe * a)           // 0.5 * x
				if ru.powBytes != a {
					o.temp(Fe * ru.powBytes) // the product, fp32
					o.save(Fe * 2)           // cast for the down projection
				} else {
					o.keep(Fe * a) // the product, down's input
				}
			case "relu":
				o.temp(Fe*a, up...)
				o.keep(Fe * a) // relu saves its output, the down projection its input
			default:
				o.keep(Fe*a, up...) // gelu, silu: saved by the activation
				o.keep(Fe * a)      // the activation's output, down's input
			}
		}
		m.castCache(o, dt, mp+"down.weight")
		o.temp(T*H*a, m.ref(mp+"down.weight", mp+"down.bias")...)
	}
}

// simPoint is the allocator's state after one allocation or free.
type simPoint struct {
	t         int64 // ns since Start
	reserved  uint64
	allocated uint64
}

// simPlan is the whole simulated run, computed once: the allocator's
// state over time, the side-channel events and how the process ends.
// Times are nanoseconds since Start.
type simPlan struct {
	points   []simPoint
	events   []profiler.Event // T relative to Start
	ctxAt    int64            // the CUDA context exists from here
	exitAt   int64            // the process has exited from here
	exitCode int
	oom      bool
	params   int64

	peakAllocated, peakReserved uint64
}

// simPlayer executes allocations against the allocator model and records
// the timeline. Times of the points in a phase are spread evenly over the
// phase when it ends. After an out-of-memory error every call is a no-op.
type simPlayer struct {
	a          *alloc.Allocator
	plan       *simPlan
	phaseFirst int
	err        *alloc.OOMError
	errAt      int64
}

func (p *simPlayer) alloc(bytes uint64) alloc.BlockID {
	if p.err != nil {
		return 0
	}
	id, err := p.a.Malloc(bytes)
	if err != nil {
		p.err = err.(*alloc.OOMError)
		return 0
	}
	p.record()
	return id
}

func (p *simPlayer) free(id alloc.BlockID) {
	if p.err != nil || id == 0 {
		return
	}
	p.a.Free(id)
	p.record()
}

func (p *simPlayer) record() {
	p.plan.points = append(p.plan.points, simPoint{reserved: p.a.Reserved(), allocated: p.a.Allocated()})
}

// phase runs body and spreads the points it recorded over [t0, t1).
func (p *simPlayer) phase(t0, t1 int64, body func()) {
	first := len(p.plan.points)
	if p.err == nil {
		body()
	}
	pts := p.plan.points[first:]
	n := int64(len(pts))
	for i := range pts {
		pts[i].t = t0 + (t1-t0)*int64(i+1)/(n+1)
	}
	if p.err != nil && p.errAt == 0 {
		p.errAt = t1
		if n > 0 {
			p.errAt = pts[n-1].t + (t1-t0)/(n+1)
		}
	}
}

// event appends a side-channel event at time t; phase events carry the
// allocator's figures and reset its peaks, as the scenario script does.
func (p *simPlayer) event(t int64, kind, phase string, step int, stats bool) {
	e := profiler.Event{V: 1, T: t, Kind: kind, Phase: phase}
	if step >= 0 {
		s := step
		e.Step = &s
	}
	if stats {
		al, re, mal, mre := p.a.Allocated(), p.a.Reserved(), p.a.MaxAllocated(), p.a.MaxReserved()
		e.Allocated, e.Reserved, e.MaxAllocated, e.MaxReserved = &al, &re, &mal, &mre
		p.plan.peakAllocated = max(p.plan.peakAllocated, mal)
		p.plan.peakReserved = max(p.plan.peakReserved, mre)
		p.a.ResetPeak()
	}
	p.plan.events = append(p.plan.events, e)
}

// cublasWorkspace is what cuBLAS takes from the caching allocator on the
// first matmul on Hopper (PyTorch's default for sm90: 32 MiB) and keeps.
const cublasWorkspace = 32 << 20

// simTraining walks a training run step by step.
type simTraining struct {
	m     *simModel
	w     model.Workload
	dt    simDtypes
	p     *simPlayer
	cfg   Config
	grads map[int]alloc.BlockID
	ft    *simFinetune    // LoRA, weight formats, heads, optimizers of issue 15 (finetune.go)
	state []alloc.BlockID // optimizer states, allocated at the first step
	saved uint64          // activation bytes kept for backward in the last forward
}

// buildSimPlan plays the whole run through the allocator model. capacity is
// what the allocator may reserve (the GPU's total less the driver's and the
// context's share).
func buildSimPlan(cfg Config, capacity uint64) (*simPlan, error) {
	m, err := newSimModel(cfg.Arch)
	if err != nil {
		return nil, err
	}
	w := cfg.Workload
	if w.Batch <= 0 || w.Seq <= 0 {
		return nil, fmt.Errorf("sim: workload needs batch and seq above zero (got %d and %d)", w.Batch, w.Seq)
	}
	if w.ZeRO > 0 || w.DP > 1 || w.TP > 1 {
		return nil, fmt.Errorf("sim: the simulated device runs one process on one GPU; zero=%d dp=%d tp=%d are not simulated (use zero 0, dp 1, tp 1)", w.ZeRO, w.DP, w.TP)
	}
	dt, err := newSimDtypes(w.Precision)
	if err != nil {
		return nil, err
	}
	// Every value of the workload's lists is simulated; "" is the default.
	for _, e := range []struct {
		field, value string
		choices      []string
	}{
		{"optimizer", string(w.Optimizer), model.Optimizers()},
		{"attention", string(w.Attention), model.Attentions()},
		{"checkpointing", string(w.Checkpointing), model.Checkpointings()},
	} {
		if e.value != "" && !slices.Contains(e.choices, e.value) {
			return nil, fmt.Errorf("sim: %s %q is not simulated: use %s", e.field, e.value, strings.Join(e.choices, ", "))
		}
	}
	ft, err := newSimFinetune(cfg.Arch, w, m, dt)
	if err != nil {
		return nil, err
	}
	plan := &simPlan{params: m.numParams()}
	s := &simTraining{m: m, w: w, dt: dt, cfg: cfg, ft: ft, p: &simPlayer{a: alloc.NewAllocator(capacity), plan: plan}, grads: make(map[int]alloc.BlockID)}
	s.run()
	return plan, nil
}

func (s *simTraining) run() {
	p, cfg := s.p, s.cfg
	D := int64(cfg.StepDuration)
	jitter := newSimRand(cfg.Seed, 3)
	t := 2 * D // python starts and imports torch; no GPU memory yet
	p.plan.ctxAt = t
	p.event(t, "info", "", -1, false)
	p.plan.events[len(p.plan.events)-1].Data = s.info()
	p.event(t, "phase", "start", -1, true)
	var weights []alloc.BlockID
	p.phase(t, t+D, func() {
		for _, prm := range s.m.params {
			weights = append(weights, p.alloc(uint64(float64(prm.numel)*s.ft.weightBytes(prm.name, s.dt))))
		}
		s.allocAdapters()
		if s.dt.master {
			for _, prm := range s.m.params {
				weights = append(weights, p.alloc(prm.numel*4))
			}
		}
	})
	t += D
	if p.err == nil {
		p.event(t, "phase", "model_on_device", -1, true)
	}
	for k := 0; k < cfg.Steps && p.err == nil; k++ {
		d := D + int64(float64(D)*0.04*(jitter.Float64()-0.5))
		p.event(t, "phase", "step_start", k, true)
		s.step(k, t, d)
		t += d
		if p.err == nil {
			p.event(t, "phase", "step_end", k, true)
		}
	}
	if p.err != nil {
		e := profiler.Event{V: 1, T: p.errAt, Kind: "error", OOM: true, Message: "torch.OutOfMemoryError: " + p.err.Error()}
		p.plan.events = append(p.plan.events, e)
		p.plan.oom = true
		p.plan.exitCode = 1
		p.plan.exitAt = p.errAt + D/2
		p.plan.peakReserved = max(p.plan.peakReserved, p.a.MaxReserved())
		p.plan.peakAllocated = max(p.plan.peakAllocated, p.a.MaxAllocated())
		return
	}
	p.event(t+D/10, "phase", "done", -1, true)
	p.plan.exitAt = t + D/2
}

func (s *simTraining) info() map[string]any {
	w := s.w
	str := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	// Numbers are float64, as encoding/json decodes them from events.jsonl.
	return map[string]any{
		"torch":         "sim",
		"cuda":          "12.4",
		"device":        "NVIDIA H100 80GB HBM3",
		"backend":       str(string(w.Backend), "cuda"),
		"params":        float64(s.m.numParams()),
		"attention":     str(string(w.Attention), "math"),
		"precision":     str(string(w.Precision), "fp32"),
		"optimizer":     str(string(w.Optimizer), "adamw"),
		"checkpointing": str(string(w.Checkpointing), "none"),
		"batch":         float64(w.Batch),
		"seq":           float64(w.Seq),
		"steps":         float64(s.cfg.Steps),
		"warmup":        float64(s.cfg.Warmup),
		"simulated":     true,
	}
}

// step walks one training step (or one inference forward) starting at t0
// and lasting d: forward, loss, backward, optimizer step, zero_grad.
func (s *simTraining) step(k int, t0, d int64) {
	p := s.p
	T := uint64(s.w.Batch * s.w.Seq)
	var inputs []alloc.BlockID
	var layers [][]alloc.BlockID
	var head []alloc.BlockID
	var headOps []fwdOp
	p.phase(t0, t0+d*35/100, func() {
		inputs = append(inputs, p.alloc(T*8), p.alloc(T*8)) // input ids and labels, int64
		if k == 0 {
			p.alloc(cublasWorkspace) // kept for the life of the process
		}
		s.accumulate() // gradient accumulation's earlier micro-batches
		layers, headOps, head = s.forward()
	})
	if p.err != nil {
		return
	}
	if !s.w.Inference {
		sv := s.saved
		p.event(t0+d*35/100, "saved", "", k, false)
		p.plan.events[len(p.plan.events)-1].SavedBytes = &sv
		p.phase(t0+d*35/100, t0+d*80/100, func() {
			s.backward(layers, headOps, head)
			if s.ft.lora {
				s.adapterGrads()
			}
		})
		p.phase(t0+d*80/100, t0+d*95/100, func() { s.optimizerStep(k) })
	}
	p.phase(t0+d*95/100, t0+d*97/100, func() {
		for _, id := range head {
			p.free(id) // logits and loss outputs still held (inference)
		}
		s.freeGrads() // zero_grad (finetune.go)
		for _, id := range inputs {
			p.free(id)
		}
	})
}

// embeddingOps is what the embedding layer allocates and keeps: the input
// ids (saved by the embedding, already allocated), GPT-2's position ids and
// Llama's rotary cos and sin tables (saved once per forward). The last op
// is the first layer's input.
func (s *simTraining) embeddingOps() []fwdOp {
	B, S, H := uint64(s.w.Batch), uint64(s.w.Seq), uint64(s.m.hidden)
	T := B * S
	ru := newSimRules(s.w, s.dt)
	o := &opList{}
	o.ops = append(o.ops, fwdOp{bytes: T * 8, keep: true, noAlloc: true}) // input ids
	o.temp(T * H * ru.p)                                                  // token embeddings
	if s.m.learnedPos > 0 {
		o.save(S * 8)        // position ids
		o.temp(S * H * ru.p) // position embeddings
	}
	if s.m.rotary {
		hd := uint64(s.m.headDim)
		o.save(S * hd * ru.p) // cos
		o.save(S * hd * ru.p) // sin
	}
	ps := s.m.ref("wte", "wpe", "token_type", "project_in")
	if s.w.Dropout > 0 && s.m.layer.Dropout {
		o.temp(T*H*ru.p, ps...) // sum
		o.save(T * H * maskBytes(ru, ru.p))
		o.keep(T * H * ru.p) // dropped, layer 0's input
		return o.ops
	}
	o.keepIf(s.m.residSaved(s.dt), T*H*ru.p, ps...)
	return o.ops
}

// maskBytes is a dropout mask's bytes per element for an input of b bytes.
func maskBytes(ru simRules, b uint64) uint64 {
	if ru.cpu {
		return b
	}
	return 1
}

// lossOps is the final norm, the LM head and the shifted cross-entropy
// loss. The logits and the loss are held to the step's end (the training
// loop keeps them), not saved: cross entropy saves its log_softmax output
// and the targets.
func (s *simTraining) lossOps() []fwdOp {
	B, S := uint64(s.w.Batch), uint64(s.w.Seq)
	T, V := B*S, uint64(s.m.vocab)
	dt := s.dt
	ru := newSimRules(s.w, dt)
	o := &opList{}
	if ln := s.m.ref("ln_f.weight", "ln_f.bias"); len(ln) > 0 {
		s.m.norm(o, []string{"ln_f.weight", "ln_f.bias"}, T, dt, ru, 1)
	}
	if ops, ok := s.taskHeadOps(o, ru); ok { // classifier heads (finetune.go)
		return ops
	}
	head := s.m.ref("lm_head", "lm_head.bias")
	if _, untied := s.m.index["lm_head"]; !untied {
		head = append(s.m.ref("wte"), head...)
	}
	if dt.autocast && len(head) > 0 {
		o.save(s.m.params[head[0]].numel * 2)
	}
	hold := func(bytes uint64, params ...int) {
		o.ops = append(o.ops, fwdOp{bytes: bytes, hold: true, params: params})
	}
	// Llama's forward returns logits.float(); GPT-2's the matmul's dtype.
	ce := ru.a
	if s.m.layer.LogitsFP32 || dt.autocast {
		ce = 4
	}
	if s.m.layer.LogitsFP32 && ru.a != 4 {
		o.temp(T*V*ru.a, head...)
		hold(T * V * 4)
	} else {
		hold(T*V*ru.a, head...)
	}
	if s.w.Inference {
		return o.ops
	}
	n := B * (S - 1)
	if B > 1 {
		o.temp(n * V * ru.a) // shift_logits.contiguous() (a view for one sample)
	}
	if ce != ru.a {
		o.temp(n * V * ce) // autocast's fp32 copy for cross entropy
	}
	o.save(n * V * ce) // log_softmax output
	if B > 1 {
		o.save(n * 8) // targets (for one sample, ids[:, 1:] is a view of the ids)
	}
	o.scalar(ce, false)
	hold(512) // the loss
	return o.ops
}

// runOps allocates a forward op list. Kept ops get their block in the
// returned slice; a temporary is freed once the next tensor exists. Under
// no_grad (inference, or a fully checkpointed layer) nothing is kept.
func (s *simTraining) runOps(ops []fwdOp, pending *alloc.BlockID, noGrad bool) []alloc.BlockID {
	p := s.p
	ids := make([]alloc.BlockID, len(ops))
	selective := s.w.Checkpointing == model.SelectiveCheckpointing
	for i, op := range ops {
		kept := op.keep && !noGrad && !(selective && op.core)
		if op.noAlloc {
			if kept {
				s.saved += op.bytes
			}
			continue
		}
		id := p.alloc(op.bytes)
		p.free(*pending)
		*pending = 0
		switch {
		case op.hold:
			ids[i] = id
		case kept:
			ids[i] = id
			s.saved += op.bytes
		default:
			*pending = id
		}
	}
	return ids
}

// keepLast returns ops with its last op kept: the input of a checkpointed
// layer, which torch.utils.checkpoint saves.
func keepLast(ops []fwdOp) []fwdOp {
	out := append([]fwdOp(nil), ops...)
	out[len(out)-1].keep = true
	return out
}

func (s *simTraining) forward() (layers [][]alloc.BlockID, headOps []fwdOp, head []alloc.BlockID) {
	p := s.p
	s.saved = 0
	var pending alloc.BlockID
	full := s.w.Checkpointing == model.FullCheckpointing
	inf := s.w.Inference
	emb := s.embeddingOps()
	if full {
		emb = keepLast(emb)
	}
	layers = append(layers, s.runOps(emb, &pending, inf))
	for l := 0; l < s.m.layers; l++ {
		ops := s.m.layerOps(l, s.w, s.dt)
		if full && !inf {
			// torch.utils.checkpoint: the layer runs under no_grad; its
			// input is saved (the previous op, kept), and its output too
			// when it is the next checkpointed layer's input.
			s.runOps(ops[:len(ops)-1], &pending, true)
			last := ops[len(ops)-1:]
			if l < s.m.layers-1 {
				last = keepLast(last)
			}
			layers = append(layers, s.runOps(last, &pending, false))
			continue
		}
		layers = append(layers, s.runOps(ops, &pending, inf))
	}
	headOps = append(s.lossOps(), s.auxLossOps()...)
	head = s.runOps(headOps, &pending, false)
	p.free(pending)
	return layers, headOps, head
}

// backward releases what forward kept, in reverse, allocating each
// gradient as it goes and the parameters' gradients where their op is.
func (s *simTraining) backward(layers [][]alloc.BlockID, headOps []fwdOp, head []alloc.BlockID) {
	var grad alloc.BlockID
	s.backOps(headOps, head, &grad)
	full := s.w.Checkpointing == model.FullCheckpointing
	selective := s.w.Checkpointing == model.SelectiveCheckpointing
	for l := s.m.layers - 1; l >= 0; l-- {
		ops := s.m.layerOps(l, s.w, s.dt)
		ids := layers[l+1]
		if full {
			// recompute the layer with grad, keeping its output's block
			out := ids[len(ids)-1]
			var pending alloc.BlockID
			ids = s.runOps(ops[:len(ops)-1], &pending, false)
			s.p.free(pending)
			ids = append(ids, out)
		} else if selective {
			for i, op := range ops {
				if op.core && op.keep && !op.noAlloc {
					ids[i] = s.p.alloc(op.bytes)
				}
			}
		}
		s.backOps(ops, ids, &grad)
	}
	s.backOps(s.embeddingOps(), layers[0], &grad)
	s.p.free(grad)
}

func (s *simTraining) backOps(ops []fwdOp, ids []alloc.BlockID, grad *alloc.BlockID) {
	p := s.p
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if ids[i] != 0 && !op.hold {
			if op.act {
				g := p.alloc(op.bytes) // gradient w.r.t. this op's input
				p.free(*grad)
				*grad = g
			}
			p.free(ids[i])
		}
		for _, pi := range op.params {
			s.paramGrad(pi)
		}
	}
}

// paramGrad allocates a parameter's gradient at its first use in backward,
// or accumulates into it (a temporary of the same size) when it exists.
func (s *simTraining) paramGrad(i int) {
	if s.ft.frozen() {
		return // a frozen base (LoRA): no gradients
	}
	p := s.p
	n := s.m.params[i].numel
	if g, ok := s.grads[i]; ok && g != 0 {
		p.free(p.alloc(n * s.dt.param))
		return
	}
	var tmp alloc.BlockID
	if s.dt.autocast {
		tmp = p.alloc(n * 2) // the 16-bit gradient before it is cast to the fp32 parameter's dtype
	}
	s.grads[i] = p.alloc(n * s.dt.param)
	p.free(tmp)
}

// optimizerStep: states are allocated lazily at the first step; PyTorch's
// default multi-tensor (foreach) AdamW holds one parameter-sized list of
// temporaries (sqrt of exp_avg_sq) for the whole step.
func (s *simTraining) optimizerStep(k int) {
	if s.finetuneStep(k) {
		return
	}
	p := s.p
	ps := s.m.params
	switch s.w.Optimizer {
	case "", model.AdamW:
		if k == 0 {
			for _, prm := range ps {
				s.state = append(s.state, p.alloc(prm.numel*s.dt.state), p.alloc(prm.numel*s.dt.state))
			}
		}
		var tmp []alloc.BlockID
		if s.dt.master {
			for _, prm := range ps {
				tmp = append(tmp, p.alloc(prm.numel*4)) // fp32 copy of the bf16 gradient
			}
		}
		for _, prm := range ps {
			tmp = append(tmp, p.alloc(prm.numel*s.dt.state))
		}
		for _, id := range tmp {
			p.free(id)
		}
	case model.Adam8bit:
		if k == 0 {
			for _, prm := range ps {
				per := uint64(1)
				if prm.numel < 4096 {
					per = 4 // bitsandbytes keeps small tensors' states in 32 bits
				}
				s.state = append(s.state, p.alloc(prm.numel*per+prm.numel/2048*4), p.alloc(prm.numel*per+prm.numel/2048*4))
			}
		}
	case model.SGDMomentum:
		if k == 0 {
			for _, prm := range ps {
				s.state = append(s.state, p.alloc(prm.numel*s.dt.state))
			}
		}
	}
}
