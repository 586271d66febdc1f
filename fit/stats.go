package fit

import (
	"math"
	"sort"
)

// ErrorStats summarises relative errors e_i = (predicted_i - measured_i) /
// measured_i of N runs. APE is |e_i|; MeanAPE, MedianAPE and MaxAPE are
// fractions (0.1 = 10 %), Bias is the mean signed error (negative: the
// formula predicts too little), MaxError the signed error of the run with
// the largest APE.
type ErrorStats struct {
	N         int     `json:"n"`
	MeanAPE   float64 `json:"mean_ape"`
	MedianAPE float64 `json:"median_ape"`
	MaxAPE    float64 `json:"max_ape"`
	MaxError  float64 `json:"max_error"`
	Bias      float64 `json:"bias"`
}

// Stats computes ErrorStats of relative errors. An empty slice gives N = 0
// and zeros.
func Stats(rel []float64) ErrorStats {
	s := ErrorStats{N: len(rel)}
	if len(rel) == 0 {
		return s
	}
	ape := make([]float64, len(rel))
	for i, e := range rel {
		ape[i] = math.Abs(e)
		s.MeanAPE += ape[i]
		s.Bias += e
		if ape[i] >= s.MaxAPE {
			s.MaxAPE, s.MaxError = ape[i], e
		}
	}
	s.MeanAPE /= float64(len(rel))
	s.Bias /= float64(len(rel))
	sort.Float64s(ape)
	if n := len(ape); n%2 == 1 {
		s.MedianAPE = ape[n/2]
	} else {
		s.MedianAPE = (ape[n/2-1] + ape[n/2]) / 2
	}
	return s
}

// RelError is (predicted - measured) / measured, in float64; measured must
// be > 0.
func RelError(predicted, measured float64) float64 {
	return (predicted - measured) / measured
}
