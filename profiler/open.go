package profiler

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownDevice is wrapped by Open's error for a spec it does not know;
// commands report it as bad input (exit 2).
var ErrUnknownDevice = errors.New("unknown device")

// DeviceChoices is the help text of every --device flag.
const DeviceChoices = "auto, nvml, sim or replay:FILE"

// SimulatedNotice is the notice Open gives when auto falls back to the
// simulated device; commands print it to stderr and keep it in result.json.
const SimulatedNotice = "no NVIDIA driver found: using the SIMULATED H100 (--device sim); figures are not measurements"

// Open selects a device by spec:
//
//   - "auto": the NVIDIA driver through NVML when one is usable, else the
//     simulated H100 with SimulatedNotice (and why NVML failed) in notices;
//   - "nvml": the NVIDIA driver; no fallback;
//   - "sim": the simulated H100, built by newSim (profiler/sim's New with
//     the workload to simulate; profiler cannot import it, since the
//     simulator imports profiler);
//   - "replay:FILE": a recorded trace.csv played back (OpenReplay).
//
// Any other spec gives an error wrapping ErrUnknownDevice that lists the
// choices. The caller closes the device.
func Open(spec string, newSim func() (Device, error)) (Device, []string, error) {
	switch {
	case spec == "auto" || spec == "":
		d, err := OpenNVML()
		if err == nil {
			return d, nil, nil
		}
		if !errors.Is(err, ErrNoDriver) {
			return nil, nil, err
		}
		s, serr := newSim()
		if serr != nil {
			return nil, nil, serr
		}
		return s, []string{SimulatedNotice, "nvml: " + err.Error()}, nil
	case spec == "nvml":
		d, err := OpenNVML()
		if err != nil {
			return nil, nil, err
		}
		return d, nil, nil
	case spec == "sim":
		s, err := newSim()
		if err != nil {
			return nil, nil, err
		}
		return s, []string{"simulated H100 (--device sim): figures are not measurements"}, nil
	case strings.HasPrefix(spec, "replay:"):
		path := strings.TrimPrefix(spec, "replay:")
		if path == "" {
			return nil, nil, fmt.Errorf("device %q names no file: use replay:path/to/trace.csv: %w", spec, ErrUnknownDevice)
		}
		d, err := OpenReplay(path)
		if err != nil {
			return nil, nil, err
		}
		return d, []string{"replayed trace " + path + ": figures were recorded earlier"}, nil
	}
	return nil, nil, fmt.Errorf("device %q: choose %s: %w", spec, DeviceChoices, ErrUnknownDevice)
}
