package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/estimate"
)

// printEstimate writes the human-readable report.
func printEstimate(out io.Writer, rep *estimate.Report, decimal bool) error {
	size := analytic.FormatBytes
	if decimal {
		size = analytic.FormatBytesDecimal
	}
	var b strings.Builder
	w := rep.Workload
	name := rep.Model.Name
	if name == "" {
		name = rep.Model.Family
	}
	mode := "training"
	if w.Inference {
		mode = "inference"
	}
	fmt.Fprintf(&b, "model %s (%s parameters%s), %s, batch %d, seq %d, %s", name, groupThousands(rep.Model.Params), finetuneHeader(rep), mode, w.Batch, w.Seq, w.Precision)
	if !w.Inference {
		fmt.Fprintf(&b, ", %s, %s attention, checkpointing %s", w.Optimizer, w.Attention, w.Checkpointing)
	}
	if w.DP > 1 || w.TP > 1 || w.ZeRO > 0 {
		fmt.Fprintf(&b, ", ZeRO-%d dp %d tp %d", w.ZeRO, w.DP, w.TP)
		if w.SP {
			b.WriteString(" sp")
		}
	}
	b.WriteString(distributedHeader(w))
	b.WriteString(generationHeader(w)) // estimate_generation.go
	if w.Torch != "" {
		b.WriteString(", torch " + w.Torch)
	}
	if w.Bitsandbytes != "" {
		b.WriteString(", bitsandbytes " + w.Bitsandbytes)
	}
	b.WriteString("\n")
	for i, e := range rep.Estimates {
		fmt.Fprintf(&b, "\nformula %s", e.Formula)
		if len(rep.Results) > i {
			if r := rep.Results[i]; r.MaxBatch != nil {
				fmt.Fprintf(&b, " at batch %d", *r.MaxBatch)
			} else if r.MaxSeq != nil {
				fmt.Fprintf(&b, " at seq %d", *r.MaxSeq)
			}
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  group\tterm\t%12s\twhen\n", "bytes")
		var total uint64
		for _, t := range e.Terms {
			when := "steady"
			if t.Peak {
				when = "peak"
			}
			if t.Phase != "" {
				when += " (" + t.Phase + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%12s\t%s\n", t.Group, t.Name, size(t.Bytes), when)
			total += t.Bytes
		}
		fmt.Fprintf(tw, "  total\tall terms\t%12s\t\n", size(total))
		fmt.Fprintf(tw, "  steady\tbetween steps\t%12s\t\n", size(e.Steady))
		fmt.Fprintf(tw, "  peak\thighest phase\t%12s\t\n", size(e.Peak))
		if d := e.Device; d != nil {
			how := "step played through the caching allocator"
			if d.Played != "allocator" {
				how = "no tensor timeline: taken equal to allocated"
			}
			fmt.Fprintf(tw, "  device\tallocated peak\t%12s\tmax_memory_allocated, with the cuBLAS workspace\n", size(d.AllocatedPeak))
			fmt.Fprintf(tw, "  device\treserved peak\t%12s\tmax_memory_reserved: %s\n", size(d.ReservedPeak), how)
			fmt.Fprintf(tw, "  device\tdevice peak\t%12s\tNVML used: reserved + CUDA context %s (%s) + non-torch %s\n",
				size(d.DevicePeak), size(d.Context.Bytes), d.Context.Kind, size(d.NonTorch.Bytes))
		}
		if h := e.Host; h != nil {
			for _, t := range h.Terms {
				fmt.Fprintf(tw, "  host	%s	%12s	offloaded, per rank\n", t.Name, size(t.Bytes))
			}
			fmt.Fprintf(tw, "  host	host RAM	%12s	per rank, beside the GPU memory\n", size(h.Bytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if len(rep.Results) > i {
			b.WriteString(verdict(rep.Results[i], rep.GPU, e, size))
		}
	}
	if len(rep.SeedRules) > 0 {
		b.WriteString("\nseed rules of thumb: model memory = N x bytes per parameter; inference ~2x, training ~4x\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  dtype\tmodel\tinference (2x)\ttraining (4x)\t")
		for _, r := range rep.SeedRules {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", r.DType, size(r.ModelBytes), size(r.InferenceBytes), size(r.TrainingBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nskipped: %s\n", s)
	}
	if len(rep.Warnings) > 0 {
		b.WriteString("\n")
		for _, wn := range rep.Warnings {
			fmt.Fprintf(&b, "warning: %s\n", wn)
		}
	}
	if err := printRanks(&b, rep, size); err != nil {
		return err
	}
	if len(rep.Estimates) > 1 {
		b.WriteString("\nsummary\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := "  formula\tsteady\tpeak\tdevice peak\t"
		if rep.GPU != nil {
			head += "fits\t"
		}
		fmt.Fprintln(tw, head)
		for i, e := range rep.Estimates {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t", e.Formula, size(e.Steady), size(e.Peak), size(e.DevicePeak()))
			if rep.GPU != nil {
				fits := "no"
				if rep.Results[i].Fits {
					fits = "yes"
				}
				if r := rep.Results[i]; r.Unbounded {
					fits = "not bounded"
				} else if r.MaxBatch != nil {
					fits = "max batch " + strconv.Itoa(*r.MaxBatch)
				} else if r.MaxSeq != nil {
					fits = "max seq " + strconv.Itoa(*r.MaxSeq)
				}
				fmt.Fprintf(tw, "%s\t", fits)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// verdict is the "fits on" line of one formula.
func verdict(r estimate.Result, g *estimate.GPU, e analytic.Estimate, size func(uint64) string) string {
	if g == nil {
		return ""
	}
	on := fmt.Sprintf("%s (%s)", g.Name, size(g.TotalBytes))
	if g.Budget() {
		on = "a budget of " + size(g.TotalBytes)
	}
	switch {
	case r.Reason != "":
		if r.MaxBatch != nil || r.MaxSeq != nil {
			return fmt.Sprintf("  on %s: 0 fit: %s\n", on, r.Reason)
		}
		return fmt.Sprintf("  on %s: %s\n", on, r.Reason)
	case r.MaxBatch != nil:
		return fmt.Sprintf("  max batch on %s: %d (device peak %s, %s free)\n", on, *r.MaxBatch, size(e.DevicePeak()), size(r.FreeBytes))
	case r.MaxSeq != nil:
		return fmt.Sprintf("  max seq on %s: %d (device peak %s, %s free)\n", on, *r.MaxSeq, size(e.DevicePeak()), size(r.FreeBytes))
	case r.Fits:
		return fmt.Sprintf("  fits on %s: yes, device peak %s, %s free\n", on, size(e.DevicePeak()), size(r.FreeBytes))
	}
	return fmt.Sprintf("  fits on %s: no, device peak %s, %s short\n", on, size(e.DevicePeak()), size(r.ShortBytes))
}
