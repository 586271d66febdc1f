// Command memval-peers runs memval beside its peers (llm-analysis,
// Accelerate's estimate-memory, DeepSpeed's ZeRO estimators, torch's
// MemTracker, the EleutherAI rules) on the CPU truth and the published
// corpus, and writes the comparison (see package peers). `make peers`
// runs it with the truth environment's interpreter.
//
//	memval-peers [-out DIR] [-published DIR] [-small] [-python PY] [-only a,b] [-peers a,b]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/memval/memval/peers"
	"github.com/memval/memval/scenarios"
)

func main() {
	out := flag.String("out", "peers-out", "folder for cases.json, peers.json, configs and report.md")
	pub := flag.String("published", "scenarios/published", "the published corpus; empty for none")
	small := flag.Bool("small", false, "the CI set of CPU-truth cases (4 instead of 18)")
	python := flag.String("python", scenarios.Python(), "interpreter with the truth environment and the peers (default $MEMVAL_PYTHON)")
	script := flag.String("script", "scripts/peers/peers.py", "the peers script")
	only := flag.String("only", "", "comma-separated published cases (source/id) to keep; all when empty")
	which := flag.String("peers", "", "comma-separated peers to run; all when empty")
	minTime := flag.Float64("min-time", 0, "seconds each (case, peer) is timed for (peers.py's default when 0)")
	rescore := flag.Bool("rescore", false, "compare memval as it is now with the peers' results of the last run in -out (no Python)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "memval-peers: unexpected argument %q; flags only (see -h)\n", flag.Arg(0))
		os.Exit(2)
	}
	if *minTime < 0 {
		fmt.Fprintf(os.Stderr, "memval-peers: -min-time %g: must not be negative\n", *minTime)
		os.Exit(2)
	}
	if _, err := os.Stat(*script); err != nil && !*rescore {
		fmt.Fprintf(os.Stderr, "memval-peers: -script %s: %v; run from the repository root\n", *script, err)
		os.Exit(2)
	}
	rep, err := peers.Run(peers.Options{Out: *out, Published: *pub, Only: split(*only), Small: *small, Python: *python,
		Script: *script, Peers: split(*which), MinTime: *minTime, Rescore: *rescore, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "memval-peers: %v\n", err)
		os.Exit(1)
	}
	rep.Markdown(os.Stdout)
	fmt.Println()
	rep.Paired(os.Stdout)
	fmt.Fprintf(os.Stderr, "memval-peers: report in %s/report.md\n", *out)
}

func split(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
