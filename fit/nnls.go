package fit

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// NNLSResult is the solution of a non-negative least-squares problem.
type NNLSResult struct {
	X          []float64 // the solution, every element >= 0
	Passive    []bool    // Passive[j]: X[j] > 0 and free (the constraint on j is not active)
	Residual   float64   // ||A x - b||_2
	Iterations int
}

// ErrNNLSNoConvergence is returned when NNLS exceeds its iteration limit.
var ErrNNLSNoConvergence = errors.New("nnls: no convergence")

// NNLS solves
//
//	minimize ||A x - b||_2  subject to  x >= 0
//
// with the active-set algorithm of Lawson and Hanson (Solving Least Squares
// Problems, 1974, chapter 23). A is m×n with any m and n; the
// unconstrained subproblems are solved through the SVD, so rank-deficient
// passive sets give the minimum-norm solution instead of failing. Units are
// those of A and b; the caller scales columns to comparable norms for
// accuracy. It panics if b's length is not m, and returns an error for
// non-finite input or when 3n iterations do not converge.
func NNLS(a mat.Matrix, b []float64) (*NNLSResult, error) {
	m, n := a.Dims()
	if len(b) != m {
		panic(fmt.Sprintf("fit: NNLS: len(b) = %d, want %d rows", len(b), m))
	}
	for i := 0; i < m; i++ {
		if math.IsNaN(b[i]) || math.IsInf(b[i], 0) {
			return nil, fmt.Errorf("nnls: b[%d] is %v", i, b[i])
		}
		for j := 0; j < n; j++ {
			if v := a.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("nnls: A[%d,%d] is %v", i, j, v)
			}
		}
	}
	bv := mat.NewVecDense(m, append([]float64(nil), b...))
	// Tolerance as in scipy's nnls: 10 * eps * ||A||_1 * max(m, n).
	tol := 10 * 2.220446049250313e-16 * mat.Norm(a, 1) * float64(max(m, n))

	x := make([]float64, n)
	passive := make([]bool, n)
	res := &NNLSResult{X: x, Passive: passive}
	w := mat.NewVecDense(n, nil)
	r := mat.NewVecDense(m, nil)
	gradient := func() {
		r.MulVec(a, mat.NewVecDense(n, x))
		r.SubVec(bv, r)
		w.MulVec(a.T(), r)
	}
	gradient()
	maxIter := 3 * max(n, 1)
	for {
		// Choose the most promising free variable.
		t, best := -1, tol
		for j := 0; j < n; j++ {
			if !passive[j] && w.AtVec(j) > best {
				t, best = j, w.AtVec(j)
			}
		}
		if t < 0 {
			break
		}
		passive[t] = true
		for {
			res.Iterations++
			if res.Iterations > maxIter {
				return nil, fmt.Errorf("%w after %d iterations", ErrNNLSNoConvergence, maxIter)
			}
			s := solvePassive(a, bv, passive)
			ok := true
			for j := 0; j < n; j++ {
				if passive[j] && s[j] <= 0 {
					ok = false
					break
				}
			}
			if ok {
				copy(x, s)
				break
			}
			// Step from x towards s as far as feasibility allows.
			alpha := math.Inf(1)
			for j := 0; j < n; j++ {
				if passive[j] && s[j] <= 0 {
					if d := x[j] - s[j]; d > 0 {
						alpha = math.Min(alpha, x[j]/d)
					}
				}
			}
			if math.IsInf(alpha, 1) {
				alpha = 0
			}
			for j := 0; j < n; j++ {
				x[j] += alpha * (s[j] - x[j])
				if passive[j] && x[j] <= tol {
					x[j] = 0
					passive[j] = false
				}
			}
		}
		gradient()
	}
	for j := range x {
		if !passive[j] {
			x[j] = 0
		}
	}
	r.MulVec(a, mat.NewVecDense(n, x))
	r.SubVec(bv, r)
	res.Residual = floats.Norm(r.RawVector().Data, 2)
	return res, nil
}

// solvePassive returns the least-squares solution of A_P s = b over the
// passive columns (zero elsewhere), minimum-norm when A_P is rank deficient.
func solvePassive(a mat.Matrix, b *mat.VecDense, passive []bool) []float64 {
	m, n := a.Dims()
	var cols []int
	for j := 0; j < n; j++ {
		if passive[j] {
			cols = append(cols, j)
		}
	}
	s := make([]float64, n)
	if len(cols) == 0 {
		return s
	}
	ap := mat.NewDense(m, len(cols), nil)
	for i := 0; i < m; i++ {
		for k, j := range cols {
			ap.Set(i, k, a.At(i, j))
		}
	}
	sol := lstsq(ap, b)
	for k, j := range cols {
		s[j] = sol[k]
	}
	return s
}

// lstsq solves min ||A x - b|| through the thin SVD, dropping singular
// values below max(m,n) * eps * s_max (minimum-norm solution).
func lstsq(a *mat.Dense, b *mat.VecDense) []float64 {
	m, n := a.Dims()
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return make([]float64, n)
	}
	rank := svd.Rank(float64(max(m, n)) * 2.220446049250313e-16)
	x := mat.NewVecDense(n, nil)
	if rank == 0 {
		return x.RawVector().Data
	}
	svd.SolveVecTo(x, b, rank)
	return x.RawVector().Data
}
