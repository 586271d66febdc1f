package fit

import (
	"fmt"
	"strings"
)

// Truth names what a prediction is compared with (see the package
// documentation for each).
type Truth string

const (
	TruthDevice    Truth = "device"
	TruthProcess   Truth = "process"
	TruthFramework Truth = "framework"
	TruthAllocated Truth = "allocated"
)

// Truths lists the truths in the order of the package documentation.
func Truths() []Truth {
	return []Truth{TruthDevice, TruthProcess, TruthFramework, TruthAllocated}
}

// ParseTruth checks a truth's name; "" means device.
func ParseTruth(s string) (Truth, error) {
	if s == "" {
		return TruthDevice, nil
	}
	for _, t := range Truths() {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, 0, 4)
	for _, t := range Truths() {
		names = append(names, string(t))
	}
	return "", fmt.Errorf("truth %q: want one of %s", s, strings.Join(names, ", "))
}

// Quantity is the figure compared: the steady state between steps or the
// peak of a step.
type Quantity string

const (
	Peak   Quantity = "peak"
	Steady Quantity = "steady"
)

// Measured returns the run's measured bytes for q under truth t, or 0 and
// the JSON field that is missing.
func (r Run) Measured(t Truth, q Quantity) (uint64, string) {
	s := r.Result.Summary
	fw := r.Result.Framework
	switch t {
	case TruthDevice:
		if q == Peak {
			return s.PeakDeviceBytes, "summary.peak_device_bytes"
		}
		return s.SteadyBytes, "summary.steady_bytes"
	case TruthProcess:
		if q == Peak {
			return s.PeakProcessBytes, "summary.peak_process_bytes"
		}
		if s.SteadyBytes <= s.BaselineBytes {
			return 0, "summary.steady_bytes"
		}
		return s.SteadyBytes - s.BaselineBytes, "summary.steady_bytes"
	case TruthFramework:
		if fw == nil {
			return 0, "framework"
		}
		if q == Peak {
			return fw.MaxReserved, "framework.max_reserved"
		}
		return fw.SteadyReserved, "framework.steady_reserved"
	case TruthAllocated:
		if fw == nil {
			return 0, "framework"
		}
		if q == Peak {
			return fw.MaxAllocated, "framework.max_allocated"
		}
		return fw.SteadyAllocated, "framework.steady_allocated"
	}
	panic(fmt.Sprintf("fit: unknown truth %q", t))
}

// measuredOK returns the measured value and whether it is usable (> 0).
func (r Run) measuredOK(t Truth, q Quantity) (uint64, string, bool) {
	v, field := r.Measured(t, q)
	return v, field, v > 0
}
