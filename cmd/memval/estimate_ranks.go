package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

// distributedHeader is the header's description of pp, cp, offload and
// the engine ("" without them).
func distributedHeader(w model.Workload) string {
	var b strings.Builder
	if w.PP > 1 {
		fmt.Fprintf(&b, ", pp %d", w.PP)
		if w.PPInterleave > 1 {
			fmt.Fprintf(&b, " x%d interleaved", w.PPInterleave)
		}
		if w.Microbatches > 0 {
			fmt.Fprintf(&b, " (%d micro-batches)", w.Microbatches)
		}
	}
	if w.CP > 1 {
		fmt.Fprintf(&b, ", cp %d", w.CP)
	}
	if w.Offload != model.NoOffload {
		fmt.Fprintf(&b, ", offload %s", w.Offload)
	}
	if w.Engine != model.NoEngine {
		fmt.Fprintf(&b, ", engine %s", w.Engine)
		if w.BucketView {
			b.WriteString(" (bucket view)")
		}
		if w.FSDPMixed != "" {
			b.WriteString(" (mixed precision " + w.FSDPMixed + ")")
		}
	}
	return b.String()
}

// printRanks writes the per-rank table: each kind of rank's steady, peak,
// device peak and host memory (first formula), with its verdict.
func printRanks(b *strings.Builder, rep *estimate.Report, size func(uint64) string) error {
	if len(rep.Ranks) == 0 {
		return nil
	}
	fmt.Fprintf(b, "\nper rank (formula %s; the estimate above is %s's)\n", rep.Ranks[0].Estimates[0].Formula, rankOf(rep))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "  ranks\tsteady\tpeak\tdevice peak\thost RAM\t"
	if rep.GPU != nil {
		head += "fits\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rep.Ranks {
		e := r.Estimates[0]
		host := "-"
		if e.Host != nil {
			host = size(e.Host.Bytes)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t", r.Ranks, size(e.Steady), size(e.Peak), size(e.DevicePeak()), host)
		if rep.GPU != nil && len(r.Results) > 0 {
			res := r.Results[0]
			fits := "no"
			switch {
			case res.MaxBatch != nil:
				fits = "max batch " + strconv.Itoa(*res.MaxBatch)
			case res.MaxSeq != nil:
				fits = "max seq " + strconv.Itoa(*res.MaxSeq)
			case res.Fits:
				fits = "yes"
			}
			fmt.Fprintf(tw, "%s\t", fits)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// rankOf names the rank whose estimate the report's top level shows.
func rankOf(rep *estimate.Report) string {
	for _, r := range rep.Ranks {
		if r.Stage == rep.Workload.PPStage {
			return r.Ranks
		}
	}
	return "every rank"
}

// distOptions are the flags of the distributed settings beyond ZeRO and
// TP, as estimate takes them.
type distOptions struct {
	pp, interleave, microbatches, cp int
	offload, engine                  string
	bucketView                       bool
	fsdpMP                           string
}

func (d *distOptions) bind(f *pflag.FlagSet) {
	f.IntVar(&d.pp, "pp", 1, "pipeline-parallel stages (1F1B); per-rank results for every stage")
	f.IntVar(&d.interleave, "pp-interleave", 1, "model chunks per pipeline rank (interleaved 1F1B, Megatron's virtual pipeline)")
	f.IntVar(&d.microbatches, "microbatches", 0, "micro-batches per step with --pp (0: enough to fill the pipeline)")
	f.IntVar(&d.cp, "cp", 1, "context-parallel degree (ring attention; needs --attention flash)")
	f.StringVar(&d.offload, "offload", "", "CPU offload: "+orList(model.Offloads())+"; the host RAM is reported per rank")
	f.StringVar(&d.engine, "engine", "", "count the communication buffers of "+orList(model.Engines()))
	f.BoolVar(&d.bucketView, "bucket-view", false, "DDP gradient_as_bucket_view=True (with --engine ddp): no bucket copies")
	f.StringVar(&d.fsdpMP, "fsdp-mp", "", "FSDP MixedPrecision PARAM[:REDUCE] (with --engine fsdp|fsdp2), e.g. "+orList(model.FSDPMixedChoices())+": fp32 shards, 16-bit gathered units")
}

// oneIsUnset maps a degree of 1 to 0, the Workload's "not used", so that
// a workload given --pp 1 encodes as one without it.
func oneIsUnset(n int) int {
	if n == 1 {
		return 0
	}
	return n
}
