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

// contextFigure is one row of the CUDA context table.
type contextFigure struct {
	lazy bool
	Figure
}

// contextTable: the device memory a process holds once CUDA and PyTorch's
// libraries are loaded, before any tensor. PyTorch sets
// CUDA_MODULE_LOADING=LAZY when the user has not since 1.13 (pull request
// 86509); CUDA makes lazy loading its default on Linux from 12.2. Neither
// published figure names the GPU, so the table has no row per
// architecture yet: `memval devices` on a real GPU and a calibration are
// where per-architecture rows should come from.
var contextTable = []contextFigure{
	{true, Figure{400_000_000, "stated", "pytorch/pytorch#109888 (ptrblck, 2023-09-23): the CUDA context \"uses around 400MB if CUDA >= 11.7 is used and lazy module loading enabled (default in PyTorch)\"",
		"device memory of a process after its first CUDA operation; GPU not stated"}},
	{false, Figure{666_632_192 - 20<<20, "measured", "pytorch/pytorch#86509 (2022-10-07): cudaMemGetInfo total-free 666,632,192 B with CUDA_MODULE_LOADING=DEFAULT (eager) vs 287,047,680 B lazy, torch 1.13 with CUDA 11.7",
		"total minus free after allocating one 6.4 MB tensor, less the 20 MiB segment that tensor takes; GPU not stated"}},
}

// CUDAContext returns the CUDA context figure memval assumes: lazy module
// loading (PyTorch's default since 1.13) unless eager.
func CUDAContext(eager bool) Figure {
	for _, f := range contextTable {
		if f.lazy == !eager {
			return f.Figure
		}
	}
	return Figure{}
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
