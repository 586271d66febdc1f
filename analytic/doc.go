// Package analytic predicts the GPU memory a transformer training or
// inference run needs, with seven named formulas that can be compared with
// real measurements (Formulas, Predict):
//
//   - "seed": the seed article's formulas exactly as written (16N + 8BD
//     steady, L(14E + 4BSS) + 6BSV activations, +4BSV at backward), its
//     arithmetic errors named beside them;
//   - "breakdown": a per-tensor account of a PyTorch step (states by
//     precision and optimizer, the bytes autograd saves for backward,
//     logits and loss buffers, optimizer temporaries, CUDA context), with
//     phases so that the peak is the largest moment of the step;
//   - "korthikanti": Korthikanti et al. 2022, sbh(34 + 5as/h) per layer
//     with tensor and sequence parallelism and recomputation;
//   - "megatron", "deepspeed", "eleuther" and "accelerate": the published
//     cross-checks (Megatron-LM's theoretical memory, DeepSpeed's
//     model-state estimators, EleutherAI's Transformer Math 101, Hugging
//     Face accelerate's estimate-memory);
//
// and, for any of them, coefficients fitted on real runs (Calibration),
// and the largest batch or sequence that fits a budget (MaxBatch, MaxSeq).
//
// The model and the workload a formula reads are described by package
// analytic/model (architectures, config.json, presets, parameter counts,
// the family table), which knows nothing of memory. Everything here is a
// pure function of them. Sizes are in bytes (uint64) or parameters
// (int64); a float appears only where a formula is fractional (int4
// weights, 1/DP shares) and is rounded up to whole bytes at the end.
package analytic
