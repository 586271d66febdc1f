// Package model describes what memval predicts and simulates the memory
// of: a transformer's shape (Arch) and one step's settings (Workload), with
// the lists of their enumerations (Precisions, Optimizers, ...).
//
// An Arch comes from a Hugging Face config.json (ParseConfig, LoadConfig),
// a built-in preset (Preset) or explicit dimensions with a family's
// defaults (Normalize). What each family fixes (norms, biases, tied head,
// activation, gated MLP, positions, attention layout) and what one of its
// layers computes, in order (Layer), live in one table (family.go), which
// the parameter count here, the formulas of package analytic, the
// simulator of profiler/sim and scenarios/train.py all read. Params counts
// parameters exactly as the Hugging Face modeling code builds them; the
// seed article's parameter formula and its errata are here too
// (SeedFormula, SeedParamExample).
//
// The package knows nothing of memory formulas, so that the simulator can
// use the description without being able to reach the closed forms it is
// compared with.
package model
