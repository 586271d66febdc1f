package profiler

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/memval/memval/profiler/schema"
)

// Replay plays a recorded trace.csv back as a Device and Timeline, so that
// real GPU data can be re-analysed anywhere. Start shifts the recorded
// times so that the recorded workload start falls on the given time;
// Memory answers the recorded sample at or before now, holding peaks: of
// the samples recorded since its previous answer it gives the one with the
// highest used memory, so that a replaying sampler that stalls (a loaded
// machine) still sees every recorded peak; a recorded gap at now is
// answered with its error, as it was, and the samples before it are held
// for the next answer. Processes answers the recorded process-tree figure
// (held likewise) as one process with PID 0, or ErrNotSupported when the
// trace has none. Before Start, readings are the last one before the
// recorded start (the baseline). The events.jsonl and result.json beside
// the trace, when present, give the scenario's events, the exit status,
// the GPUs' names and the versions.
type Replay struct {
	path     string
	gpus     []GPU
	versions Versions
	infoVer  int
	byGPU    map[int][]Sample
	events   []Event // the scenario's, in time order
	recStart int64
	recEnd   int64
	exitCode int
	oom      bool
	measured bool // result.json beside the trace says a real GPU was measured

	mu        sync.Mutex
	started   bool
	offset    int64 // now = recorded + offset
	nextEvent int
	answered  map[holdKey]int // per GPU and figure, the index of the last sample answered since Start
}

// holdKey names one held figure: a GPU's used memory or its process tree's.
type holdKey struct {
	gpu  int
	proc bool
}

// OpenReplay reads the trace at path (and the events.jsonl and result.json
// in the same folder, if there) and returns it as a Device that is also a
// Timeline.
func OpenReplay(path string) (Device, error) {
	r, err := openReplay(path)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func openReplay(path string) (*Replay, error) {
	tr, err := ReadTraceFile(path)
	if err != nil {
		return nil, fmt.Errorf("open replay: %w", err)
	}
	if len(tr.Samples) == 0 {
		return nil, fmt.Errorf("open replay: %s has no samples: record a run with memval profile first", path)
	}
	dir := filepath.Dir(path)
	events, _, err := ReadEventsFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("open replay: %w", err)
	}
	r := &Replay{path: path, byGPU: map[int][]Sample{}}
	for _, s := range tr.Samples {
		r.byGPU[s.GPU] = append(r.byGPU[s.GPU], s)
	}
	for g := range r.byGPU {
		ss := r.byGPU[g]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].TNS < ss[j].TNS })
	}
	start, end := runBounds(tr, events)
	r.recStart, r.recEnd = start, end
	var sum schema.Summary
	applyExitEvent(&sum, events)
	r.exitCode, r.oom = sum.ExitCode, sum.OOM
	for _, e := range events {
		if e.Kind == RunnerKind {
			continue
		}
		if e.Kind == "error" && e.OOM {
			r.oom = true
			if r.exitCode == 0 {
				r.exitCode = 1
			}
		}
		r.events = append(r.events, e)
	}
	sort.SliceStable(r.events, func(i, j int) bool { return r.events[i].T < r.events[j].T })

	if res, err := schema.ReadResult(filepath.Join(dir, schema.ResultFile)); err == nil {
		r.versions = res.Env.Versions
		r.measured = !res.Simulated
		r.infoVer = res.Env.MemoryInfoVersion
		for _, g := range res.Env.GPUs {
			if _, ok := r.byGPU[g.Index]; ok {
				r.gpus = append(r.gpus, g)
			}
		}
	}
	if len(r.gpus) == 0 {
		for _, g := range tr.GPUs() {
			gpu := GPU{Index: g, Name: fmt.Sprintf("replayed GPU %d", g)}
			for _, s := range r.byGPU[g] {
				if !s.Gap() {
					gpu.TotalBytes = s.Total
					break
				}
			}
			r.gpus = append(r.gpus, gpu)
		}
	}
	sort.Slice(r.gpus, func(i, j int) bool { return r.gpus[i].Index < r.gpus[j].Index })
	return r, nil
}

// Kind is "replay:" and the trace's path.
func (r *Replay) Kind() string { return "replay:" + r.path }

// GPUs are the recorded GPUs.
func (r *Replay) GPUs() ([]GPU, error) { return append([]GPU(nil), r.gpus...), nil }

// Versions are the recorded versions (empty without result.json).
func (r *Replay) Versions() Versions { return r.versions }

// Close does nothing.
func (r *Replay) Close() error { return nil }

// recordedNow maps now to the recording's clock.
func (r *Replay) recordedNow(now int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return r.recStart - 1
	}
	return now - r.offset
}

// indexAt is the GPU's samples and the index of the one recorded at or
// before now.
func (r *Replay) indexAt(gpu int, now int64) ([]Sample, int, error) {
	ss, ok := r.byGPU[gpu]
	if !ok {
		return nil, 0, fmt.Errorf("replay: no GPU %d in %s", gpu, r.path)
	}
	rt := r.recordedNow(now)
	i := sort.Search(len(ss), func(i int) bool { return ss[i].TNS > rt }) - 1
	return ss, max(i, 0), nil
}

// heldAt is the sample at now holding peaks for key: the sample at now, or,
// when it is not a gap, the one of highest figure among the samples
// recorded since the previous answer for key (after Start).
func (r *Replay) heldAt(key holdKey, now int64, figure func(Sample) (uint64, bool)) (Sample, error) {
	ss, i, err := r.indexAt(key.gpu, now)
	if err != nil {
		return Sample{}, err
	}
	if ss[i].Gap() {
		return ss[i], nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return ss[i], nil
	}
	last, ok := r.answered[key]
	if !ok {
		// the first answer since Start: from the last sample before the
		// recorded start
		last = sort.Search(len(ss), func(j int) bool { return ss[j].TNS >= r.recStart }) - 1
	}
	best, bestV := i, uint64(0)
	if v, ok := figure(ss[i]); ok {
		bestV = v
	}
	for j := max(last+1, 0); j < i; j++ {
		if ss[j].Gap() {
			continue
		}
		if v, ok := figure(ss[j]); ok && v > bestV {
			best, bestV = j, v
		}
	}
	r.answered[key] = i
	return ss[best], nil
}

// Memory answers the recorded reading at or before now, holding peaks
// (see Replay).
func (r *Replay) Memory(gpu int) (Memory, error) {
	s, err := r.heldAt(holdKey{gpu, false}, MonotonicNS(), func(s Sample) (uint64, bool) { return s.Used, true })
	if err != nil {
		return Memory{}, err
	}
	if s.Gap() {
		return Memory{}, fmt.Errorf("replayed gap: %s", s.Err)
	}
	m := Memory{Total: s.Total, Used: s.Used, Reserved: s.Reserved, InfoVersion: r.infoVer}
	if s.Total > s.Used+s.Reserved {
		m.Free = s.Total - s.Used - s.Reserved
	}
	return m, nil
}

// Processes answers the recorded process-tree figure as PID 0.
func (r *Replay) Processes(gpu int) ([]ProcessMemory, error) {
	s, err := r.heldAt(holdKey{gpu, true}, MonotonicNS(), func(s Sample) (uint64, bool) { return s.Process, s.HasProcess })
	if err != nil {
		return nil, err
	}
	if s.Gap() || !s.HasProcess {
		return nil, ErrNotSupported
	}
	if s.Process == 0 {
		return nil, nil
	}
	return []ProcessMemory{{PID: 0, Used: s.Process}}, nil
}

// Start maps the recorded start onto startNS.
func (r *Replay) Start(startNS int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = true
	r.offset = startNS - r.recStart
	r.answered = map[holdKey]int{}
	r.nextEvent = 0
	for r.nextEvent < len(r.events) && r.events[r.nextEvent].T < r.recStart {
		r.nextEvent++ // events before the start are history
	}
}

// Finished reports the recorded exit once the recorded end has passed.
func (r *Replay) Finished(nowNS int64) (bool, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || nowNS-r.offset < r.recEnd {
		return false, 0, false
	}
	return true, r.exitCode, r.oom
}

// Events returns the recorded events whose (shifted) time has come.
func (r *Replay) Events(nowNS int64) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return nil
	}
	var out []Event
	for r.nextEvent < len(r.events) && r.events[r.nextEvent].T+r.offset <= nowNS {
		e := r.events[r.nextEvent]
		e.T += r.offset
		out = append(out, e)
		r.nextEvent++
	}
	return out
}
