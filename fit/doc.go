// Package fit compares what result.json files measured with what each
// analytic formula predicted, and calibrates the formulas' coefficients on
// real runs.
//
// The pipeline is Load (read result.json files, group them by GPU, driver
// and framework version, set aside failed and out-of-memory runs), Analyze
// (error statistics per formula and truth, a non-negative least-squares
// refit of each formula's terms with confidence intervals and
// cross-validated error) and (*Analysis).WriteReport (report.md, PNG and
// SVG charts, one calibration-<formula>.json per fitted formula, read back
// by analytic.LoadCalibration).
//
// Errors are relative: (predicted - measured) / measured. APE is its
// absolute value. Byte figures are uint64 bytes; charts and tables print
// binary GiB, labelled.
//
// Truths (what "measured" means):
//   - device: summary.peak_device_bytes and summary.steady_bytes, NVML's
//     absolute device used memory. It includes the CUDA context, the
//     allocator's cache and, with NVML's v1 memory query, driver-reserved
//     memory; the formula's own figure is compared with it as it is, so a
//     formula that leaves the context out shows that as error.
//   - process: summary.peak_process_bytes, and summary.steady_bytes minus
//     summary.baseline_bytes for the steady state.
//   - framework: torch.cuda max_reserved and steady_reserved, what the
//     caching allocator holds (no CUDA context).
//   - allocated: torch.cuda max_allocated and steady_allocated, what live
//     tensors hold.
package fit
