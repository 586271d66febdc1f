// Package estimate is the core of `memval estimate`: given a model and a
// workload it predicts, per GPU, the memory of one training (or inference)
// step with one of analytic's formulas or all of them, says whether the
// peak fits a GPU or a memory budget and by how much, finds the largest
// batch or sequence that fits, and applies a calibration written by
// `memval fit`.
//
// Data flows down once: the command turns its flags into a Request, Run
// returns a Report, and a printer writes it (Report is also the command's
// --json output, schema 1). Run reads no flags and prints nothing; the only
// I/O is reading the calibration file a Request names.
//
// A Request mirrors the command's options one to one, and errors that are
// the input's fault (*InputError) name the option as the command spells it
// (--formula, --budget, --dp, ...), so that the command can print them
// unchanged.
package estimate
