package profiler

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/memval/memval/profiler/schema"
)

// RanksFile is the per-rank trace a run writes beside trace.csv when the
// profiled processes are ranks of a distributed job (torchrun and the like
// set RANK, LOCAL_RANK and WORLD_SIZE in each worker's environment): one
// row per ranked process and reading. trace.csv keeps its columns, so its
// readers are unchanged; a run without ranks writes no ranks.csv.
const RanksFile = "ranks.csv"

// RanksHeader is ranks.csv's first line: the reading's time (the clock of
// trace.csv), the GPU, the process, its rank, local rank and world size,
// and the bytes NVML attributes to it on that GPU.
const RanksHeader = "t_ns,gpu,pid,rank,local_rank,world_size,used_bytes"

// EnvironSource gives a process's environment as /proc/PID/environ holds
// it (NUL-separated KEY=VALUE). A Device that plays its own processes (the
// simulator's ranks) implements it; otherwise /proc is read.
type EnvironSource interface {
	Environ(pid int) ([]byte, error)
}

// procEnviron reads /proc/PID/environ.
type procEnviron struct{}

func (procEnviron) Environ(pid int) ([]byte, error) {
	return os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
}

// RankInfo is what a worker's environment says about its place in the job.
type RankInfo struct {
	Rank, LocalRank, WorldSize int
}

// ParseRankEnviron finds RANK (required), LOCAL_RANK and WORLD_SIZE in a
// NUL-separated environment; ok is false when RANK is missing or not a
// non-negative integer. Missing LOCAL_RANK and WORLD_SIZE are -1 and 0.
func ParseRankEnviron(env []byte) (info RankInfo, ok bool) {
	info = RankInfo{Rank: -1, LocalRank: -1}
	for _, kv := range bytes.Split(env, []byte{0}) {
		k, v, found := bytes.Cut(kv, []byte{'='})
		if !found {
			continue
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 || n > 1<<24 {
			continue
		}
		switch string(k) {
		case "RANK":
			info.Rank = n
		case "LOCAL_RANK":
			info.LocalRank = n
		case "WORLD_SIZE":
			info.WorldSize = n
		}
	}
	return info, info.Rank >= 0
}

// rankProc is one process seen on a GPU.
type rankProc struct {
	info       RankInfo
	ranked     bool
	gpu        int
	used, peak uint64
}

// rankTracker attributes per-process readings to ranks: it looks each new
// PID's environment up once, keeps each ranked process's current and peak
// bytes, and writes ranks.csv (created at the first ranked reading).
type rankTracker struct {
	src  EnvironSource
	path string

	mu    sync.Mutex
	procs map[int]*rankProc
	f     *os.File
	w     *bufio.Writer
	line  []byte
	err   error
}

func newRankTracker(src EnvironSource, path string) *rankTracker {
	if src == nil {
		src = procEnviron{}
	}
	return &rankTracker{src: src, path: path, procs: map[int]*rankProc{}}
}

// observe records one GPU's per-process reading (the tracked processes
// only; tracked nil: every process).
func (t *rankTracker) observe(now int64, gpu int, procs []ProcessMemory, tracked *map[int]struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range procs {
		if tracked != nil {
			if _, ok := (*tracked)[p.PID]; !ok {
				continue
			}
		}
		rp := t.procs[p.PID]
		if rp == nil {
			rp = &rankProc{gpu: gpu}
			if env, err := t.src.Environ(p.PID); err == nil {
				rp.info, rp.ranked = ParseRankEnviron(env)
			}
			t.procs[p.PID] = rp
		}
		rp.gpu, rp.used = gpu, p.Used
		rp.peak = max(rp.peak, p.Used)
		if rp.ranked {
			t.write(now, gpu, p.PID, rp)
		}
	}
}

func (t *rankTracker) write(now int64, gpu, pid int, rp *rankProc) {
	if t.err != nil || t.path == "" {
		return
	}
	if t.w == nil {
		if t.f, t.err = os.Create(t.path); t.err != nil {
			return
		}
		t.w = bufio.NewWriterSize(t.f, 32<<10)
		t.w.WriteString(RanksHeader + "\n")
	}
	b := t.line[:0]
	b = strconv.AppendInt(b, now, 10)
	for _, n := range []int{gpu, pid, rp.info.Rank, rp.info.LocalRank, rp.info.WorldSize} {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = append(b, ',')
	b = strconv.AppendUint(b, rp.used, 10)
	b = append(b, '\n')
	t.line = b
	_, t.err = t.w.Write(b)
}

// close flushes ranks.csv.
func (t *rankTracker) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return t.err
	}
	if err := t.w.Flush(); err != nil && t.err == nil {
		t.err = err
	}
	if err := t.f.Close(); err != nil && t.err == nil {
		t.err = err
	}
	t.w = nil
	if t.err != nil {
		return fmt.Errorf("write %s: %w", RanksFile, t.err)
	}
	return nil
}

// RankLive is one process's figures so far.
type RankLive struct {
	schema.RankPeak
	UsedBytes uint64
	Ranked    bool
}

// snapshot returns every process seen, ranked first by rank, then by PID.
func (t *rankTracker) snapshot() []RankLive {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]RankLive, 0, len(t.procs))
	for pid, rp := range t.procs {
		r := RankLive{RankPeak: schema.RankPeak{PID: pid, GPU: rp.gpu, Rank: -1, LocalRank: -1, PeakBytes: rp.peak}, UsedBytes: rp.used, Ranked: rp.ranked}
		if rp.ranked {
			r.Rank, r.LocalRank, r.WorldSize = rp.info.Rank, rp.info.LocalRank, rp.info.WorldSize
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RankLive) int {
		if a.Ranked != b.Ranked {
			if a.Ranked {
				return -1
			}
			return 1
		}
		if a.Rank != b.Rank {
			return a.Rank - b.Rank
		}
		return a.PID - b.PID
	})
	return out
}

// Processes returns every process the sampler has seen on a GPU so far,
// with its rank when its environment names one (Ranked), its current and
// peak bytes; nil when per-process readings are not tracked.
func (s *Sampler) Processes() []RankLive {
	if s.ranks == nil {
		return nil
	}
	return s.ranks.snapshot()
}

// rankPeaks returns the ranked processes' peaks for result.json.
func (s *Sampler) rankPeaks() []schema.RankPeak {
	var out []schema.RankPeak
	for _, r := range s.Processes() {
		if r.Ranked {
			out = append(out, r.RankPeak)
		}
	}
	return out
}

// LastReserved returns each GPU's driver-reserved bytes at its last
// reading, in the order of GPUs.
func (s *Sampler) LastReserved() []uint64 {
	out := make([]uint64, len(s.live))
	for i := range s.live {
		out[i] = s.live[i].reserved.Load()
	}
	return out
}
