// Package schema is result.json, the record one run leaves: the command,
// the device and environment, the summary of the trace, what the workload
// reported about itself, and (after validate) the scenario, every
// formula's prediction and its comparison with the measurements.
// WriteResult writes it atomically; ReadResult reads it and refuses newer
// schemas with a clear error.
//
// It imports nothing of memval's: the recorder (package profiler), the
// fitter and anyone reading results use it without the formulas;
// predictions are kept as raw JSON that analytic.DecodeEstimates reads.
package schema
