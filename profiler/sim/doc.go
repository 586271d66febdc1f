// Package sim is the simulated H100 node: go-nvml's mock DGX H100 server
// (plain Go in a build without cgo) whose memory and process queries are
// answered by a simulated training process. The process walks a training
// step tensor by tensor, as PyTorch and the Hugging Face modeling code run
// it (the family table's layer ops, see analytic/model), through the model
// of PyTorch's caching allocator in analytic/alloc, and adds a CUDA context.
// The estimate plays its step through the same allocator model, so where
// the two agree on reserved memory that proves nothing about the
// allocator: only real GPUs can.
//
// It imports the model description (analytic/model), the allocator model
// (analytic/alloc, which imports nothing of memval) and profiler's device
// types only, never the formulas of package analytic: the compiler keeps
// its figures independent of the closed forms it is compared with (and a
// test says so by name, TestSimImportsNoFormulas). It is deterministic for
// a seed and runs faster than real time. Opener hands it to profiler.Open
// as the "sim" device.
package sim
