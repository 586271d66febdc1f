package model

import (
	"strconv"
	"strings"
)

// Workload.Torch is the PyTorch release the step runs on, MAJOR.MINOR (a
// patch is allowed and ignored); "" is torch 2.x as memval measures it
// (transformers 5.x on torch 2.11's CPU). Where what autograd saves
// differs between releases, the older behaviour is modelled from torch's
// source, derived and not measured:
//
//	before 1.11  _softmax saved its input as well as its output
//	             (_softmax_backward_data took the input for its dtype;
//	             pytorch/pytorch#49600, fixed by #65242, relanded as #66018
//	             on 2021-10-01 and first released in 1.11): eager
//	             attention keeps one more tensor of the scores' size a
//	             layer (attn.softmax_in).
//
// Other differences of older releases (torch 1.13's RMSNorm mean kept
// x^2, and gelu_new its float64 constants; before 1.11 _log_softmax also
// kept its input) are not modelled: a version selects only the rules
// above.

// TorchRelease is a parsed Workload.Torch.
type TorchRelease struct{ Major, Minor int }

// ParseTorch parses a Workload.Torch value; "" gives the zero release,
// which stands for torch 2.x as measured.
func ParseTorch(v string) (TorchRelease, error) {
	if v == "" {
		return TorchRelease{}, nil
	}
	bad := &FieldError{Field: "torch", Value: v, Reason: "want a PyTorch release as MAJOR.MINOR, e.g. 1.10 or 2.5"}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return TorchRelease{}, bad
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 999 || p != strconv.Itoa(x) {
			return TorchRelease{}, bad
		}
		n[i] = x
	}
	if n[0] < 1 || n[0] == 1 && n[1] < 8 {
		return TorchRelease{}, &FieldError{Field: "torch", Value: v, Reason: "releases before 1.8 are not modelled; give 1.8 or later"}
	}
	return TorchRelease{n[0], n[1]}, nil
}

// Before reports whether r is a release before major.minor; the zero
// release (torch 2.x as measured) is before none.
func (r TorchRelease) Before(major, minor int) bool {
	if r.Major == 0 {
		return false
	}
	return r.Major < major || r.Major == major && r.Minor < minor
}

// TorchBefore reports whether w runs on a PyTorch release before
// major.minor (false for "" and for a value ParseTorch rejects).
func (w Workload) TorchBefore(major, minor int) bool {
	r, err := ParseTorch(w.Torch)
	return err == nil && r.Before(major, minor)
}

// checkTorch checks Workload.Torch (called by WithDefaults).
func (w *Workload) checkTorch() error {
	if _, err := ParseTorch(w.Torch); err != nil {
		return err
	}
	return nil
}
