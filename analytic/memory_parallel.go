package analytic

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// GroupComm is the group of communication buffers: DDP's gradient
// buckets, FSDP's reduce-scatter buffers, DeepSpeed's reduce and
// all-gather buckets.
const GroupComm Group = "communication"

// Host is what an estimate puts in host (CPU) memory with offloading, per
// rank: the terms moved off the GPU and those the CPU optimizer adds.
type Host struct {
	Terms []Term `json:"terms"`
	Bytes uint64 `json:"bytes"`
}

// Sizes of the engines' buffers, from the engines' documented defaults
// (derived: what the buffer must hold at that default, not measured).
const (
	// ddpBucketCapBytes is DistributedDataParallel's bucket_cap_mb
	// default, 25 MiB (torch.nn.parallel.DistributedDataParallel docs);
	// the first bucket is 1 MiB (torch.distributed
	// _DEFAULT_FIRST_BUCKET_BYTES).
	ddpBucketCapBytes   = 25 * MiB
	ddpFirstBucketBytes = 1 * MiB
	// dsBucketElems is DeepSpeed's zero_optimization reduce_bucket_size
	// and allgather_bucket_size default, 5e8 elements (DeepSpeed
	// configuration docs); dsPrefetchElems its stage3_prefetch_bucket_size
	// default, 5e7 elements.
	dsBucketElems   = 5e8
	dsPrefetchElems = 5e7
)

// parallel is what a pipeline stage, context parallelism, offload and an
// engine change in an estimate (Workload.Distributed). The zero value is
// "none of them".
type parallel struct {
	active      bool
	p, v, stage int     // pipeline stages, chunks per rank, the stage estimated
	cp          int     // context-parallel degree
	inflight    int     // micro-batches (v > 1: chunk micro-batches) whose activations the stage holds at its peak
	layerFrac   float64 // saved per-layer activations relative to one micro-batch through all L layers
	embedFrac   float64 // embedding activations: micro-batches in flight at the first stage, 0 elsewhere
	head        bool    // the stage holds the head (the last stage)
	paramFrac   float64 // the stage's share of the parameters
	stageLayers int     // transformer layers on the stage
}

// prepareParallel fills in.par from the workload and checks it against the
// model. Context parallelism splits the sequence: in.S and in.w.Seq become
// S/cp, and ZeRO shards over dp*cp ranks (Megatron's distributed optimizer
// and torchtitan's FSDP mesh both fold the cp ranks into the sharding
// group).
func (in *inputs) prepareParallel() error {
	w := &in.w
	if !w.Distributed() {
		return nil
	}
	par := parallel{active: true, p: w.PPDegree(), v: w.PPChunks(), stage: w.PPStage, cp: w.CPDegree(),
		inflight: 1, layerFrac: 1, embedFrac: 1, head: true, paramFrac: 1, stageLayers: in.a.Layers}
	if par.cp > 1 {
		if w.Attention != model.FlashAttention {
			return &model.FieldError{Field: "cp", Value: par.cp, Reason: "needs flash attention (ring attention runs on the flash/SDPA kernels); give attention flash"}
		}
		if w.Seq%par.cp != 0 {
			return &model.FieldError{Field: "cp", Value: par.cp, Reason: fmt.Sprintf("does not divide seq %d; choose a divisor of the sequence length", w.Seq)}
		}
		w.Seq /= par.cp
		in.S = float64(w.Seq)
		in.dp *= float64(par.cp)
	}
	if par.p > 1 {
		chunks := par.p * par.v
		if in.a.Layers%chunks != 0 {
			return &model.FieldError{Field: "pp", Value: par.p, Reason: fmt.Sprintf("times pp_interleave %d = %d chunks do not split the %d layers evenly; choose degrees whose product divides %d", par.v, chunks, in.a.Layers, in.a.Layers)}
		}
		par.stageLayers = in.a.Layers / par.p
		m := w.Microbatches
		if m == 0 {
			m = math.MaxInt32 // enough to fill the pipeline
		}
		s := par.stage
		if par.v == 1 {
			par.inflight = min(par.p-s, m)
			par.layerFrac = float64(par.inflight) / float64(par.p)
			par.embedFrac = float64(min(par.p, m))
		} else {
			par.inflight = min(2*(par.p-s-1)+(par.v-1)*par.p+1, m*par.v)
			par.layerFrac = float64(par.inflight) / float64(par.p*par.v)
			par.embedFrac = float64(min(2*par.p-1, m))
		}
		if s != 0 {
			par.embedFrac = 0
		}
		par.head = s == par.p-1
		par.paramFrac = in.stageParams(s, par.p) / float64(in.n)
	}
	in.par = par
	return nil
}

// stageParams is the parameter count of pipeline stage s of p: its L/p
// layers, the embeddings on the first stage, the final norm and the head
// on the last, which with tied embeddings holds its own copy of the
// embedding matrix (Megatron-LM keeps one on each end and all-reduces
// their gradients).
func (in *inputs) stageParams(s, p int) float64 {
	n := float64(in.n)
	layer := in.layerParams()
	rest := max(n-in.L*layer, 0)
	embed := in.V*in.embedWidth() + float64(in.a.MaxPositions+in.a.PositionOffset+in.a.TokenTypes)*in.H
	embed = min(embed, rest)
	x := in.L / float64(p) * layer
	if s == 0 {
		x += embed
	}
	if s == p-1 {
		x += rest - embed
		if in.a.TiedHead && !in.a.NoHead {
			x += in.V * in.embedWidth()
		}
	}
	return x
}

// stateParamsFrac is the share of the parameters whose states this rank
// holds (1 without a pipeline).
func (in *inputs) stateParamsFrac() float64 {
	if !in.par.active {
		return 1
	}
	return in.par.paramFrac
}

// isEmbedTerm reports whether t is an activation of the embeddings (the
// first stage's).
func isEmbedTerm(t *Term) bool {
	return strings.HasPrefix(t.Name, "embed") || strings.HasPrefix(t.Name, "dropout.embed") || strings.HasPrefix(t.Name, "input.")
}

// isHeadTerm reports whether t belongs to the head, the loss or the
// logits (the last stage's).
func isHeadTerm(t *Term) bool {
	if t.Name == "head_gradient" || t.Group == GroupLogits {
		return true
	}
	for _, p := range []string{"lnf.", "head.", "autocast.head", "loss.", "logits"} {
		if strings.HasPrefix(t.Name, p) {
			return true
		}
	}
	return false
}

// parallelTerms applies in.par to a breakdown made as for one GPU running
// the whole model on S/cp tokens (its model states already scaled to the
// stage's parameters by modelStateTerms), with the states' coefficients c:
//
//	pipeline (1F1B, Narayanan et al. 2021; warm-up counts of Megatron-LM's
//	schedules): stage s of p holds the saved activations of its L/p layers
//	for min(p-s, m) micro-batches; interleaved with v chunks per rank, of
//	min(2(p-s-1) + (v-1)p + 1, m*v) chunk micro-batches of L/(pv) layers
//	each, which for the first stage is Korthikanti et al.'s
//	L(1 + (p-1)/(pv)) layers' worth. The embeddings' activations live on
//	the first stage only (min(p, m) micro-batches; 2p-1 interleaved), the
//	head's, the loss's and the logits' on the last only (one micro-batch).
//	The recompute of one layer under checkpointing is unchanged.
//	offload optimizer: master weights, optimizer states and the step's
//	temporaries move to the host, which also keeps an fp32 copy of the
//	gradient shard for the CPU optimizer (DeepSpeed ZeRO-Offload,
//	FSDP CPUOffload).
//	offload params (ZeRO-3): also the weight and gradient shards; the GPU
//	keeps the gathered units and the reduce-scatter buffer.
//	engine buffers: see engineTerms.
//
// Steady and Peak are left for Recompute (in.totalled is cleared).
func (in *inputs) parallelTerms(e *Estimate, c stateCoefs) {
	par := &in.par
	in.totalled = false
	if par.p > 1 {
		for i := range e.Terms {
			t := &e.Terms[i]
			switch {
			case t.Group != GroupActivations && t.Group != GroupLogits && t.Name != "head_gradient":
			case t.Phase == PhaseRecompute:
			case perLayer(t):
				t.Feature *= par.layerFrac
			case isEmbedTerm(t):
				t.Feature *= par.embedFrac
			case isHeadTerm(t):
				if !par.head {
					t.Feature = 0
				}
			}
		}
		e.Terms = slices.DeleteFunc(e.Terms, func(t Term) bool { return t.Feature == 0 && t.Coef != 0 })
	}
	if in.w.Offload != model.NoOffload {
		var host []Term
		moved := map[string]bool{"master_weights": true, "optimizer_states": true, "optimizer_step_temporaries": true}
		if in.w.Offload == model.OffloadParams {
			moved["weights"], moved["gradients"] = true, true
		}
		var opParams float64
		e.Terms = slices.DeleteFunc(e.Terms, func(t Term) bool {
			if t.Name == "optimizer_states" {
				opParams = t.Feature
			}
			if moved[t.Name] {
				t.Phase, t.Peak = "", false
				host = append(host, t)
			}
			return moved[t.Name]
		})
		if c.grad != 4 {
			host = append(host, Term{Name: "host_fp32_gradients", Group: GroupGradients, Feature: opParams, Unit: "params", Coef: 4,
				Note: "fp32 copy of the gradient shard the CPU optimizer steps with"})
		}
		h := &Host{Terms: host}
		if e.Host != nil { // offloaded activations (checkpoint_offload.go)
			h.Terms = append(e.Host.Terms, host...)
		}
		for i := range h.Terms {
			h.Terms[i].Bytes = checkedCeil(h.Terms[i].Feature * h.Terms[i].Coef)
			h.Bytes += h.Terms[i].Bytes
		}
		e.Host = h
	}
	in.engineTerms(e, c)
	e.Notes = append(e.Notes[:len(e.Notes):len(e.Notes)], in.parallelNote())
}

// engineTerms adds the communication buffers of in.w.Engine, per rank, with
// Feature in parameters (or elements) and Coef the bytes of each:
//
//	ddp        ddp_gradient_buckets, whole step: one copy of every
//	           gradient in 25 MiB buckets (bucket_cap_mb), which DDP
//	           allocates at construction unless gradient_as_bucket_view
//	           (BucketView); "the saved memory size will be equal to the
//	           total gradients size" (DDP docs on gradient_as_bucket_view).
//	fsdp,      fsdp_reduce_scatter_buffer, backward: one unit's unsharded
//	fsdp2      gradients (the unit's gradients before they are
//	           reduce-scattered into the shard); with zero 2
//	           (SHARD_GRAD_OP, reshard_after_forward=False)
//	           fsdp_unsharded_params: every unit's full weights stay
//	           gathered from forward to the end of backward. ZeRO-3's
//	           gather of two units (computed and prefetched) is
//	           modelStateTerms's zero3_gather_buffer.
//	deepspeed  ds_reduce_bucket, whole step: reduce_bucket_size (5e8)
//	           elements of gradients (contiguous_gradients' buffer),
//	           capped at the rank's parameters; zero 1-2
//	           ds_allgather_bucket, optimizer step: allgather_bucket_size
//	           (5e8) elements of weights to gather the updated partitions;
//	           zero 3 ds_prefetch_bucket, forward: stage3_prefetch_bucket_size
//	           (5e7) elements of weights.
//
// All derived from the engines' documented defaults, none measured here.
func (in *inputs) engineTerms(e *Estimate, c stateCoefs) {
	ntp := in.tpParams() * in.stateParamsFrac()
	unit := max(in.layerParams(), in.largestModuleParams()) / in.t
	switch in.w.Engine {
	case model.DDP:
		if in.w.BucketView || in.dp <= 1 {
			return
		}
		e.add("ddp_gradient_buckets", GroupComm, ntp, "params", c.grad).Note =
			"gradient copies in 25 MiB buckets (bucket_cap_mb), allocated at construction; gradient_as_bucket_view=True avoids them"
	case model.FSDP, model.FSDP2:
		if _, _, ok := in.fsdpMP(); ok {
			in.fsdpMPEngineTerms(e) // memory_fsdp_mp.go
			return
		}
		if in.dp <= 1 {
			return
		}
		e.addPeak("fsdp_reduce_scatter_buffer", GroupComm, unit, "params", c.grad, PhaseBackward).Note =
			"one unit's unsharded gradients before the reduce-scatter"
		if in.w.ZeRO == 2 {
			e.addPeak("fsdp_unsharded_params", GroupComm, ntp-ntp/in.dp, "params", c.weight, PhaseForward).Note =
				"SHARD_GRAD_OP: weights stay gathered from forward to the end of backward"
		}
	case model.DeepSpeed:
		gradBytes := c.grad
		if c.master > 0 || c.weight == 2 {
			gradBytes = 2
		}
		e.add("ds_reduce_bucket", GroupComm, min(dsBucketElems, ntp), "elements", gradBytes).Note =
			"reduce_bucket_size default 5e8 elements (contiguous_gradients)"
		if in.w.ZeRO < 3 {
			e.addPeak("ds_allgather_bucket", GroupComm, min(dsBucketElems, ntp), "elements", c.weight, PhaseOptimizer).Note =
				"allgather_bucket_size default 5e8 elements: the updated partitions gathered after the step"
		} else {
			e.addPeak("ds_prefetch_bucket", GroupComm, min(dsPrefetchElems, ntp), "elements", c.weight, PhaseForward).Note =
				"stage3_prefetch_bucket_size default 5e7 elements of prefetched weights"
		}
	}
}

// parallelNote says what in.par assumed, for the estimate's notes.
func (in *inputs) parallelNote() string {
	par := &in.par
	var parts []string
	if par.p > 1 {
		sched := "1F1B"
		if par.v > 1 {
			sched = fmt.Sprintf("interleaved 1F1B, %d chunks per rank", par.v)
		}
		what := "micro-batches"
		if par.v > 1 {
			what = "chunk micro-batches"
		}
		parts = append(parts, fmt.Sprintf("pipeline stage %d of %d (%s): %d layers, %s in flight: %d, %.1f%% of the parameters",
			par.stage, par.p, sched, par.stageLayers, what, par.inflight, 100*par.paramFrac))
	}
	if par.cp > 1 {
		parts = append(parts, fmt.Sprintf("context parallel %d: %d tokens per rank, ZeRO shards over dp*cp", par.cp, in.w.Seq))
	}
	if in.w.Offload != model.NoOffload {
		parts = append(parts, fmt.Sprintf("offload %s: the moved states are in host memory (Host), per rank", in.w.Offload))
	}
	if in.w.Engine != model.NoEngine {
		parts = append(parts, fmt.Sprintf("engine %s: its communication buffers at their default sizes", in.w.Engine))
		if in.w.FSDPMixed != "" {
			mp := "FSDP MixedPrecision " + in.w.FSDPMixed + ": fp32 shards of weights, gradients and optimizer states, param_dtype copies of the gathered units only (shards, states, gathered copies and activations measured on the CPU against FSDP2; the peaks derived, not measured)"
			if in.w.Precision == model.BF16Pure {
				mp += "; the bf16-loaded model upcast to fp32 as accelerate does"
			}
			parts = append(parts, mp)
		}
	}
	return strings.Join(parts, "; ")
}

// commBlocks allocates, in the played step, the communication buffers of
// phase (GroupComm terms; "" at load: DDP's buckets one bucket_cap_mb
// tensor each, the first 1 MiB) and appends their ids to ids.
func (p *player) commBlocks(e *Estimate, phase string, ids []alloc.BlockID) []alloc.BlockID {
	for i := range e.Terms {
		t := &e.Terms[i]
		if t.Group != GroupComm || t.Phase != phase || t.Bytes == 0 {
			continue
		}
		if t.Name != "ddp_gradient_buckets" {
			ids = append(ids, p.malloc(t.Bytes))
			continue
		}
		left, bucket := t.Bytes, uint64(ddpFirstBucketBytes)
		for left > 0 {
			b := min(left, bucket)
			ids = append(ids, p.malloc(b))
			left -= b
			bucket = ddpBucketCapBytes
		}
	}
	return ids
}

// freeBlocks frees ids and returns ids[:0]; without a timeline it calls
// the allocator directly (mallocAll).
func (p *player) freeBlocks(ids []alloc.BlockID) []alloc.BlockID {
	if !p.timed {
		for _, id := range ids {
			p.a.Free(id)
		}
		return ids[:0]
	}
	for _, id := range ids {
		p.free(id)
	}
	return ids[:0]
}
