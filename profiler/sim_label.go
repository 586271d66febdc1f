package profiler

import "fmt"

// SimulatedWorkload describes the training process the simulated device
// plays, e.g. "gpt2 training, batch 8, seq 1024, bf16, 10 steps, seed 1, on GPU 0";
// "" when it plays none. The runner records it in Result.SimulatedWorkload:
// on the simulated device a profiled command's own memory is not measured,
// every figure is this workload's.
func (s *Sim) SimulatedWorkload() string {
	if s.plan == nil {
		return ""
	}
	a, w := s.cfg.Arch, s.cfg.Workload
	name := a.Name
	if name == "" {
		name = a.Family
	}
	prec := string(w.Precision)
	if prec == "" {
		prec = "fp32"
	}
	return fmt.Sprintf("%s training, batch %d, seq %d, %s, %d steps, seed %d, on GPU %d",
		name, w.Batch, w.Seq, prec, s.cfg.Steps, s.cfg.Seed, s.cfg.GPU)
}

// Simulated reports whether the replayed figures are not a real GPU's: false
// only when the result.json recorded beside the trace says a real GPU was
// measured (a trace without one counts as simulated).
func (r *Replay) Simulated() bool { return !r.measured }

// deviceSimulated is Result.Simulated for a device: false for NVML and for
// a replay of a measured run, true otherwise.
func deviceSimulated(d Device) bool {
	if s, ok := d.(interface{ Simulated() bool }); ok {
		return s.Simulated()
	}
	return d.Kind() != "nvml"
}
