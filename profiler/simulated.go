package profiler

// Simulated reports whether the replayed figures are not a real GPU's: false
// only when the result.json recorded beside the trace says a real GPU was
// measured (a trace without one counts as simulated).
func (r *Replay) Simulated() bool { return !r.measured }

// DeviceSimulated is Result.Simulated for a device: false for NVML and for
// a replay of a measured run, true otherwise.
func DeviceSimulated(d Device) bool {
	if s, ok := d.(interface{ Simulated() bool }); ok {
		return s.Simulated()
	}
	return d.Kind() != "nvml"
}
