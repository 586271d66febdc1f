package analytic

import (
	"math/bits"
	"strings"
	"sync"

	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// DeviceOptions say what a device-level estimate assumes beyond the model
// and the workload.
type DeviceOptions struct {
	// Alloc is the caching allocator's configuration
	// (PYTORCH_CUDA_ALLOC_CONF, see alloc.ParseConf).
	Alloc alloc.Config
	// GPU is the GPU's name (GPUs), for the cuBLAS workspace; "" is an H100.
	GPU string
	// Context, when ContextGiven, replaces the CUDA context figure
	// (--context).
	Context      uint64
	ContextGiven bool
	// ContextFigure, when its Kind is set, is the given context with its
	// source (a context file: ParseContextOption).
	ContextFigure Figure
	// EagerLoading is CUDA_MODULE_LOADING=EAGER: the larger context.
	EagerLoading bool
	// Timeline keeps the allocator's figures after every event of the
	// played step in Device.Timeline (for --plot).
	Timeline bool
}

// Device is what the device shows for one estimate, per GPU.
//
//	allocated_peak_bytes  torch.cuda.max_memory_allocated over the step
//	reserved_peak_bytes   torch.cuda.max_memory_reserved: the allocator's segments
//	device_peak_bytes     NVML used: reserved + CUDA context + non-torch (NCCL)
//
// AllocatedPeak <= ReservedPeak <= DevicePeak. The cuBLAS workspace goes
// through the caching allocator, so it is inside both torch figures.
type Device struct {
	AllocatedPeak uint64 `json:"allocated_peak_bytes"`
	ReservedPeak  uint64 `json:"reserved_peak_bytes"`
	DevicePeak    uint64 `json:"device_peak_bytes"`
	Context       Figure `json:"cuda_context"`
	Workspace     Figure `json:"cublas_workspace"`
	NonTorch      Figure `json:"non_torch"`
	AllocConf     string `json:"alloc_conf,omitempty"`
	// Played says how reserved was found: "allocator" when the step's
	// tensors were played through the caching-allocator model, "none"
	// when the formula has no tensor timeline (reserved is then taken
	// equal to allocated).
	Played string `json:"played"`
	// Timeline, with DeviceOptions.Timeline, is the allocator after every
	// event of the played steps.
	Timeline []Point `json:"-"`
}

// Point is the allocator after one event of a played step. The event is
// a request of Bytes that returned ID, or, when Free, the free of ID: a
// timeline can be played again through another allocator.
type Point struct {
	Phase     string
	Step      int
	Allocated uint64
	Reserved  uint64
	Free      bool
	Bytes     uint64
	ID        alloc.BlockID
}

// PredictDevice is PredictInto followed by the device-level peaks (see
// Device): the breakdown formula's step is played tensor by tensor
// through the caching-allocator model (analytic/alloc); other formulas,
// which have no tensor timeline, take reserved equal to their allocated
// peak.
func PredictDevice(e *Estimate, name string, a model.Arch, w model.Workload, opts DeviceOptions) error {
	var in inputs
	if err := predictInputs(e, name, a, w, &in); err != nil {
		return err
	}
	d := &Device{}
	if e.Device != nil && cap(e.Device.Timeline) > 0 {
		d.Timeline = e.Device.Timeline[:0]
	}
	fillDevice(d, e, &in, opts)
	e.Device = d
	return nil
}

// FillDevice sets e.Device for an estimate of a and w made earlier (and
// perhaps calibrated since): the played step follows e's terms as they are.
func FillDevice(e *Estimate, a model.Arch, w model.Workload, opts DeviceOptions) error {
	var in inputs
	if err := in.prepare(a, w); err != nil {
		return err
	}
	d := &Device{}
	fillDevice(d, e, &in, opts)
	e.Device = d
	return nil
}

// DevicePeak is the peak that decides whether e fits a GPU: the device
// peak when e has one, else its peak.
func (e *Estimate) DevicePeak() uint64 {
	if e.Device != nil {
		return e.Device.DevicePeak
	}
	return e.Peak
}

// predictInputs is PredictInto, also returning the prepared inputs.
func predictInputs(e *Estimate, name string, a model.Arch, w model.Workload, in *inputs) error {
	if err := PredictInto(e, name, a, w); err != nil {
		return err
	}
	return in.prepare(a, w) // cached Arch: cheap
}

// fillDevice computes d for estimate e.
func fillDevice(d *Device, e *Estimate, in *inputs, opts DeviceOptions) {
	d.Context = CUDAContextOn(opts.GPU, opts.EagerLoading)
	if opts.ContextGiven {
		d.Context = Figure{opts.Context, "given", "--context", ""}
		if opts.ContextFigure.Kind != "" {
			d.Context = opts.ContextFigure
		}
	}
	if in.w.Backend == model.CPU {
		d.Context = Figure{0, "derived", "cpu backend", ""}
	}
	d.Workspace = CUBLASWorkspace(opts.GPU)
	d.NonTorch = NCCLBuffers(in.w.DP, in.w.TP)
	d.AllocConf = opts.Alloc.String()
	if in.w.Backend == model.CPU {
		d.Workspace = Figure{0, "derived", "cpu backend", ""}
		d.NonTorch = d.Workspace
	}
	if e.Formula == "breakdown" || e.Formula == "calibrated-breakdown" {
		p := getPlayer()
		p.play(e, in, opts, d)
		putPlayer(p)
		d.Played = "allocator"
	} else {
		var ctx uint64
		if t, ok := e.Term(contextTermName); ok {
			ctx = t.Bytes
		}
		d.AllocatedPeak = e.Peak - min(ctx, e.Peak) + d.Workspace.Bytes
		d.ReservedPeak = d.AllocatedPeak
		d.Played = "none"
	}
	d.DevicePeak = d.ReservedPeak + d.Context.Bytes + d.NonTorch.Bytes
}

const contextTermName = "cuda_context"

// player plays a step's tensors through the allocator. Players are pooled
// so that a solver's many estimates reuse their memory.
type player struct {
	a       alloc.Allocator
	d       *Device
	phase   string
	step    int
	params  []float64 // relative sizes of the parameter tensors (sum 1)
	layerP  []int     // index of each layer's first parameter tensor; len L+1
	ids     []alloc.BlockID
	acts    [][]alloc.BlockID // per layer
	grads   []alloc.BlockID
	states  []alloc.BlockID
	tmp     []alloc.BlockID
	head    []alloc.BlockID // a step's embedding and head tensors
	lossTmp []alloc.BlockID // freed before backward: the loss's copies, autocast's cache
	timed   bool
	// The step's repeated parts, found once per step from the terms.
	layer     []uint64   // a layer's saved tensors in forward
	recompute []piecesOf // tensors recomputed per layer in backward
}

// piecesOf is a term played as k tensors of each bytes.
type piecesOf struct {
	each uint64
	k    int
}

var players = sync.Pool{New: func() any { return new(player) }}

func getPlayer() *player  { return players.Get().(*player) }
func putPlayer(p *player) { p.d = nil; players.Put(p) }

func (p *player) malloc(bytes uint64) alloc.BlockID {
	id, _ := p.a.Malloc(bytes) // no capacity: never fails
	if p.timed {
		p.mark(false, bytes, id)
	}
	return id
}

func (p *player) free(id alloc.BlockID) {
	p.a.Free(id)
	if p.timed {
		p.mark(true, 0, id)
	}
}

// mallocAll appends to ids a block for each of sizes, as malloc does;
// without a timeline it calls the allocator directly, the wrapper's
// cost being noticeable in the step's longest loops.
func (p *player) mallocAll(ids []alloc.BlockID, sizes []uint64) []alloc.BlockID {
	if p.timed {
		for _, size := range sizes {
			ids = append(ids, p.malloc(size))
		}
		return ids
	}
	for _, size := range sizes {
		id, _ := p.a.Malloc(size) // no capacity: never fails
		ids = append(ids, id)
	}
	return ids
}

// mallocParams appends to ids a block of uint64(bytes*f)/div bytes for
// each fraction f of fracs, as mallocAll does.
func (p *player) mallocParams(ids []alloc.BlockID, bytes float64, fracs []float64, div uint64) []alloc.BlockID {
	if p.timed {
		for _, f := range fracs {
			ids = append(ids, p.malloc(uint64(bytes*f)/div))
		}
		return ids
	}
	if div&(div-1) == 0 { // 1, or Adam's 2: a shift, not a division per tensor
		sh := bits.TrailingZeros64(div)
		for _, f := range fracs {
			id, _ := p.a.Malloc(uint64(bytes*f) >> sh) // no capacity: never fails
			ids = append(ids, id)
		}
		return ids
	}
	for _, f := range fracs {
		id, _ := p.a.Malloc(uint64(bytes*f) / div) // no capacity: never fails
		ids = append(ids, id)
	}
	return ids
}

func (p *player) mark(free bool, bytes uint64, id alloc.BlockID) {
	p.d.Timeline = append(p.d.Timeline, Point{Phase: p.phase, Step: p.step, Allocated: p.a.Allocated(), Reserved: p.a.Reserved(),
		Free: free, Bytes: bytes, ID: id})
}

// tensorShapes fills p.params with the model's parameter tensors, layer by
// layer, as fractions of the parameter count: embeddings (and a learned
// position table), then per layer a norm weight, the attention matrices, a
// second norm weight, the router and the MLP matrices (each expert's), and
// as hidden-sized vectors whatever the count has beyond these (biases,
// extra norms), then the final norm and an untied head. Tensor parallelism
// divides every matrix alike, so fractions do not change with it.
func (p *player) tensorShapes(in *inputs) {
	p.params = p.params[:0]
	p.layerP = p.layerP[:0]
	H, E := in.H, in.embedWidth()
	q, kv := in.h*in.hd, in.kv*in.hd
	experts := float64(max(1, in.a.Experts))
	mats := 3.0
	if !in.a.GatedMLP {
		mats = 2
	}
	layer := 2*H + H*q + 2*H*kv + q*H + experts*mats*H*in.ffn + float64(in.a.Experts)*H
	pos := 0.0
	if fam, ok := model.FamilyOf(strings.ToLower(in.a.Family)); ok && in.a.MaxPositions > 0 {
		rotary := false
		for _, op := range fam.Layer.Ops {
			rotary = rotary || op == model.OpRotary
		}
		if !rotary {
			pos = float64(in.a.MaxPositions) * H
		}
	}
	headP := 0.0
	if !in.a.NoHead && !in.a.TiedHead {
		headP = in.V * E
	}
	listed := in.V*E + pos + in.L*layer + H + headP
	rest := 0.0
	if r := float64(in.n) - listed; r > 0 && in.L > 0 {
		rest = r / in.L
		listed = float64(in.n)
	}
	add := func(n float64) {
		if n > 0 {
			p.params = append(p.params, n/listed)
		}
	}
	add(in.V * E)
	add(pos)
	for l := 0; l < in.a.Layers; l++ {
		p.layerP = append(p.layerP, len(p.params))
		add(H)
		add(H * q)
		add(H * kv)
		add(H * kv)
		add(q * H)
		add(H)
		add(float64(in.a.Experts) * H)
		for x := 0; x < int(experts); x++ {
			for m := 0; m < int(mats); m++ {
				add(H * in.ffn)
			}
		}
		for r := rest; r > 0; r -= 4 * H {
			add(min(r, 4*H))
		}
	}
	p.layerP = append(p.layerP, len(p.params))
	add(H)
	add(headP)
}

// stateTerm returns the Bytes of the term named name, 0 if none.
func stateBytes(e *Estimate, name string) float64 {
	for i := range e.Terms {
		if e.Terms[i].Name == name {
			return float64(e.Terms[i].Bytes)
		}
	}
	return 0
}

// pieces is how many tensors a term's per-unit bytes are made of: the
// unit's leading factor ("2*B*S*H*L": 2) times ceil(coef/4) for terms of
// more than 4 bytes a unit (several fp32 or 16-bit tensors).
func pieces(t *Term) int {
	k := 1
	if i := strings.IndexByte(t.Unit, '*'); i > 0 {
		n := 0
		for _, c := range t.Unit[:i] {
			if c < '0' || c > '9' {
				n = 0
				break
			}
			n = n*10 + int(c-'0')
		}
		if n > 0 {
			k = n
		}
	}
	if t.Coef > 4 && k == 1 {
		k = int((t.Coef + 3.999) / 4)
	}
	return k
}

func perLayer(t *Term) bool {
	return strings.HasSuffix(t.Unit, "*L") || t.Unit == "L" || t.Name == "autocast.weight_copy"
}

// play runs setup and two steps (the allocator's cache carries over) and
// fills d's peaks.
func (p *player) play(e *Estimate, in *inputs, opts DeviceOptions, d *Device) {
	p.a.Reset(opts.Alloc, 0)
	p.d, p.timed = d, opts.Timeline
	p.tensorShapes(in)
	L := in.a.Layers
	if cap(p.acts) < L {
		p.acts = make([][]alloc.BlockID, L)
	}
	p.acts = p.acts[:L]
	zero := in.w.ZeRO
	p.phase, p.step = "load", 0
	p.ids = p.ids[:0]
	// Model states held throughout: weights per tensor (ZeRO-3: a flat
	// shard per layer), master weights (ZeRO >= 1: one flat partition).
	if w := stateBytes(e, "weights"); w > 0 {
		if zero >= 3 {
			rest := 1.0
			for l := 0; l < L; l++ {
				var f float64
				for _, x := range p.params[p.layerP[l]:p.layerP[l+1]] {
					f += x
				}
				rest -= f
				p.malloc(uint64(w * f))
			}
			p.malloc(uint64(w * max(rest, 0)))
		} else {
			for _, f := range p.params {
				p.malloc(uint64(w * f))
			}
		}
	}
	if m := stateBytes(e, "master_weights"); m > 0 {
		p.flatOrPer(m, zero >= 1, false)
	}
	p.finetuneBlocks(e, in)     // quantized weights, adapters, held gradients (device_finetune.go)
	p.commBlocks(e, "", nil)    // DDP buckets, DeepSpeed's reduce bucket (memory_parallel.go)
	p.malloc(d.Workspace.Bytes) // cuBLAS, at the first matmul
	if in.w.Inference {
		p.inference(e, in)
	} else {
		p.states = p.states[:0]
		for step := 1; step <= playedSteps; step++ {
			p.step = step
			p.train(e, in, step)
		}
	}
	d.AllocatedPeak = p.a.MaxAllocated()
	d.ReservedPeak = p.a.MaxReserved()
}

// playedSteps is how many training steps play runs.
const playedSteps = 2

// flatOrPer allocates bytes as one flat tensor or per parameter tensor,
// appending the ids to p.tmp when keep.
func (p *player) flatOrPer(bytes float64, flat, keep bool) {
	if flat {
		id := p.malloc(uint64(bytes))
		if keep {
			p.tmp = append(p.tmp, id)
		}
		return
	}
	if keep {
		p.tmp = p.mallocParams(p.tmp, bytes, p.params, 1)
		return
	}
	for _, f := range p.params {
		p.malloc(uint64(bytes * f))
	}
}

// inference plays a forward pass: every term on top of the weights, per
// layer where the term is per layer, all live at the end.
func (p *player) inference(e *Estimate, in *inputs) {
	if in.w.Generating() {
		p.generation(e, in.a.Layers) // device_generation.go
		return
	}
	p.phase, p.step = "forward", 1
	for i := range e.Terms {
		t := &e.Terms[i]
		if t.Name == "weights" || t.Name == contextTermName || t.Bytes == 0 {
			continue
		}
		n := 1
		if perLayer(t) || strings.HasPrefix(t.Unit, "L*") {
			n = in.a.Layers
		}
		k := pieces(t)
		each := t.Bytes / uint64(n*k)
		for j := 0; j < n*k; j++ {
			p.malloc(each)
		}
	}
}

// train plays one step as scenarios/train.py runs it: forward layer by
// layer (saved activations), the loss, backward layer by layer (gradients
// in, activations out, recompute under checkpointing), the optimizer step
// (states at the first step, foreach temporaries), zero_grad and del.
func (p *player) train(e *Estimate, in *inputs, step int) {
	L := in.a.Layers
	zero := in.w.ZeRO
	terms := e.Terms
	var logits, ids alloc.BlockID
	var loss, gather, comm []alloc.BlockID
	lossTmp := p.lossTmp[:0]
	defer func() { p.lossTmp = lossTmp[:0] }()
	head := p.head[:0] // the last step's, freed in its backward
	defer func() { p.head = head[:0] }()
	p.phase = "forward"
	ids = p.malloc(uint64(stateBytes(e, "input_ids")))
	for i := range terms {
		t := &terms[i]
		if t.Name == "zero3_gather_buffer" {
			gather = append(gather, p.malloc(t.Bytes))
		}
	}
	gather = p.commBlocks(e, PhaseForward, gather) // freed with the gather buffers
	// Embedding outputs first, then layer by layer.
	for i := range terms {
		t := &terms[i]
		if t.Phase == PhaseForward && !perLayer(t) && (strings.HasPrefix(t.Name, "embed") || strings.HasPrefix(t.Name, "dropout.embed") || strings.HasPrefix(t.Name, "input.")) {
			head = append(head, p.malloc(t.Bytes))
		}
	}
	// A layer's saved tensors, the same for every layer: found once.
	p.layer = p.layer[:0]
	for i := range terms {
		t := &terms[i]
		if t.Phase != PhaseForward || !perLayer(t) || t.Bytes == 0 {
			continue
		}
		k := pieces(t)
		each := t.Bytes / uint64(L*k)
		for j := 0; j < k; j++ {
			p.layer = append(p.layer, each)
		}
	}
	// autocast's cache of the checkpointed layers' weight copies: filled
	// layer by layer, freed with the loss's copies (autocastCache).
	var cache uint64
	for i := range terms {
		if t := &terms[i]; t.Name == autocastCacheName && t.Phase == PhaseLoss {
			cache = t.Bytes / uint64(L)
		}
	}
	// The largest of a layer's saved sizes stands for the transients its
	// backward makes (see the backward loop).
	var big uint64
	for _, b := range p.layer {
		big = max(big, b)
	}
	for l := 0; l < L; l++ {
		p.acts[l] = p.mallocAll(p.acts[l][:0], p.layer)
		if cache > 0 {
			lossTmp = append(lossTmp, p.malloc(cache))
		}
	}
	// The head: final norm, head input and weight copy (saved), the logits,
	// then the loss: its copies (freed before backward) and saved tensors.
	for i := range terms {
		t := &terms[i]
		if t.Phase == PhaseForward && !perLayer(t) && t.Bytes > 0 && !strings.HasPrefix(t.Name, "loss.") &&
			!strings.HasPrefix(t.Name, "embed") && !strings.HasPrefix(t.Name, "dropout.embed") && !strings.HasPrefix(t.Name, "input.") && t.Name != "zero3_gather_buffer" && t.Name != "allocator_fragmentation" && t.Group != GroupComm {
			head = append(head, p.malloc(t.Bytes))
		}
	}
	for i := range terms {
		if terms[i].Name == "logits.output" && terms[i].Phase == "" { // freed before backward: a loss-phase term
			logits = p.malloc(terms[i].Bytes)
		}
	}
	p.phase = "loss"
	for i := range terms {
		if t := &terms[i]; t.Phase == PhaseLoss && t.Bytes > 0 && t.Name != autocastCacheName {
			lossTmp = append(lossTmp, p.malloc(t.Bytes))
		}
	}
	for i := range terms {
		if t := &terms[i]; t.Phase == PhaseForward && strings.HasPrefix(t.Name, "loss.") && t.Bytes > 0 {
			loss = append(loss, p.malloc(t.Bytes))
		}
	}
	for _, id := range lossTmp {
		p.free(id)
	}
	// Backward: the loss's and logits' gradients, the head's gradient, then
	// layer by layer from the last.
	p.phase = "backward"
	var lg []alloc.BlockID
	for i := range terms {
		t := &terms[i]
		if t.Name == "logits_grad" && t.Bytes > 0 {
			lg = append(lg, p.malloc(t.Bytes/2), p.malloc(t.Bytes/2))
		}
	}
	comm = p.commBlocks(e, PhaseBackward, comm)
	gb := stateBytes(e, "gradients")
	if in.w.GradientsHeld() {
		gb = 0 // allocated once by finetuneBlocks
	}
	perTensorGrads := zero < 2 && gb > 0
	p.grads = p.grads[:0]
	if perTensorGrads && !in.a.NoHead {
		// The head's gradient first (the tied embedding's, or the head's).
		last := len(p.params) - 1
		if in.a.TiedHead {
			last = 0
		}
		p.grads = append(p.grads, p.malloc(uint64(gb*p.params[last])))
	} else if hg := stateBytes(e, "head_gradient"); hg > 0 {
		lg = append(lg, p.malloc(uint64(hg)))
	}
	for _, id := range loss {
		p.free(id)
	}
	for _, id := range lg[:min(2, len(lg))] {
		p.free(id)
	}
	for _, id := range head {
		p.free(id)
	}
	p.phase = "backward"
	// Recomputed tensors, per term: pieces allocated then freed.
	p.recompute = p.recompute[:0]
	for i := range terms {
		if t := &terms[i]; t.Phase == PhaseRecompute && t.Bytes > 0 {
			k := pieces(t)
			p.recompute = append(p.recompute, piecesOf{t.Bytes / uint64(k), k})
		}
	}
	for l := L - 1; l >= 0; l-- {
		for _, r := range p.recompute {
			p.tmp = p.tmp[:0]
			for j := 0; j < r.k; j++ {
				p.tmp = append(p.tmp, p.malloc(r.each))
			}
			for _, id := range p.tmp {
				p.free(id)
			}
		}
		if perTensorGrads {
			p.grads = p.mallocParams(p.grads, gb, p.params[p.layerP[l]:p.layerP[l+1]], 1)
		}
		// A layer's backward makes transients no one saves while its saved
		// tensors still live: eager attention's gradient of the
		// probabilities and softmax's gradient, both of the scores' size,
		// or an MLP's of its widest tensor. Two blocks of the layer's
		// largest saved size stand for them. With them the play's peaks
		// are within 1.5 % of an operator-level trace's for BERT-large,
		// GPT-2 and an eager Llama at 2048 tokens (TestPlayerAgainstOpTrace);
		// without them the Llama's reserved peak was 5 % low.
		t1 := p.malloc(big)
		t2 := p.malloc(big)
		p.free(t1)
		p.free(t2)
		p.freeBlocks(p.acts[l])
	}
	if perTensorGrads {
		for i, f := range p.params[:p.layerP[0]] {
			if i == 0 && in.a.TiedHead {
				continue
			}
			p.grads = append(p.grads, p.malloc(uint64(gb*f)))
		}
		for i, f := range p.params[p.layerP[L]:] {
			if i == len(p.params[p.layerP[L]:])-1 && !in.a.NoHead && !in.a.TiedHead {
				continue // the head's, allocated first
			}
			p.grads = append(p.grads, p.malloc(uint64(gb*f)))
		}
	} else if gb > 0 {
		p.grads = append(p.grads, p.malloc(uint64(gb))) // ZeRO >= 2: the flat gradient partition
	}
	for _, id := range lg[min(2, len(lg)):] {
		p.free(id)
	}
	for _, id := range gather {
		p.free(id)
	}
	comm = p.freeBlocks(comm)
	// Optimizer step: states at the first step, then the foreach
	// temporaries, all at once, freed at the end.
	p.phase = "optimizer"
	if step == 1 {
		if ob := stateBytes(e, "optimizer_states"); ob > 0 {
			k := 2 // Adam's exp_avg and exp_avg_sq
			if in.w.Optimizer != model.AdamW {
				k = 1
			}
			for j := 0; j < k; j++ {
				if zero >= 1 {
					p.states = append(p.states, p.malloc(uint64(ob)/uint64(k)))
					continue
				}
				p.states = p.mallocParams(p.states, ob, p.params, uint64(k))
			}
		}
	}
	p.tmp = p.tmp[:0]
	if tb := stateBytes(e, "optimizer_step_temporaries"); tb > 0 {
		p.flatOrPer(tb, zero >= 1, true)
	}
	comm = p.commBlocks(e, PhaseOptimizer, comm)
	if step == playedSteps && !p.timed {
		// Nothing is allocated after the last step's frees, and a free
		// raises neither peak: without a timeline they change nothing.
		return
	}
	p.freeBlocks(p.tmp)
	p.freeBlocks(comm)
	// zero_grad(set_to_none=True); del loss, logits; the next batch.
	p.phase = "zero_grad"
	p.freeBlocks(p.grads)
	p.free(logits)
	p.free(ids)
}
