package analytic

import "testing"

// TestCUDAContextOn: a row measured on a GPU is used for that GPU (and its
// aliases) in its loading mode only; every other GPU gets the row for all.
func TestCUDAContextOn(t *testing.T) {
	v100 := CUDAContextOn("v100-16gb", true)
	if v100.Kind != "measured" || v100.Bytes != 1341<<20 {
		t.Errorf("v100 eager: %+v, want the measured 1341 MiB", v100)
	}
	if got := CUDAContextOn("V100_32GB", true); got != v100 {
		t.Errorf("v100-32gb alias: %+v, want %+v", got, v100)
	}
	for _, c := range []struct {
		gpu   string
		eager bool
	}{{"v100-16gb", false}, {"h100-80gb", true}, {"", true}, {"no-such-gpu", true}, {"a100-80gb", false}} {
		if got, want := CUDAContextOn(c.gpu, c.eager), CUDAContext(c.eager); got != want {
			t.Errorf("%q eager %v: %+v, want the row for every GPU %+v", c.gpu, c.eager, got, want)
		}
	}
	if CUDAContext(true).Bytes <= CUDAContext(false).Bytes {
		t.Errorf("eager context %d not above lazy %d", CUDAContext(true).Bytes, CUDAContext(false).Bytes)
	}
}
