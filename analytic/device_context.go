package analytic

import "strings"

// A Figure is one number the device-level peak adds to the allocator's
// reserve, with where it comes from.
type Figure struct {
	Bytes uint64 `json:"bytes"`
	// Kind is "measured" (someone measured it and published the number),
	// "stated" (a maintainer states it, approximately, without the
	// measurement), "derived" (computed from defaults in source code or
	// documentation) or "given" (--context).
	Kind   string `json:"kind"`
	Source string `json:"source"`
	What   string `json:"what,omitempty"` // exactly what was measured or derived
}

// contextFigure is one row of the CUDA context table: for every GPU when
// gpus is empty, else for the GPUs (names as GPUByName takes them) the
// measurement was made on.
type contextFigure struct {
	lazy bool
	gpus []string
	Figure
}

// contextTable: the device memory a process holds once CUDA and PyTorch's
// libraries are loaded, before any tensor. PyTorch sets
// CUDA_MODULE_LOADING=LAZY when the user has not since 1.13 (pull request
// 86509); CUDA makes lazy loading its default on Linux from 12.2; before
// CUDA 11.7 every module was loaded eagerly. A row measured on a named GPU
// comes first for that GPU; the two rows without a GPU are for every
// other one. `memval devices --measure-context` on a real GPU and a
// calibration are where further per-architecture rows should come from.
var contextTable = []contextFigure{
	{false, []string{"v100-16gb", "v100-32gb"}, Figure{(1343 - 2) << 20, "measured",
		"transformers docs, model_memory_anatomy.md (commit 249ef8164cfb): NVML used \"GPU memory occupied: 1343 MB\" (info.used//1024**2, so MiB) after torch.ones((1, 1)).to(\"cuda\") on a Tesla V100-SXM2 16GB, driver 460.91.03, CUDA 11.2 (no lazy loading before CUDA 11.7)",
		"NVML used after the first tensor, less the 2 MiB small-pool segment that tensor takes; torch version not stated (the page's nvidia-smi output is dated 2022-01-11)"}},
	{true, nil, Figure{400_000_000, "stated", "pytorch/pytorch#109888 (ptrblck, 2023-09-23): the CUDA context \"uses around 400MB if CUDA >= 11.7 is used and lazy module loading enabled (default in PyTorch)\"",
		"device memory of a process after its first CUDA operation; GPU not stated"}},
	{false, nil, Figure{666_632_192 - 20<<20, "measured", "pytorch/pytorch#86509 (2022-10-07): cudaMemGetInfo total-free 666,632,192 B with CUDA_MODULE_LOADING=DEFAULT (eager) vs 287,047,680 B lazy, torch 1.13 with CUDA 11.7",
		"total minus free after allocating one 6.4 MB tensor, less the 20 MiB segment that tensor takes; GPU not stated"}},
}

// CUDAContext returns the CUDA context figure memval assumes on any GPU:
// lazy module loading (PyTorch's default since 1.13) unless eager.
func CUDAContext(eager bool) Figure { return CUDAContextOn("", eager) }

// CUDAContextOn is CUDAContext on the named GPU (GPUByName's names): the
// row measured on that GPU when the table has one for the loading mode,
// else the row for every GPU.
func CUDAContextOn(gpu string, eager bool) Figure {
	if gpu != "" { // "" names no GPU: GPUByName's error would cost a list of names
		if g, err := GPUByName(gpu); err == nil {
			gpu = g.Name
		}
	}
	var any Figure
	for _, f := range contextTable {
		if f.lazy != !eager {
			continue
		}
		if len(f.gpus) == 0 {
			if any.Kind == "" {
				any = f.Figure
			}
			continue
		}
		for _, g := range f.gpus {
			if gpu != "" && strings.EqualFold(g, gpu) {
				return f.Figure
			}
		}
	}
	return any
}

// CUBLASWorkspace is the cuBLAS workspace PyTorch allocates through the
// caching allocator for the first matmul on a stream and keeps: PyTorch's
// default CUBLAS_WORKSPACE_CONFIG, ":4096:8" (8 chunks of 4096 KiB) from
// compute capability 9.0 (Hopper) and ":4096:2" before, in
// aten/src/ATen/cuda/CublasHandlePool.cpp (getChosenWorkspaceSize); cuBLAS's
// documentation (cublasSetWorkspace) recommends 32 MiB on Hopper and 4 MiB
// before. It is part of reserved (and allocated), not of the context.
func CUBLASWorkspace(gpu string) Figure {
	if hopperOrLater(gpu) {
		return Figure{32 << 20, "derived", "PyTorch CublasHandlePool.cpp default CUBLAS_WORKSPACE_CONFIG :4096:8 on sm90", "one workspace for the default stream"}
	}
	return Figure{8 << 20, "derived", "PyTorch CublasHandlePool.cpp default CUBLAS_WORKSPACE_CONFIG :4096:2 before sm90", "one workspace for the default stream"}
}

// hopperOrLater reports whether the named GPU is compute capability 9.0 or
// later; an empty name is taken as the H100 the project measures on.
func hopperOrLater(gpu string) bool {
	g := strings.ToLower(gpu)
	return g == "" || strings.HasPrefix(g, "h100") || strings.HasPrefix(g, "h200") || strings.HasPrefix(g, "gh200") || strings.HasPrefix(g, "b200") || strings.HasPrefix(g, "b100")
}

// NCCLBuffers is the device memory NCCL allocates outside PyTorch's
// allocator for one communicator when the step communicates (dp or tp
// above 1): per channel, a receive buffer per protocol for each of the two
// ring neighbours, at NCCL's defaults NCCL_BUFFSIZE = 4 MiB (Simple),
// about 4.5 MiB (LL128) and 256 KiB (LL), with 16 channels. Derived, not
// measured: real figures vary with the topology (channels) and the NCCL
// version.
func NCCLBuffers(dp, tp int) Figure {
	comms := 0
	if dp > 1 {
		comms++
	}
	if tp > 1 {
		comms++
	}
	if comms == 0 {
		return Figure{0, "derived", "no communicator: dp and tp are 1", ""}
	}
	per := uint64(16 * 2 * (4<<20 + 4608<<10 + 256<<10))
	return Figure{uint64(comms) * per, "derived", "NCCL environment defaults (NCCL_BUFFSIZE 4 MiB) x 3 protocols x 2 ring neighbours x 16 channels per communicator",
		"receive buffers of the data-parallel and tensor-parallel communicators; not measured"}
}
