package sim

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
)

// TestSimRanksAttributed plays an 8-rank job and checks that result.json
// and ranks.csv attribute each GPU's process to its rank, and that
// trace.csv keeps its columns.
func TestSimRanksAttributed(t *testing.T) {
	for _, ranks := range []int{1, 8} {
		dev, err := New(Config{Arch: gpt2Arch, Workload: model.Workload{Batch: 1, Seq: 64}, Steps: 3, Ranks: ranks, StepDuration: 10 * time.Millisecond}) // long enough for the 1 ms sampler to meet every rank under load
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		res, err := profiler.Run(context.Background(), profiler.RunOptions{Device: dev, OutDir: out, Interval: time.Millisecond, GPU: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(filepath.Join(out, profiler.RanksFile))
		if ranks == 1 {
			if len(res.Ranks) != 0 || statErr == nil {
				t.Errorf("one process without RANK: ranks %+v, ranks.csv %v", res.Ranks, statErr)
			}
			continue
		}
		if len(res.Ranks) != ranks {
			t.Fatalf("%d ranks attributed, want %d: %+v", len(res.Ranks), ranks, res.Ranks)
		}
		for r, rk := range res.Ranks {
			if rk.Rank != r || rk.GPU != r || rk.LocalRank != r || rk.WorldSize != ranks || rk.PID != 31337+r || rk.PeakBytes == 0 {
				t.Errorf("rank %d: %+v", r, rk)
			}
			if r > 0 && rk.PeakBytes-res.Ranks[r-1].PeakBytes != RankSkewBytes {
				t.Errorf("rank %d peak %d, rank %d %d: want %d apart", r, rk.PeakBytes, r-1, res.Ranks[r-1].PeakBytes, RankSkewBytes)
			}
		}
		f, err := os.Open(filepath.Join(out, profiler.RanksFile))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan()
		seen := map[string]bool{}
		for sc.Scan() {
			cols := strings.Split(sc.Text(), ",")
			if len(cols) != 7 || cols[1] != cols[3] {
				t.Fatalf("ranks.csv row %q", sc.Text())
			}
			seen[cols[3]] = true
		}
		f.Close()
		if len(seen) != ranks {
			t.Errorf("ranks.csv has rows for %d ranks, want %d", len(seen), ranks)
		}
		tr, err := profiler.ReadTraceFile(filepath.Join(out, profiler.TraceFile))
		if err != nil || len(tr.GPUs()) != 8 {
			t.Errorf("trace.csv: %v, GPUs %v", err, tr.GPUs())
		}
	}
	if _, err := New(Config{Ranks: 9}); err == nil {
		t.Error("9 ranks on an 8-GPU node accepted")
	}
}
