package fit_test

import (
	"fmt"

	"github.com/memval/memval/fit"
)

func ExampleStats() {
	// Three runs: the formula predicted 10 % too little, 20 % too little
	// and 5 % too much.
	s := fit.Stats([]float64{-0.10, -0.20, 0.05})
	fmt.Printf("median APE %.2f, max error %+.2f, bias %+.3f\n", s.MedianAPE, s.MaxError, s.Bias)
	// Output:
	// median APE 0.10, max error -0.20, bias -0.083
}
