// Package profiler records GPU memory over time while an external program
// runs. A Device answers memory queries (NVML on a real GPU, a simulated
// H100 driven by a simulated training process, or a replayed trace); the
// Sampler polls it and writes trace.csv as it goes; the Runner starts the
// program, follows its process tree, forwards signals and collects the
// events the program reports on its side channel; Summarize turns a trace
// and its events into the figures result.json keeps.
package profiler
