package profiler

// The simulated training process. It is derived from the model's modules as
// PyTorch (and Hugging Face's implementations) build them, independently of
// package analytic's closed forms: it reads only analytic's struct fields,
// enumerates the tensors itself and walks a training step tensor by tensor
// through the caching-allocator model. Comparing its figures with
// analytic's is therefore a test of both.

import (
	"fmt"
	"strings"

	"github.com/memval/memval/analytic"
)

// simParam is one parameter tensor.
type simParam struct {
	name  string
	numel uint64
}

// simModel is the model's shape with the family's defaults filled in by the
// simulator's own rules.
type simModel struct {
	llamaStyle bool // separate q/k/v/o projections, RMSNorm-style norms, rotary
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
	learnedPos int // rows of the position table

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

// llamaFamilies have q_proj/k_proj/v_proj/o_proj, RMSNorm and rotary
// positions; every other family is built like GPT-2 (fused or separate
// QKV with biases, LayerNorm, learned positions where the config has them).
var llamaFamilies = map[string]bool{"llama": true, "mistral": true, "mixtral": true, "qwen2": true, "gemma": true}

// newSimModel enumerates a model's parameter tensors from the architecture's
// fields, module by module.
func newSimModel(a analytic.Arch) (*simModel, error) {
	if a.Layers <= 0 || a.Hidden <= 0 || a.Heads <= 0 || a.Vocab <= 0 {
		return nil, fmt.Errorf("sim: model %q needs layers, hidden, heads and vocab above zero (got %d, %d, %d, %d)", a.Name, a.Layers, a.Hidden, a.Heads, a.Vocab)
	}
	fam := strings.ToLower(a.Family)
	m := &simModel{
		llamaStyle: llamaFamilies[fam],
		layers:     a.Layers, hidden: a.Hidden, heads: a.Heads,
		kvHeads: a.KVHeads, headDim: a.HeadDim, ffn: a.FFN, vocab: a.Vocab,
		gated: a.GatedMLP, experts: a.Experts, topK: a.ExpertsPerToken,
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
	if m.llamaStyle && !a.GatedMLP && a.Act == "" {
		m.gated = true // llama-style MLPs are gated unless the config says otherwise
	}
	if m.experts > 0 && m.topK == 0 {
		m.topK = 2
	}
	m.rmsNorm = a.Norm == analytic.RMSNorm || (a.Norm == "" && m.llamaStyle)
	if a.MaxPositions > 0 && !m.llamaStyle {
		m.learnedPos = a.MaxPositions + a.PositionOffset
	}
	H, q, kv := m.hidden, m.heads*m.headDim, m.kvHeads*m.headDim
	norm := func(prefix string) {
		m.add(prefix+".weight", H)
		if !m.rmsNorm {
			m.add(prefix+".bias", H)
		}
	}
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
		if m.llamaStyle {
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
		experts := 1
		if m.experts > 0 {
			experts = m.experts
			m.add(p+"router", H*m.experts)
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

func newSimDtypes(p analytic.Precision) (simDtypes, error) {
	switch p {
	case analytic.FP32, "":
		return simDtypes{param: 4, state: 4, act: 4, norm: 4, softmax: 4, resid: 4}, nil
	case analytic.FP16Mixed, analytic.BF16Mixed:
		return simDtypes{autocast: true, param: 4, state: 4, act: 2, norm: 4, softmax: 4, resid: 4}, nil
	case analytic.BF16Pure:
		return simDtypes{param: 2, state: 2, act: 2, norm: 2, softmax: 2, resid: 2}, nil
	case analytic.BF16Master:
		return simDtypes{param: 2, state: 4, act: 2, norm: 2, softmax: 2, resid: 2, master: true}, nil
	}
	return simDtypes{}, fmt.Errorf("sim: precision %q is not simulated: use fp32, fp16, bf16, bf16-pure or bf16-master", p)
}

// fwdOp is one tensor a forward pass allocates.
type fwdOp struct {
	bytes  uint64
	keep   bool  // saved for backward (freed when the layer's backward runs)
	core   bool  // attention core: recomputed under selective checkpointing
	act    bool  // an activation counted in the "saved" event (not a weight copy)
	params []int // parameters whose gradients this op's backward produces
}

// layerOps lists, in order, what one transformer layer's forward allocates.
// E = tokens*hidden elements; the attention matrices are batch*heads*S*S.
func (m *simModel) layerOps(l int, w analytic.Workload, dt simDtypes) []fwdOp {
	p := fmt.Sprintf("h.%d.", l)
	B, S := uint64(w.Batch), uint64(w.Seq)
	T := B * S
	H, q, kv := uint64(m.hidden), uint64(m.heads*m.headDim), uint64(m.kvHeads*m.headDim)
	F := uint64(m.ffn)
	h := uint64(m.heads)
	scores := B * h * S * S
	dropout := w.Dropout > 0
	flash := w.Attention == analytic.FlashAttention
	var ops []fwdOp
	keep := func(bytes uint64, params ...int) {
		ops = append(ops, fwdOp{bytes: bytes, keep: true, act: true, params: params})
	}
	temp := func(bytes uint64) { ops = append(ops, fwdOp{bytes: bytes, act: true}) }
	core := func(bytes uint64) { ops = append(ops, fwdOp{bytes: bytes, keep: true, core: true, act: true}) }
	// castCache: autocast keeps a 16-bit copy of each linear weight it casts.
	castCache := func(names ...string) {
		if !dt.autocast {
			return
		}
		for _, i := range m.ref(names...) {
			ops = append(ops, fwdOp{bytes: m.params[i].numel * 2, keep: true})
		}
	}
	// norm: LayerNorm keeps mean and rstd, RMSNorm (HF) its fp32 normalised
	// input and rstd; the output is kept as the next linear's input, in
	// 16 bits under autocast (the fp32 output is then a temporary).
	norm := func(name string) {
		ps := m.ref(p+name+".weight", p+name+".bias")
		if m.rmsNorm {
			temp(T * H * 4) // x.pow(2)
			keep(T * H * 4) // x * rsqrt(var)
			keep(T * 4)     // rsqrt(var)
		} else {
			keep(T * 4) // mean
			keep(T * 4) // rstd
		}
		if dt.autocast {
			temp(T * H * dt.norm)
			keep(T*H*2, ps...)
		} else {
			keep(T*H*dt.norm, ps...)
		}
	}
	drop := func(numel uint64, saveOut bool) {
		if !dropout {
			return
		}
		keep(numel) // 1-byte mask on CUDA
		if saveOut {
			keep(numel * dt.act)
		} else {
			temp(numel * dt.act)
		}
	}

	norm("ln_1")
	if m.llamaStyle {
		castCache(p+"q_proj.weight", p+"k_proj.weight", p+"v_proj.weight")
		keep(T*q*dt.act, m.ref(p+"q_proj.weight", p+"q_proj.bias")...)
		keep(T*kv*dt.act, m.ref(p+"k_proj.weight", p+"k_proj.bias")...)
		keep(T*kv*dt.act, m.ref(p+"v_proj.weight", p+"v_proj.bias")...)
		// rotary: q*cos + rotate_half(q)*sin for q and k
		temp(T * q * dt.act)
		keep(T * q * dt.act)
		temp(T * kv * dt.act)
		keep(T * kv * dt.act)
		if !flash && kv != q {
			keep(T * q * dt.act) // repeat_kv copies of k and v
			keep(T * q * dt.act)
		}
	} else {
		castCache(p + "c_attn.weight")
		keep(T*(q+2*kv)*dt.act, m.ref(p+"c_attn.weight", p+"c_attn.bias")...)
	}
	if flash {
		keep(T * q * dt.act) // attention output
		keep(B * h * S * 4)  // logsumexp per row
	} else {
		temp(scores * dt.act)     // q @ k^T
		temp(scores * dt.act)     // scaled and causally masked
		core(scores * dt.softmax) // softmax output
		if dt.autocast {
			core(scores * dt.act) // cast back for the value matmul
		}
		if dropout {
			core(scores)          // mask
			core(scores * dt.act) // dropped probabilities
		}
		temp(T * q * dt.act) // probs @ v
		keep(T * q * dt.act) // heads merged (contiguous), o_proj input
	}
	if m.llamaStyle {
		castCache(p + "o_proj.weight")
		temp(T * H * dt.act)
		keep(T*H*dt.resid, m.ref(p+"o_proj.weight", p+"o_proj.bias")...) // residual add
	} else {
		castCache(p + "c_proj.weight")
		temp(T * H * dt.act)
		drop(T*H, false)
		keep(T*H*dt.resid, m.ref(p+"c_proj.weight", p+"c_proj.bias")...) // residual add
	}
	if _, two := m.index[p+"ln_2.weight"]; two {
		norm("ln_2")
	}
	experts := []string{p + "mlp."}
	tokensPerExpert := T
	if m.experts > 0 {
		keep(T*uint64(m.experts)*4, m.ref(p+"router")...) // router logits
		keep(T * uint64(m.experts) * 4)                   // routing weights
		experts = experts[:0]
		for e := 0; e < m.topK && e < m.experts; e++ {
			experts = append(experts, fmt.Sprintf("%sexperts.%d.", p, e))
		}
	}
	for _, mp := range experts {
		castCache(mp+"gate.weight", mp+"up.weight", mp+"down.weight")
		Fe := tokensPerExpert * F
		if m.gated {
			keep(Fe*dt.act, m.ref(mp+"gate.weight", mp+"gate.bias")...)
			keep(Fe * dt.act) // act(gate)
			keep(Fe*dt.act, m.ref(mp+"up.weight", mp+"up.bias")...)
			keep(Fe * dt.act) // act(gate) * up
		} else {
			keep(Fe*dt.act, m.ref(mp+"up.weight", mp+"up.bias")...)
			keep(Fe * dt.act) // gelu output
		}
		temp(T * H * dt.act) // down projection
		ops[len(ops)-1].params = m.ref(mp+"down.weight", mp+"down.bias")
	}
	if !m.llamaStyle {
		drop(T*H, false)
	}
	keep(T * H * dt.resid) // residual add: the next layer's input
	return ops
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
	events   []Event // T relative to Start
	ctxAt    int64   // the CUDA context exists from here
	exitAt   int64   // the process has exited from here
	exitCode int
	oom      bool
	params   int64

	peakAllocated, peakReserved uint64
}

// simPlayer executes allocations against the allocator model and records
// the timeline. Times of the points in a phase are spread evenly over the
// phase when it ends. After an out-of-memory error every call is a no-op.
type simPlayer struct {
	a          *Allocator
	plan       *simPlan
	phaseFirst int
	err        *OOMError
	errAt      int64
}

func (p *simPlayer) alloc(bytes uint64) BlockID {
	if p.err != nil {
		return 0
	}
	id, err := p.a.Malloc(bytes)
	if err != nil {
		p.err = err.(*OOMError)
		return 0
	}
	p.record()
	return id
}

func (p *simPlayer) free(id BlockID) {
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
	e := Event{V: 1, T: t, Kind: kind, Phase: phase}
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
	w     analytic.Workload
	dt    simDtypes
	p     *simPlayer
	cfg   SimConfig
	grads map[int]BlockID
	state []BlockID // optimizer states, allocated at the first step
	saved uint64    // activation bytes kept for backward in the last forward
}

// buildSimPlan plays the whole run through the allocator model. capacity is
// what the allocator may reserve (the GPU's total less the driver's and the
// context's share).
func buildSimPlan(cfg SimConfig, capacity uint64) (*simPlan, error) {
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
	switch w.Optimizer {
	case "", analytic.AdamW, analytic.Adam8bit, analytic.SGD, analytic.SGDMomentum:
	default:
		return nil, fmt.Errorf("sim: optimizer %q is not simulated: use adamw, adam8bit, sgd or sgd-momentum", w.Optimizer)
	}
	switch w.Attention {
	case "", analytic.MathAttention, analytic.FlashAttention:
	default:
		return nil, fmt.Errorf("sim: attention %q is not simulated: use math or flash", w.Attention)
	}
	switch w.Checkpointing {
	case "", analytic.NoCheckpointing, analytic.FullCheckpointing, analytic.SelectiveCheckpointing:
	default:
		return nil, fmt.Errorf("sim: checkpointing %q is not simulated: use none, full or selective", w.Checkpointing)
	}
	plan := &simPlan{params: m.numParams()}
	s := &simTraining{m: m, w: w, dt: dt, cfg: cfg, p: &simPlayer{a: NewAllocator(capacity), plan: plan}, grads: make(map[int]BlockID)}
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
	var weights []BlockID
	p.phase(t, t+D, func() {
		for _, prm := range s.m.params {
			weights = append(weights, p.alloc(prm.numel*s.dt.param))
		}
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
		e := Event{V: 1, T: p.errAt, Kind: "error", OOM: true, Message: "torch.OutOfMemoryError: " + p.err.Error()}
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
		"backend":       "cuda",
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
	var inputs []BlockID
	var layers [][]BlockID
	var head []BlockID
	var headOps []fwdOp
	p.phase(t0, t0+d*35/100, func() {
		inputs = append(inputs, p.alloc(T*8), p.alloc(T*8)) // input ids and labels, int64
		if k == 0 {
			p.alloc(cublasWorkspace) // kept for the life of the process
		}
		layers, headOps, head = s.forward()
	})
	if p.err != nil {
		return
	}
	if !s.w.Inference {
		sv := s.saved
		p.event(t0+d*35/100, "saved", "", k, false)
		p.plan.events[len(p.plan.events)-1].SavedBytes = &sv
		p.phase(t0+d*35/100, t0+d*80/100, func() { s.backward(layers, headOps, head) })
		p.phase(t0+d*80/100, t0+d*95/100, func() { s.optimizerStep(k) })
	}
	p.phase(t0+d*95/100, t0+d*97/100, func() {
		for _, id := range head {
			p.free(id) // logits and loss outputs still held (inference)
		}
		for i := range s.m.params {
			if id, ok := s.grads[i]; ok {
				p.free(id) // zero_grad(set_to_none=True)
				delete(s.grads, i)
			}
		}
		for _, id := range inputs {
			p.free(id)
		}
	})
}

// embeddingOps is what the embedding layer keeps.
func (s *simTraining) embeddingOps() []fwdOp {
	T, H := uint64(s.w.Batch*s.w.Seq), uint64(s.m.hidden)
	ops := []fwdOp{{bytes: T * H * s.dt.param, act: true}} // token embeddings
	if s.m.learnedPos > 0 {
		ops = append(ops, fwdOp{bytes: T * H * s.dt.param, act: true}) // position embeddings
	}
	ops = append(ops, fwdOp{bytes: T * H * s.dt.param, keep: true, act: true, params: s.m.ref("wte", "wpe", "token_type", "project_in")})
	if s.w.Dropout > 0 && !s.m.llamaStyle {
		ops = append(ops, fwdOp{bytes: T * H, keep: true, act: true}, fwdOp{bytes: T * H * s.dt.param, keep: true, act: true})
	}
	return ops
}

// lossOps is the final norm, the LM head and the cross-entropy loss.
func (s *simTraining) lossOps() []fwdOp {
	T, H, V := uint64(s.w.Batch*s.w.Seq), uint64(s.m.hidden), uint64(s.m.vocab)
	dt := s.dt
	var ops []fwdOp
	if ln := s.m.ref("ln_f.weight", "ln_f.bias"); len(ln) > 0 {
		ops = append(ops, fwdOp{bytes: T * 4, keep: true, act: true}, fwdOp{bytes: T * 4, keep: true, act: true})
		if dt.autocast {
			ops = append(ops, fwdOp{bytes: T * H * dt.norm, act: true}, fwdOp{bytes: T * H * 2, keep: true, act: true, params: ln})
		} else {
			ops = append(ops, fwdOp{bytes: T * H * dt.norm, keep: true, act: true, params: ln})
		}
	}
	head := s.m.ref("lm_head", "lm_head.bias")
	if _, untied := s.m.index["lm_head"]; !untied {
		head = append(s.m.ref("wte"), head...)
	}
	if dt.autocast && len(head) > 0 {
		ops = append(ops, fwdOp{bytes: s.m.params[head[0]].numel * 2, keep: true})
	}
	ops = append(ops, fwdOp{bytes: T * V * dt.act, keep: true, act: true, params: head}) // logits
	if s.w.Inference {
		return ops
	}
	if dt.act < 4 {
		ops = append(ops, fwdOp{bytes: T * V * 4, keep: true, act: true}) // logits.float()
	}
	ops = append(ops, fwdOp{bytes: T * V * 4, keep: true, act: true}, fwdOp{bytes: 512, keep: true, act: true}) // log_softmax, loss
	return ops
}

// runOps allocates a forward op list. Kept ops get their block in the
// returned slice; a temporary is freed once the next tensor exists. Under
// no_grad (inference, or a fully checkpointed layer) nothing is kept.
func (s *simTraining) runOps(ops []fwdOp, pending *BlockID, noGrad bool) []BlockID {
	p := s.p
	ids := make([]BlockID, len(ops))
	selective := s.w.Checkpointing == analytic.SelectiveCheckpointing
	for i, op := range ops {
		id := p.alloc(op.bytes)
		p.free(*pending)
		*pending = 0
		if op.keep && !noGrad && !(selective && op.core) {
			ids[i] = id
			if op.act {
				s.saved += op.bytes
			}
		} else {
			*pending = id
		}
	}
	return ids
}

func (s *simTraining) forward() (layers [][]BlockID, headOps []fwdOp, head []BlockID) {
	p := s.p
	s.saved = 0
	var pending BlockID
	full := s.w.Checkpointing == analytic.FullCheckpointing
	inf := s.w.Inference
	layers = append(layers, s.runOps(s.embeddingOps(), &pending, inf))
	for l := 0; l < s.m.layers; l++ {
		ops := s.m.layerOps(l, s.w, s.dt)
		if full && !inf {
			// torch.utils.checkpoint: the layer runs under no_grad, only its
			// output (the next layer's input) is kept.
			s.runOps(ops[:len(ops)-1], &pending, true)
			layers = append(layers, s.runOps(ops[len(ops)-1:], &pending, false))
			continue
		}
		layers = append(layers, s.runOps(ops, &pending, inf))
	}
	headOps = s.lossOps()
	head = s.runOps(headOps, &pending, false)
	p.free(pending)
	return layers, headOps, head
}

// backward releases what forward kept, in reverse, allocating each
// gradient as it goes and the parameters' gradients where their op is.
func (s *simTraining) backward(layers [][]BlockID, headOps []fwdOp, head []BlockID) {
	var grad BlockID
	s.backOps(headOps, head, &grad)
	full := s.w.Checkpointing == analytic.FullCheckpointing
	selective := s.w.Checkpointing == analytic.SelectiveCheckpointing
	for l := s.m.layers - 1; l >= 0; l-- {
		ops := s.m.layerOps(l, s.w, s.dt)
		ids := layers[l+1]
		if full {
			// recompute the layer with grad, keeping its output's block
			out := ids[len(ids)-1]
			var pending BlockID
			ids = s.runOps(ops[:len(ops)-1], &pending, false)
			s.p.free(pending)
			ids = append(ids, out)
		} else if selective {
			for i, op := range ops {
				if op.core {
					ids[i] = s.p.alloc(op.bytes)
				}
			}
		}
		s.backOps(ops, ids, &grad)
	}
	s.backOps(s.embeddingOps(), layers[0], &grad)
	s.p.free(grad)
}

func (s *simTraining) backOps(ops []fwdOp, ids []BlockID, grad *BlockID) {
	p := s.p
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if ids[i] != 0 {
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
	p := s.p
	n := s.m.params[i].numel
	if g, ok := s.grads[i]; ok && g != 0 {
		p.free(p.alloc(n * s.dt.param))
		return
	}
	var tmp BlockID
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
	p := s.p
	ps := s.m.params
	switch s.w.Optimizer {
	case "", analytic.AdamW:
		if k == 0 {
			for _, prm := range ps {
				s.state = append(s.state, p.alloc(prm.numel*s.dt.state), p.alloc(prm.numel*s.dt.state))
			}
		}
		var tmp []BlockID
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
	case analytic.Adam8bit:
		if k == 0 {
			for _, prm := range ps {
				per := uint64(1)
				if prm.numel < 4096 {
					per = 4 // bitsandbytes keeps small tensors' states in 32 bits
				}
				s.state = append(s.state, p.alloc(prm.numel*per+prm.numel/2048*4), p.alloc(prm.numel*per+prm.numel/2048*4))
			}
		}
	case analytic.SGDMomentum:
		if k == 0 {
			for _, prm := range ps {
				s.state = append(s.state, p.alloc(prm.numel*s.dt.state))
			}
		}
	}
}
