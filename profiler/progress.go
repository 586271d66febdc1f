package profiler

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Progress is a live status line on a terminal: elapsed time, the busiest
// GPUs' current and peak used memory and the process tree's (the others
// counted, so that an 8-GPU node fits on one line), samples and gaps.
// Each Update rewrites the line in place (carriage return); Done ends it.
type Progress struct {
	w    io.Writer
	last int // length of the last line, to blank what a shorter one leaves
	b    strings.Builder
}

// NewProgress writes progress lines to w.
func NewProgress(w io.Writer) *Progress { return &Progress{w: w} }

// Update rewrites the line.
func (p *Progress) Update(elapsed time.Duration, gpus []LiveGPU, samples, gaps int) {
	p.b.Reset()
	fmt.Fprintf(&p.b, "memval %6.1fs", elapsed.Seconds())
	shown := busiest(gpus)
	for _, g := range shown {
		fmt.Fprintf(&p.b, " | GPU%d %s (peak %s)", g.Index, FormatBytes(g.Used), FormatBytes(g.Peak))
		if g.PeakProcess > 0 {
			fmt.Fprintf(&p.b, " tree %s", FormatBytes(g.Process))
		}
	}
	if n := len(gpus) - len(shown); n > 0 {
		fmt.Fprintf(&p.b, " | +%d GPU(s)", n)
	}
	fmt.Fprintf(&p.b, " | %d samples", samples)
	if gaps > 0 {
		fmt.Fprintf(&p.b, ", %d gaps", gaps)
	}
	line := p.b.String()
	pad := ""
	if n := p.last - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.last = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

// Done clears the line so that what follows starts on a clean one.
func (p *Progress) Done() {
	if p.last > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.last)+"\r")
		p.last = 0
	}
}

// maxShown is how many GPUs the progress line details.
const maxShown = 2

// busiest returns up to maxShown GPUs with the highest peaks, in index
// order; GPUs whose peak is under half of the highest are left out.
func busiest(gpus []LiveGPU) []LiveGPU {
	if len(gpus) <= 1 {
		return gpus
	}
	order := make([]int, len(gpus))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return gpus[order[a]].Peak > gpus[order[b]].Peak })
	top := gpus[order[0]].Peak
	var keep []int
	for _, i := range order {
		if len(keep) == maxShown || len(keep) > 0 && gpus[i].Peak < top/2 {
			break
		}
		keep = append(keep, i)
	}
	sort.Ints(keep)
	out := make([]LiveGPU, len(keep))
	for k, i := range keep {
		out[k] = gpus[i]
	}
	return out
}
