// Package scenarios describes training runs and runs them for real or on
// the simulated device.
//
// A Spec (YAML, LoadSpec) names a model (a preset, a config.json or
// explicit dimensions), one step's shape and settings, the formula to
// judge and its tolerance; a Grid (LoadGrid) expands axes into many specs.
// Validate runs one spec under the profiler, on a real GPU through
// scenarios/train.py (embedded in the binary; TrainJob is what it reads)
// or on the simulated H100, and writes result.json with every formula's
// prediction, its comparison with the measurements and a verdict. Sweep
// runs many specs into one folder and resumes where an earlier sweep left
// off. train.py builds its model from the family table's layer that the
// job carries, reports its phases, torch.cuda figures and the bytes
// autograd saves on a side channel, and is the CPU ground truth the
// formulas and the simulator are tested against.
package scenarios
