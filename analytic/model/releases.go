package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Workload.Torch and Workload.Bitsandbytes name the releases of PyTorch
// and bitsandbytes the step runs on, MAJOR.MINOR (a patch is allowed and
// ignored); "" is what memval measures against (torch 2.11 with
// transformers 5.x on the CPU; bitsandbytes 0.43 and later). Where what
// autograd saves differs between releases, the older behaviour is modelled
// from the library's source, derived and not measured:
//
//	torch before 1.11         _softmax saved its input as well as its
//	                          output (_softmax_backward_data took the input
//	                          for its dtype; pytorch/pytorch#49600, fixed by
//	                          #65242, relanded as #66018 on 2021-10-01 and
//	                          first released in 1.11): eager attention keeps
//	                          one more tensor of the scores' size a layer
//	                          (attn.softmax_in).
//	bitsandbytes before 0.43  MatMul4Bit.forward kept its input for backward
//	                          (ctx.tensors = (A, B) in
//	                          bitsandbytes/autograd/_functions.py, read in
//	                          the 0.41.3 and 0.42.0 wheels; 0.43.3 and
//	                          0.44.1 keep (None, B)): every 4-bit linear
//	                          layer's input is saved, as a trained layer's
//	                          is, although its weight is frozen.
//
// Other differences of older releases (torch 1.13's RMSNorm mean kept x^2,
// and gelu_new its float64 constants; before 1.11 _log_softmax also kept
// its input; bitsandbytes' 8-bit MatMul8bitLt) are not modelled: a release
// selects only the rules above.

// Release is a parsed library release; the zero Release stands for the
// releases memval measures against (Set false).
type Release struct {
	Major, Minor int
	Set          bool
}

// ParseTorch parses a Workload.Torch value.
func ParseTorch(v string) (Release, error) {
	return parseRelease("torch", "a PyTorch release", v, Release{1, 8, true}, "1.10 or 2.5")
}

// ParseBitsandbytes parses a Workload.Bitsandbytes value.
func ParseBitsandbytes(v string) (Release, error) {
	return parseRelease("bitsandbytes", "a bitsandbytes release", v, Release{0, 37, true}, "0.42 or 0.45")
}

// parseRelease parses v, a release of the library named by what, for
// field: MAJOR.MINOR or MAJOR.MINOR.PATCH, at least least.
func parseRelease(field, what, v string, least Release, eg string) (Release, error) {
	if v == "" {
		return Release{}, nil
	}
	bad := &FieldError{Field: field, Value: v, Reason: "want " + what + " as MAJOR.MINOR, e.g. " + eg}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Release{}, bad
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 999 || p != strconv.Itoa(x) {
			return Release{}, bad
		}
		n[i] = x
	}
	r := Release{n[0], n[1], true}
	if r.Before(least.Major, least.Minor) {
		return Release{}, &FieldError{Field: field, Value: v,
			Reason: fmt.Sprintf("releases before %d.%d are not modelled; give %d.%d or later", least.Major, least.Minor, least.Major, least.Minor)}
	}
	return r, nil
}

// Before reports whether r is a release before major.minor; the zero
// Release (what memval measures against) is before none.
func (r Release) Before(major, minor int) bool {
	return r.Set && (r.Major < major || r.Major == major && r.Minor < minor)
}

// TorchBefore reports whether w runs on a PyTorch release before
// major.minor (false for "" and for a value ParseTorch rejects).
func (w Workload) TorchBefore(major, minor int) bool {
	r, err := ParseTorch(w.Torch)
	return err == nil && r.Before(major, minor)
}

// BitsandbytesBefore reports whether w runs on a bitsandbytes release
// before major.minor (false for "" and for a value ParseBitsandbytes
// rejects).
func (w Workload) BitsandbytesBefore(major, minor int) bool {
	r, err := ParseBitsandbytes(w.Bitsandbytes)
	return err == nil && r.Before(major, minor)
}

// checkReleases checks Workload.Torch and Workload.Bitsandbytes (called by
// WithDefaults).
func (w *Workload) checkReleases() error {
	if _, err := ParseTorch(w.Torch); err != nil {
		return err
	}
	_, err := ParseBitsandbytes(w.Bitsandbytes)
	return err
}
