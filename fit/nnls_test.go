package fit

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestNNLSKnownSolutions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       [][]float64
		b       []float64
		want    []float64
		passive []bool
	}{
		{
			// Unconstrained solution (1, 2) is already non-negative.
			name: "interior",
			a:    [][]float64{{1, 0}, {0, 1}, {1, 1}},
			b:    []float64{1, 2, 3},
			want: []float64{1, 2}, passive: []bool{true, true},
		},
		{
			// Unconstrained least squares gives x2 = -1; with x >= 0 the
			// second constraint is active and x1 = mean-fit of b on column 1.
			name: "active constraint",
			a:    [][]float64{{1, 0}, {0, 1}},
			b:    []float64{2, -1},
			want: []float64{2, 0}, passive: []bool{true, false},
		},
		{
			// Lawson and Hanson style example: columns (1,1,1) and (1,2,3),
			// b = (3, 2, 1) falls with x; the slope is clamped to zero and
			// the intercept is the mean, 2.
			name: "clamped slope",
			a:    [][]float64{{1, 1}, {1, 2}, {1, 3}},
			b:    []float64{3, 2, 1},
			want: []float64{2, 0}, passive: []bool{true, false},
		},
		{
			name: "all negative",
			a:    [][]float64{{1, 0}, {0, 1}},
			b:    []float64{-1, -1},
			want: []float64{0, 0}, passive: []bool{false, false},
		},
		{
			// Exact fit with three unknowns.
			name: "square exact",
			a:    [][]float64{{2, 0, 1}, {0, 3, 1}, {1, 1, 4}, {1, 0, 0}},
			b:    []float64{2*1 + 0.5, 3*2 + 0.5, 1 + 2 + 4*0.5, 1},
			want: []float64{1, 2, 0.5}, passive: []bool{true, true, true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mat.NewDense(len(tc.a), len(tc.a[0]), nil)
			for i, row := range tc.a {
				a.SetRow(i, row)
			}
			got, err := NNLS(a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			for j := range tc.want {
				if math.Abs(got.X[j]-tc.want[j]) > 1e-9 {
					t.Errorf("x[%d]: got %v, want %v", j, got.X[j], tc.want[j])
				}
				if got.Passive[j] != tc.passive[j] {
					t.Errorf("passive[%d]: got %v, want %v", j, got.Passive[j], tc.passive[j])
				}
			}
		})
	}
}

// TestNNLSKKT checks the optimality conditions on a random problem: x >= 0,
// the gradient A^T(b - Ax) is zero on the passive set and <= 0 elsewhere.
func TestNNLSKKT(t *testing.T) {
	a := mat.NewDense(6, 4, []float64{
		0.9, 0.1, 0.5, 0.3,
		0.2, 0.8, 0.4, 0.7,
		0.3, 0.3, 0.9, 0.1,
		0.7, 0.5, 0.2, 0.6,
		0.1, 0.9, 0.6, 0.2,
		0.5, 0.2, 0.1, 0.9,
	})
	b := []float64{1, -0.5, 2, 0.3, -1, 0.8}
	got, err := NNLS(a, b)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewVecDense(4, got.X)
	var r, w mat.VecDense
	r.MulVec(a, x)
	r.SubVec(mat.NewVecDense(6, b), &r)
	w.MulVec(a.T(), &r)
	for j := 0; j < 4; j++ {
		if got.X[j] < 0 {
			t.Errorf("x[%d] = %v < 0", j, got.X[j])
		}
		if got.Passive[j] && math.Abs(w.AtVec(j)) > 1e-9 {
			t.Errorf("gradient on passive x[%d]: got %v, want 0", j, w.AtVec(j))
		}
		if !got.Passive[j] && w.AtVec(j) > 1e-9 {
			t.Errorf("gradient on active x[%d]: got %v, want <= 0", j, w.AtVec(j))
		}
	}
	if got.Passive[0] == got.Passive[1] && got.Passive[1] == got.Passive[2] && got.Passive[2] == got.Passive[3] {
		t.Errorf("passive set %v: want a mix of active and passive constraints for this problem", got.Passive)
	}
}

func TestNNLSRejectsNaN(t *testing.T) {
	a := mat.NewDense(2, 1, []float64{1, math.NaN()})
	if _, err := NNLS(a, []float64{1, 2}); err == nil {
		t.Fatal("got no error for NaN in A, want one")
	}
}

func BenchmarkNNLS(b *testing.B) {
	a := mat.NewDense(60, 6, nil)
	y := make([]float64, 60)
	for i := 0; i < 60; i++ {
		for j := 0; j < 6; j++ {
			a.Set(i, j, math.Sin(float64(i*7+j*3))+1.2)
		}
		y[i] = math.Cos(float64(i))
	}
	for b.Loop() {
		if _, err := NNLS(a, y); err != nil {
			b.Fatal(err)
		}
	}
}
