package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// paramsOptions are the flags of memval params.
type paramsOptions struct {
	model modelOptions
	json  bool
	out   io.Writer
}

func newParamsCmd(s streams) *cobra.Command {
	opts := &paramsOptions{out: s.out}
	cmd := &cobra.Command{
		Use:   "params",
		Short: "Count a model's parameters, exactly, by component",
		Long: `params counts the parameters of a model exactly as its Hugging Face modeling
code builds it, by group (embeddings, attention, MLP, norms, head) and by
tensor. For --model seed-example and --model gpt3 it also puts the seed
article's printed figures beside the recomputed ones and lists its errata.`,
		Example: `  memval params --model llama-3-8b
  memval params --config path/to/config.json --json
  memval params --family llama --layers 2 --hidden 256 --heads 4 --kv-heads 2 --ffn 688 --vocab 1000`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runParams(c.Context(), opts)
		},
	}
	opts.model.bind(cmd.Flags())
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON instead of tables")
	return cmd
}

// paramsReport is what params --json prints.
type paramsReport struct {
	Arch        model.Arch           `json:"arch"`
	Params      model.ParamBreakdown `json:"params"`
	Seed        *model.SeedParams    `json:"seed_example,omitempty"`
	SeedGPT3    *model.SeedGPT3      `json:"seed_gpt3,omitempty"`
	SeedScaling *model.SeedScaling   `json:"seed_scaling,omitempty"`
}

func runParams(_ context.Context, opts *paramsOptions) error {
	a, err := opts.model.resolve()
	if err != nil {
		return err
	}
	b, err := model.Params(a)
	if err != nil {
		return asUsage(err)
	}
	r := paramsReport{Arch: a, Params: b}
	if opts.model.config == "" && len(opts.model.overrides()) == 0 {
		switch strings.ToLower(opts.model.model) {
		case "seed-example":
			s := model.SeedParamExample()
			r.Seed = &s
		case "gpt3":
			g, s := model.SeedGPT3Example(), model.SeedScalingExample()
			r.SeedGPT3, r.SeedScaling = &g, &s
		}
	}
	if opts.json {
		enc := json.NewEncoder(opts.out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printParams(opts.out, r)
}

// printParams writes the report as tables.
func printParams(w io.Writer, r paramsReport) error {
	a, b := r.Arch, r.Params
	ew := &paramsPrinter{w: w}
	name := a.Name
	if name == "" {
		name = "custom " + a.Family
	}
	ew.printf("model %s (family %s): layers %d, hidden %d, heads %d, kv_heads %d, head_dim %d, ffn %d",
		name, a.Family, a.Layers, a.Hidden, a.Heads, a.KVHeads, a.HeadDim, a.FFN)
	if n := model.ImageTokens(a); n > 0 {
		ew.printf(", image %d, patch %d (%d tokens per image)", a.ImageSize, a.PatchSize, n)
	} else {
		ew.printf(", vocab %d", a.Vocab)
	}
	if a.Experts > 0 {
		ew.printf(", experts %d (top-%d)", a.Experts, a.ExpertsPerToken)
	}
	ew.printf("\n\n")

	type row struct {
		name  string
		n     int64
		share bool
	}
	rows := []row{
		{"embeddings", b.Embeddings, true}, {"attention", b.Attention, true}, {"mlp", b.MLP, true},
		{"norms", b.Norms, true}, {"head", b.Head, true},
	}
	if b.Other != 0 {
		rows = append(rows, row{"other", b.Other, true})
	}
	rows = append(rows, row{"total", b.Total, false}, row{"per layer", b.PerLayer, false})
	if b.ActivePerToken != b.Total {
		rows = append(rows, row{"active per token", b.ActivePerToken, false})
	}
	ew.printf("%-18s %16s %7s\n", "group", "parameters", "share")
	for _, r := range rows {
		share := ""
		if r.share {
			share = fmt.Sprintf("%.1f%%", 100*float64(r.n)/float64(b.Total))
		}
		ew.printf("%s\n", strings.TrimRight(fmt.Sprintf("%-18s %16s %7s", r.name, groupThousands(r.n), share), " "))
	}
	ew.printf("weights: %s in fp32, %s in bf16/fp16\n\n",
		analytic.FormatBytes(uint64(b.Total)*4), analytic.FormatBytes(uint64(b.Total)*2))

	ew.printf("%-24s %-10s %-24s %16s %8s %18s\n", "component", "group", "shape", "parameters", "x", "total")
	for _, c := range b.Components {
		times, total := "1", c.Count
		if c.PerLayer {
			times, total = strconv.Itoa(a.Layers), c.Count*int64(a.Layers)
		}
		ew.printf("%-24s %-10s %-24s %16s %8s %18s\n", c.Name, c.Group, c.Shape, groupThousands(c.Count), times, groupThousands(total))
	}

	if s := r.Seed; s != nil {
		ew.printf("\nthe seed article's example (H=768, h=12, L=12, V=50,000, d_ff=3072)\n")
		ew.printf("%-28s %16s %16s\n", "", "seed printed", "recomputed")
		for _, row := range []struct {
			name   string
			pr, re int64
		}{
			{"embedding V*H", s.Printed.Embedding, s.Recomputed.Embedding},
			{"attention 4*H^2", s.Printed.Attention, s.Recomputed.Attention},
			{"feed-forward", s.Printed.FFN, s.Recomputed.FFN},
			{"layer norm (each)", s.Printed.LayerNorm, s.Recomputed.LayerNorm},
			{"one layer", s.Printed.PerLayer, s.Recomputed.PerLayer},
			{"12 layers", s.Printed.AllLayers, s.Recomputed.AllLayers},
			{"total", s.Printed.Total, s.Recomputed.Total},
			{"model memory fp32 (bytes)", int64(s.PrintedFP32Bytes), int64(s.RecomputedFP32Bytes)},
			{"model memory fp16 (bytes)", int64(s.PrintedFP16Bytes), int64(s.RecomputedFP16Bytes)},
		} {
			mark := ""
			if row.pr != row.re {
				mark = "  <- differs"
			}
			ew.printf("%-28s %16s %16s%s\n", row.name, groupThousands(row.pr), groupThousands(row.re), mark)
		}
		printSeedErrata(ew, s.Errata)
	}
	if g := r.SeedGPT3; g != nil {
		ew.printf("\nthe seed article's GPT-3 example (H=%d, d_ff=%d, L=%d)\n", g.Hidden, g.FFN, g.Layers)
		for _, row := range []struct {
			name string
			n    int64
		}{
			{"seed printed, per layer", g.PrintedPerLayer},
			{"seed printed, 96 layers", g.PrintedLayers},
			{"seed formula 8H^2+8H*d_ff+2H", g.SeedFormulaPerLayer},
			{"12*H^2 per layer", g.Approx12H2PerLayer},
			{"12*H^2 * 96 layers", g.Approx12H2Layers},
			{"exact per layer", g.ExactPerLayer},
			{"exact total", g.ExactTotal},
		} {
			ew.printf("%-30s %20s\n", row.name, groupThousands(row.n))
		}
		printSeedErrata(ew, g.Errata)
	}
	if s := r.SeedScaling; s != nil {
		ew.printf("\nthe seed's scaling claim (performance ~ N^%.2f)\n", s.Alpha)
		ew.printf("%-30s %20.2f\n%-30s %20.2f\n%-30s %20.3g\n", "seed: parameters for +10%", s.SeedClaim,
			"1.1^(1/alpha)", s.TenPercent, "10^(1/alpha)", s.TenToOneOverAlpha)
		printSeedErrata(ew, s.Errata)
	}
	return ew.err
}

func printSeedErrata(ew *paramsPrinter, errata []string) {
	ew.printf("errata:\n")
	for _, e := range errata {
		ew.printf("  - %s\n", e)
	}
}

// groupThousands writes n with thousands separators: 124,439,808.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// paramsPrinter keeps the first write error so printing code stays linear.
type paramsPrinter struct {
	w   io.Writer
	err error
}

func (e *paramsPrinter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
