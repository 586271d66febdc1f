// Package analytic counts the parameters of transformer models and predicts
// the GPU memory a training or inference run needs, with several named
// formulas ("seed", "breakdown", "korthikanti") that can be compared with
// real measurements.
//
// Everything here is a pure function of an Arch (the model's shape) and a
// Workload (batch, sequence, precision, optimizer, parallelism). The only
// I/O is reading a Hugging Face config.json. Sizes are in bytes (uint64) or
// parameters (int64); a float appears only where a formula is fractional
// (int4 weights, 1/DP shares) and is rounded up to whole bytes at the end.
package analytic
