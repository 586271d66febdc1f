package profiler

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress is a live status line on a terminal: elapsed time, each GPU's
// current and peak used memory and the process tree's, samples and gaps.
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
	for _, g := range gpus {
		fmt.Fprintf(&p.b, " | GPU%d %s (peak %s)", g.Index, FormatBytes(g.Used), FormatBytes(g.Peak))
		if g.PeakProcess > 0 {
			fmt.Fprintf(&p.b, " tree %s", FormatBytes(g.Process))
		}
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
