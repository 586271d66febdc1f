// Package profiler records GPU memory over time while an external program
// runs. A Device answers memory queries: NVML on a real GPU (the only code
// that imports go-nvml, and the only code that needs cgo), the simulated
// H100 of profiler/sim, or a replayed trace (Open selects one); the
// Sampler polls it and writes trace.csv as it goes; the Runner starts the
// program, follows its process tree, forwards signals and collects the
// events the program reports on its side channel; Summarize turns a trace
// and its events into the figures result.json (profiler/schema) keeps.
package profiler
