package profiler

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/memval/memval/profiler/schema"
)

// Summarize turns a trace and its events into the figures result.json keeps,
// for one GPU (gpu < 0: the busiest, the one whose used memory rose most
// above its baseline).
//
// Times: the workload's start is tr.StartNS, else the runner's "memval"
// start event, else the scenario's first "start" phase, else the first
// sample; its end is tr.EndNS, else the runner's exit event, else the last
// sample. Figures, all in bytes of device memory:
//   - BaselineBytes: median used of the samples before the start (the first
//     sample when there are none);
//   - PeakDeviceBytes: max used from the start on, at PeakSeconds after the
//     start; PeakProcessBytes: max of process_bytes when the process tree
//     was seen holding memory (ProcessSource "nvml-processes"), else
//     PeakDeviceBytes − BaselineBytes ("device-minus-baseline (reason)");
//   - SteadyBytes: the median used between a step_end and the next phase
//     event (normally the next step_start) over the steps after warm-up
//     (min(2, n/2) of n steps; a last step_end with no event after it
//     counts, up to the end, only when it is the one warm step); without
//     step events, the median used over the last half of the run.
//
// Exit fields come from the runner's exit event when there is one.
func Summarize(tr *Trace, events []Event, gpu int) schema.Summary {
	var sum schema.Summary
	if tr == nil {
		tr = &Trace{}
	}
	start, end := runBounds(tr, events)
	if gpu < 0 {
		gpu = busiestGPU(tr, start)
	}
	sum.GPU = gpu

	var rows []Sample // successful readings of gpu
	var lastT int64 = -1
	var deltas []int64
	for _, s := range tr.Samples {
		if s.GPU != gpu {
			continue
		}
		if lastT >= 0 {
			deltas = append(deltas, s.TNS-lastT)
		}
		lastT = s.TNS
		if s.Gap() {
			sum.Gaps++
			continue
		}
		rows = append(rows, s)
	}
	sum.Samples = len(rows)
	if len(deltas) > 0 {
		sort.Slice(deltas, func(i, j int) bool { return deltas[i] < deltas[j] })
		sum.IntervalSeconds = float64(deltas[len(deltas)/2]) / 1e9
	}
	if end > start {
		sum.DurationSeconds = float64(end-start) / 1e9
	}

	var pre []uint64
	for _, s := range rows {
		if s.TNS < start {
			pre = append(pre, s.Used)
		}
	}
	switch {
	case len(pre) > 0:
		sum.BaselineBytes = medianBytes(pre)
	case len(rows) > 0:
		sum.BaselineBytes = rows[0].Used
	}

	hasProcess, sawProcess, peaked := false, false, false
	for _, s := range rows {
		if s.TNS < start {
			continue
		}
		if !peaked || s.Used > sum.PeakDeviceBytes {
			peaked = true
			sum.PeakDeviceBytes = s.Used
			sum.PeakSeconds = float64(s.TNS-start) / 1e9
		}
		if s.HasProcess {
			hasProcess = true
			if s.Process > 0 {
				sawProcess = true
			}
			if s.Process > sum.PeakProcessBytes {
				sum.PeakProcessBytes = s.Process
			}
		}
	}
	switch {
	case sawProcess:
		sum.ProcessSource = "nvml-processes"
	default:
		reason := "per-process memory not supported by the device"
		if hasProcess {
			reason = "no process of the tree held GPU memory"
		}
		sum.ProcessSource = "device-minus-baseline (" + reason + ")"
		sum.PeakProcessBytes = 0
		if sum.PeakDeviceBytes > sum.BaselineBytes {
			sum.PeakProcessBytes = sum.PeakDeviceBytes - sum.BaselineBytes
		}
	}

	sum.SteadyBytes = steadyLevel(rows, events, start, end)
	applyExitEvent(&sum, events)
	return sum
}

// runBounds finds the workload's start and end (see Summarize).
func runBounds(tr *Trace, events []Event) (start, end int64) {
	start, end = tr.StartNS, tr.EndNS
	if start == 0 {
		for _, e := range events {
			if e.Kind == RunnerKind && e.Phase == PhaseStart {
				start = e.T
				break
			}
		}
	}
	if start == 0 {
		for _, e := range events {
			if e.Kind == "phase" && e.Phase == "start" {
				start = e.T
				break
			}
		}
	}
	if start == 0 && len(tr.Samples) > 0 {
		start = tr.Samples[0].TNS
	}
	if end == 0 {
		for _, e := range events {
			if e.Kind == RunnerKind && e.Phase == PhaseExit {
				end = e.T
			}
		}
	}
	if end == 0 && len(tr.Samples) > 0 {
		end = tr.Samples[len(tr.Samples)-1].TNS
	}
	return start, end
}

// busiestGPU is the GPU whose used memory rose most above its first
// reading from start on; the lowest index on a tie, 0 for an empty trace.
func busiestGPU(tr *Trace, start int64) int {
	first := map[int]uint64{}
	rise := map[int]uint64{}
	best, bestRise := -1, uint64(0)
	for _, s := range tr.Samples {
		if s.Gap() {
			continue
		}
		f, ok := first[s.GPU]
		if !ok {
			first[s.GPU] = s.Used
			f = s.Used
		}
		if s.TNS >= start && s.Used > f && s.Used-f > rise[s.GPU] {
			rise[s.GPU] = s.Used - f
		}
	}
	for g := range first {
		r := rise[g]
		if best < 0 || r > bestRise || (r == bestRise && g < best) {
			best, bestRise = g, r
		}
	}
	if best < 0 {
		return 0
	}
	return best
}

// warmupSteps is how many of n steps are warm-up: min(2, n/2).
func warmupSteps(n int) int { return min(2, n/2) }

// steadyLevel implements SteadyBytes (see Summarize). rows are in time order.
func steadyLevel(rows []Sample, events []Event, start, end int64) uint64 {
	var phases []Event
	var stepEnds []int
	for _, e := range events {
		if e.Kind == "phase" {
			phases = append(phases, e)
		}
	}
	sort.SliceStable(phases, func(i, j int) bool { return phases[i].T < phases[j].T })
	for i, e := range phases {
		if e.Phase == "step_end" {
			stepEnds = append(stepEnds, i)
		}
	}
	if len(stepEnds) > 0 {
		var vals []uint64
		warm := stepEnds[warmupSteps(len(stepEnds)):]
		for n, i := range warm {
			from, to := phases[i].T, end
			if i+1 < len(phases) {
				to = phases[i+1].T
			} else if n > 0 || len(warm) == 0 {
				continue // the last step's window runs into the teardown: only when it is the only one
			}
			k := sort.Search(len(rows), func(j int) bool { return rows[j].TNS >= from })
			n := 0
			for ; k < len(rows) && rows[k].TNS <= to; k++ {
				vals = append(vals, rows[k].Used)
				n++
			}
			// A window shorter than the interval: the next reading, unless
			// the window closes with the scenario's "done" (the next reading
			// may then come after the process freed its memory or exited).
			if n == 0 && k < len(rows) && !(i+1 < len(phases) && phases[i+1].Phase == "done") {
				vals = append(vals, rows[k].Used)
			}
		}
		if len(vals) > 0 {
			return medianBytes(vals)
		}
	}
	half := start + (end-start)/2
	var vals []uint64
	for _, s := range rows {
		if s.TNS >= half && s.TNS >= start {
			vals = append(vals, s.Used)
		}
	}
	if len(vals) == 0 {
		return 0
	}
	return medianBytes(vals)
}

// applyExitEvent copies the runner's exit event into the summary.
func applyExitEvent(sum *schema.Summary, events []Event) {
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Kind != RunnerKind || e.Phase != PhaseExit {
			continue
		}
		if v, ok := dataInt(e.Data, "exit_code"); ok {
			sum.ExitCode = int(v)
		}
		sum.Status, _ = e.Data["status"].(string)
		sum.Signal, _ = e.Data["signal"].(string)
		sum.OOM = e.OOM
		if b, ok := e.Data["oom"].(bool); ok && b {
			sum.OOM = true
		}
		return
	}
}

// medianBytes is the median of v (the lower middle for an even count); v
// is reordered.
func medianBytes(v []uint64) uint64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[(len(v)-1)/2]
}

// FrameworkFromEvents collects what the scenario reported about itself; nil
// when it reported nothing (no info, phase with figures or saved events).
//   - MaxAllocated, MaxReserved: the largest max_* (or current) figure of
//     any event;
//   - SteadyAllocated, SteadyReserved: the median at step_end after warm-up
//     (see Summarize);
//   - SavedBytes: the last "saved" event's bytes;
//   - StepSeconds: the median time from a step_start to its step_end over
//     the steps after warm-up (all steps when that leaves none).
func FrameworkFromEvents(events []Event) *schema.Framework {
	fw := &schema.Framework{}
	seen := false
	var stepStart = map[int]int64{}
	var ends []Event
	var durations []float64
	order := 0
	for _, e := range events {
		switch e.Kind {
		case "info":
			seen = true
			if v, ok := dataInt(e.Data, "params", "parameters", "n_params"); ok {
				fw.Params = v
			}
			if v, ok := dataInt(e.Data, "context_bytes"); ok && v > 0 {
				fw.ContextBytes = uint64(v)
			}
			if s := dataString(e.Data, "backend"); s != "" {
				fw.Backend = s
			}
			if s := dataString(e.Data, "attention"); s != "" {
				fw.Attention = s
			}
		case "saved":
			if e.SavedBytes != nil {
				seen = true
				fw.SavedBytes = *e.SavedBytes
			}
		case "phase":
			for _, p := range []*uint64{e.MaxAllocated, e.Allocated} {
				if p != nil {
					seen = true
					fw.MaxAllocated = max(fw.MaxAllocated, *p)
				}
			}
			for _, p := range []*uint64{e.MaxReserved, e.Reserved} {
				if p != nil {
					seen = true
					fw.MaxReserved = max(fw.MaxReserved, *p)
				}
			}
			step := order
			if e.Step != nil {
				step = *e.Step
			}
			switch e.Phase {
			case "step_start":
				stepStart[step] = e.T
			case "step_end":
				ends = append(ends, e)
				if t0, ok := stepStart[step]; ok && e.T >= t0 {
					durations = append(durations, float64(e.T-t0)/1e9)
				}
				order++
			}
		}
	}
	w := warmupSteps(len(ends))
	var alloc, res []uint64
	for _, e := range ends[w:] {
		if e.Allocated != nil {
			alloc = append(alloc, *e.Allocated)
		}
		if e.Reserved != nil {
			res = append(res, *e.Reserved)
		}
	}
	if len(alloc) > 0 {
		fw.SteadyAllocated = medianBytes(alloc)
	}
	if len(res) > 0 {
		fw.SteadyReserved = medianBytes(res)
	}
	if len(durations) > 0 {
		d := durations
		if wd := warmupSteps(len(d)); wd < len(d) {
			d = d[wd:]
		}
		d = append([]float64(nil), d...)
		sort.Float64s(d)
		fw.StepSeconds = d[(len(d)-1)/2]
	}
	if !seen && len(ends) == 0 {
		return nil
	}
	return fw
}

// applyInfoEvents fills the scenario's versions into env.
func applyInfoEvents(env *schema.Environment, events []Event) {
	for _, e := range events {
		if e.Kind != "info" {
			continue
		}
		if s := dataString(e.Data, "torch", "torch_version"); s != "" {
			env.Torch = s
		}
		if s := dataString(e.Data, "cuda", "torch_cuda", "cuda_version"); s != "" {
			env.TorchCUDA = s
		}
		if s := dataString(e.Data, "python", "python_version"); s != "" {
			env.Python = s
		}
	}
}

func dataString(d map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := d[k].(type) {
		case string:
			return v
		case float64:
			return fmt.Sprint(v)
		}
	}
	return ""
}

func dataInt(d map[string]any, keys ...string) (int64, bool) {
	for _, k := range keys {
		switch v := d[k].(type) {
		case float64: // decoded JSON
			if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
				return int64(v), true
			}
		case int: // an event made in this process
			return int64(v), true
		case int64:
			return v, true
		}
	}
	return 0, false
}

// FormatBytes prints bytes in binary units, labelled: "1.50 GiB" from
// 1 GiB on, "512.0 MiB" from 1 MiB, else KiB or B.
func FormatBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	default:
		return fmt.Sprintf("%d B", b)
	}
}

// WriteSummary prints a run's result for people: the device, notices, the
// baseline, peak, steady level, duration, samples and gaps, exit status and
// what the scenario reported.
func WriteSummary(w io.Writer, r *schema.Result) error {
	var b strings.Builder
	s := r.Summary
	kind := r.Device
	if r.Simulated {
		kind += " (simulated: not a measurement of a real GPU)"
	}
	fmt.Fprintf(&b, "device:    %s\n", kind)
	for _, n := range r.Notices {
		fmt.Fprintf(&b, "NOTICE:    %s\n", n)
	}
	if len(r.Command) > 0 {
		fmt.Fprintf(&b, "command:   %s\n", strings.Join(r.Command, " "))
	}
	if r.SimulatedWorkload != "" {
		fmt.Fprintf(&b, "workload:  %s (simulated; CMD's own memory is not measured)\n", r.SimulatedWorkload)
	}
	for _, g := range r.Env.GPUs {
		if g.Index == s.GPU {
			fmt.Fprintf(&b, "GPU %d:     %s, %s total\n", g.Index, g.Name, FormatBytes(g.TotalBytes))
		}
	}
	fmt.Fprintf(&b, "baseline:  %s device used before start\n", FormatBytes(s.BaselineBytes))
	fmt.Fprintf(&b, "peak:      %s device at %.3f s after start\n", FormatBytes(s.PeakDeviceBytes), s.PeakSeconds)
	fmt.Fprintf(&b, "           %s process tree, from %s\n", FormatBytes(s.PeakProcessBytes), s.ProcessSource)
	fmt.Fprintf(&b, "steady:    %s device used between steps\n", FormatBytes(s.SteadyBytes))
	fmt.Fprintf(&b, "duration:  %.3f s, %d samples every %s, gaps: %d\n", s.DurationSeconds, s.Samples, formatSeconds(s.IntervalSeconds), s.Gaps)
	status := s.Status
	if status == "" {
		status = "unknown (no exit recorded)"
	}
	exit := fmt.Sprintf("%s (exit code %d", status, s.ExitCode)
	if s.Signal != "" {
		exit += ", signal " + s.Signal
	}
	exit += ")"
	if s.OOM {
		exit += ", out of memory"
	}
	fmt.Fprintf(&b, "exit:      %s\n", exit)
	for _, rk := range r.Ranks { // a distributed job: each rank's peak on its GPU
		fmt.Fprintf(&b, "rank %-4d  %s peak on GPU %d (pid %d, local rank %d of world %d)\n", rk.Rank, FormatBytes(rk.PeakBytes), rk.GPU, rk.PID, rk.LocalRank, rk.WorldSize)
	}
	if s.TraceError != "" {
		fmt.Fprintf(&b, "trace:     INCOMPLETE, covers %.3f s: %s\n", s.TraceCoveredSeconds, s.TraceError)
	}
	for _, k := range r.KilledProcesses {
		fmt.Fprintf(&b, "killed:    pid %d (%s) with %s\n", k.PID, k.Command, k.Signal)
	}
	if fw := r.Framework; fw != nil {
		var parts []string
		if fw.Params > 0 {
			parts = append(parts, fmt.Sprintf("%d params", fw.Params))
		}
		if fw.Backend != "" {
			parts = append(parts, "backend "+fw.Backend)
		}
		if fw.Attention != "" {
			parts = append(parts, "attention "+fw.Attention)
		}
		if fw.MaxAllocated > 0 || fw.MaxReserved > 0 {
			parts = append(parts, fmt.Sprintf("max allocated %s, reserved %s", FormatBytes(fw.MaxAllocated), FormatBytes(fw.MaxReserved)))
		}
		if fw.SteadyAllocated > 0 {
			parts = append(parts, "steady allocated "+FormatBytes(fw.SteadyAllocated))
		}
		if fw.SavedBytes > 0 {
			parts = append(parts, "saved for backward "+FormatBytes(fw.SavedBytes))
		}
		if fw.StepSeconds > 0 {
			parts = append(parts, fmt.Sprintf("step %.3f s", fw.StepSeconds))
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "framework: %s\n", strings.Join(parts, "; "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatSeconds(s float64) string {
	switch {
	case s <= 0:
		return "?"
	case s < 1e-3:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.3g ms", s*1e3)
	default:
		return fmt.Sprintf("%.3g s", s)
	}
}
