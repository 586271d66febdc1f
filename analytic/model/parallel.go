package model

import "fmt"

// Offload says which model states live in host memory (CPU offload).
type Offload string

const (
	NoOffload        Offload = ""          // everything on the GPU
	OffloadOptimizer Offload = "optimizer" // DeepSpeed ZeRO-Offload / offload_optimizer: master weights, optimizer states and the step on the CPU
	OffloadParams    Offload = "params"    // FSDP CPUOffload(offload_params=True) / DeepSpeed offload_param: also the weight and gradient shards (ZeRO-3 only)
)

// Engine names the framework whose communication buffers an estimate
// counts on top of the model states.
type Engine string

const (
	NoEngine  Engine = ""          // no communication buffers beyond ZeRO-3's gather of two units
	DDP       Engine = "ddp"       // torch DistributedDataParallel: gradient buckets
	FSDP      Engine = "fsdp"      // torch FSDP (flat parameters): gather and reduce-scatter buffers
	FSDP2     Engine = "fsdp2"     // torch fully_shard (per-parameter sharding): as fsdp
	DeepSpeed Engine = "deepspeed" // DeepSpeed ZeRO: reduce and all-gather buckets of its default sizes
)

// Offloads lists the Offload values a Workload accepts.
func Offloads() []string { return []string{string(OffloadOptimizer), string(OffloadParams)} }

// Engines lists the Engine values a Workload accepts.
func Engines() []string { return []string{string(DDP), string(FSDP), string(FSDP2), string(DeepSpeed)} }

// PPDegree is the number of pipeline stages (PP, 0 read as 1).
func (w *Workload) PPDegree() int { return max(w.PP, 1) }

// PPChunks is the number of model chunks per pipeline rank (PPInterleave,
// 0 read as 1).
func (w *Workload) PPChunks() int { return max(w.PPInterleave, 1) }

// CPDegree is the context-parallel degree (CP, 0 read as 1).
func (w *Workload) CPDegree() int { return max(w.CP, 1) }

// Distributed reports whether w uses any setting of parallel.go: a
// pipeline, context parallelism, offload or an engine's buffers. Only the
// breakdown formula models them.
func (w *Workload) Distributed() bool {
	return w.PP > 1 || w.PPInterleave > 1 || w.CP > 1 || w.Offload != NoOffload || w.Engine != NoEngine || w.BucketView
}

// checkParallel checks the settings of this file on their own (the model
// is checked against them where the estimate is made).
func (w *Workload) checkParallel() error {
	switch {
	case w.PP < 0 || w.PP > MaxDim:
		return &FieldError{Field: "pp", Value: w.PP, Reason: "must be a positive integer (0 means 1)"}
	case w.PPInterleave < 0 || w.PPInterleave > MaxDim:
		return &FieldError{Field: "pp_interleave", Value: w.PPInterleave, Reason: "must be a positive integer (0 means 1)"}
	case w.PPInterleave > 1 && w.PP < 2:
		return &FieldError{Field: "pp_interleave", Value: w.PPInterleave, Reason: "needs a pipeline: give pp 2 or more"}
	case w.Microbatches < 0 || w.Microbatches > MaxDim:
		return &FieldError{Field: "microbatches", Value: w.Microbatches, Reason: "must be a positive integer (0 means enough to fill the pipeline)"}
	case w.PPStage < 0 || w.PPStage >= w.PPDegree():
		return &FieldError{Field: "pp_stage", Value: w.PPStage, Reason: fmt.Sprintf("must be a stage 0..%d of the pipeline", w.PPDegree()-1)}
	case w.CP < 0 || w.CP > MaxDim:
		return &FieldError{Field: "cp", Value: w.CP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.Offload != NoOffload {
		if err := CheckEnum("offload", string(w.Offload), Offloads()); err != nil {
			return err
		}
	}
	if w.Engine != NoEngine {
		if err := CheckEnum("engine", string(w.Engine), Engines()); err != nil {
			return err
		}
	}
	switch {
	case w.Offload == OffloadParams && w.ZeRO != 3:
		return &FieldError{Field: "offload", Value: `"params"`, Reason: fmt.Sprintf("needs zero 3 (FSDP full shard or DeepSpeed ZeRO-3), not zero %d", w.ZeRO)}
	case w.Engine == DDP && w.ZeRO != 0:
		return &FieldError{Field: "engine", Value: `"ddp"`, Reason: fmt.Sprintf("DDP does not shard: use zero 0, or engine fsdp/deepspeed for zero %d", w.ZeRO)}
	case (w.Engine == FSDP || w.Engine == FSDP2) && w.ZeRO != 2 && w.ZeRO != 3:
		return &FieldError{Field: "engine", Value: fmt.Sprintf("%q", w.Engine), Reason: fmt.Sprintf("FSDP shards with zero 2 (SHARD_GRAD_OP) or 3 (FULL_SHARD), not zero %d", w.ZeRO)}
	case w.Engine == DeepSpeed && w.ZeRO == 0:
		return &FieldError{Field: "engine", Value: `"deepspeed"`, Reason: "needs a ZeRO stage 1, 2 or 3"}
	case w.BucketView && w.Engine != DDP:
		return &FieldError{Field: "bucket_view", Value: true, Reason: "is a DDP setting: give engine ddp"}
	case w.Inference && w.Distributed():
		return &FieldError{Field: "inference", Value: true, Reason: "pp, cp, offload and engine model training; drop them or --inference"}
	}
	return w.checkFSDPMixed() // fsdp_mp.go
}
