package scenarios

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is one part K of N of a grid (--shard K/N): the scenarios whose
// index in the grid's expanded order is K modulo N. K counts from 0, like
// a Slurm array task id or a Kubernetes Job completion index. The zero
// value (N 0) is the whole grid.
type Shard struct{ K, N int }

// ParseShard reads "K/N" with 0 <= K < N.
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: write K/N, e.g. 0/4 (K from 0 to N-1)", s)
	}
	ki, err1 := strconv.Atoi(strings.TrimSpace(k))
	ni, err2 := strconv.Atoi(strings.TrimSpace(n))
	switch {
	case err1 != nil || err2 != nil:
		return Shard{}, fmt.Errorf("shard %q: K and N must be integers, e.g. 0/4", s)
	case ni < 1 || ni > MaxShards:
		return Shard{}, fmt.Errorf("shard %q: N must be 1 to %d", s, MaxShards)
	case ki < 0 || ki >= ni:
		return Shard{}, fmt.Errorf("shard %q: K counts from 0 (the job array index): use 0 to %d", s, ni-1)
	}
	return Shard{K: ki, N: ni}, nil
}

// MaxShards bounds N of a shard.
const MaxShards = 100000

// String is "K/N", or "" for the whole grid.
func (s Shard) String() string {
	if s.N == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// Select returns the shard's specs, in their order. The partition
// depends only on the expanded order, which Grid.Expand keeps
// deterministic: every spec is in exactly one of the N shards.
func (s Shard) Select(specs []*Spec) []*Spec {
	if s.N <= 1 {
		return specs
	}
	var out []*Spec
	for i, sp := range specs {
		if i%s.N == s.K {
			out = append(out, sp)
		}
	}
	return out
}
