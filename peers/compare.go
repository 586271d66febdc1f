package peers

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/fit"
	"github.com/memval/memval/profiler/schema"
)

// Memval is the estimator name memval's rows carry.
const Memval = "memval"

// Result is one peer on one case, as peers.py writes it (peers.json).
type Result struct {
	Case       string     `json:"case"`
	Peer       string     `json:"peer"`
	Version    string     `json:"version"`
	Quantities Quantities `json:"quantities,omitempty"`
	Cannot     string     `json:"cannot,omitempty"`
	Error      string     `json:"error,omitempty"`
	NsPer      float64    `json:"ns_per_estimate,omitempty"`
	Reps       int        `json:"reps,omitempty"`
	Notes      []string   `json:"notes,omitempty"`
}

// ParseResults reads peers.json: a list of results, each naming its case
// and peer, with quantities, cannot or error.
func ParseResults(data []byte) ([]Result, error) {
	var rs []Result
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("peers results: %w", err)
	}
	for i, r := range rs {
		if r.Case == "" || r.Peer == "" {
			return nil, fmt.Errorf("peers results: entry %d: case and peer must be set", i)
		}
		if r.Quantities == nil && r.Cannot == "" && r.Error == "" {
			return nil, fmt.Errorf("peers results: entry %d (%s, %s): no quantities, cannot or error", i, r.Peer, r.Case)
		}
		for k, v := range r.Quantities {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, fmt.Errorf("peers results: entry %d (%s, %s): quantity %s = %v: want a finite number of bytes >= 0", i, r.Peer, r.Case, k, v)
			}
		}
		if r.NsPer < 0 || math.IsNaN(r.NsPer) || math.IsInf(r.NsPer, 0) {
			return nil, fmt.Errorf("peers results: entry %d (%s, %s): ns_per_estimate %v: want a finite number >= 0", i, r.Peer, r.Case, r.NsPer)
		}
	}
	return rs, nil
}

// Column is one quantity of one set of cases, as the table shows it.
type Column struct {
	Set, Quantity string
	Title         string
	// Bases, for the published set, keeps the measurements of these bases.
	Bases []string
}

// Columns are the table's columns: the CPU truth's model states, saved
// activations and their sum, and the published peaks (allocated and
// reserved together, each against the estimator's figure; memval's is
// its device-level figure of the measurement's basis) and, apart, those
// whose basis is not stated.
var Columns = []Column{
	{SetTruth, ModelStates, "CPU truth: weights + gradients + optimizer states", nil},
	{SetTruth, Activations, "CPU truth: saved activations", nil},
	{SetTruth, Sum, "CPU truth: the sum", nil},
	{SetPublished, Peak, "published peaks (allocated, reserved, NVML used)", []string{schema.BasisAllocated, schema.BasisReserved, schema.BasisNVML}},
	{SetPublished, Peak, "published peaks, basis not stated", []string{schema.BasisNotStated}},
}

// Cell is one estimator on one column.
type Cell struct {
	Stats  fit.ErrorStats
	Cannot int // cases of the column the estimator has no figure for
	Errors int // cases where the estimator failed
}

// Row is one estimator.
type Row struct {
	Name    string
	Version string
	Cells   []Cell             // one per Column
	Ns      map[string]float64 // set -> median ns per estimate
	Why     map[string]int     // reason it cannot express a case -> cases
	Errs    map[string]int     // error -> cases
	seen    map[string]bool    // reason + case, counted once
}

// Report is the comparison.
type Report struct {
	Cases []Case
	Rows  []Row
	// Points lists every scored (estimator, case, quantity): relative error.
	Points []Point
}

// Point is one scored comparison.
type Point struct {
	Estimator, Case, Quantity string
	Predicted, Measured, Rel  float64
}

// Compare scores memval (its quantities in the cases, memvalNs per set)
// and every peer in rs against the cases' measurements.
func Compare(cases []Case, rs []Result, memvalNs map[string]float64) *Report {
	rep := &Report{Cases: cases}
	byName := map[string]Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	var names []string
	results := map[string][]Result{}
	for _, c := range cases {
		results[Memval] = append(results[Memval], Result{Case: c.Name, Peer: Memval, Quantities: c.Memval, NsPer: memvalNs[c.Set]})
	}
	names = append(names, Memval)
	for _, r := range rs {
		if _, ok := byName[r.Case]; !ok {
			continue
		}
		if !slices.Contains(names, r.Peer) {
			names = append(names, r.Peer)
		}
		results[r.Peer] = append(results[r.Peer], r)
	}
	for _, n := range names {
		row := Row{Name: n, Cells: make([]Cell, len(Columns)), Ns: map[string]float64{}, Why: map[string]int{}, Errs: map[string]int{}, seen: map[string]bool{}}
		ns := map[string][]float64{}
		rel := make([][]float64, len(Columns))
		for _, r := range results[n] {
			c := byName[r.Case]
			if r.Version != "" {
				row.Version = r.Version
			}
			if r.NsPer > 0 {
				ns[c.Set] = append(ns[c.Set], r.NsPer)
			}
			q := Quantities{}
			for k, v := range r.Quantities {
				q[k] = v
			}
			complete(q)
			for i, col := range Columns {
				if col.Set != c.Set || (col.Bases != nil && !slices.Contains(col.Bases, c.Basis)) {
					continue
				}
				meas, ok := c.Measured[col.Quantity]
				if !ok || meas <= 0 {
					continue
				}
				switch {
				case r.Error != "":
					row.Cells[i].Errors++
					row.count(row.Errs, firstLine(r.Error), c.Name)
				case r.Cannot != "":
					row.Cells[i].Cannot++
					row.count(row.Why, r.Cannot, c.Name)
				default:
					p, ok := q[col.Quantity]
					if !ok {
						row.Cells[i].Cannot++
						row.count(row.Why, fmt.Sprintf("no %s figure (%s)", col.Quantity, c.Set), c.Name)
						continue
					}
					e := fit.RelError(p, meas)
					rel[i] = append(rel[i], e)
					rep.Points = append(rep.Points, Point{n, c.Name, col.Quantity, p, meas, e})
				}
			}
		}
		for i := range Columns {
			row.Cells[i].Stats = fit.Stats(rel[i])
		}
		for s, v := range ns {
			row.Ns[s] = median(v)
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep
}

// count adds case to m[reason] once.
func (row *Row) count(m map[string]int, reason, c string) {
	if k := reason + "\x00" + c; !row.seen[k] {
		row.seen[k] = true
		m[reason]++
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Markdown writes the table: per estimator, median and max |error| (and
// the number of cases scored) per column, the median time per estimate,
// and what it cannot express.
func (r *Report) Markdown(w io.Writer) {
	nt, np := 0, 0
	for _, c := range r.Cases {
		if c.Set == SetTruth {
			nt++
		} else {
			np++
		}
	}
	fmt.Fprintf(w, "%d CPU-truth cases (train.py, transformers' classes, torch's CPU), %d published measurements memval evaluates. "+
		"Each cell: median / max |error| (cases scored); \"-\" where the estimator has no figure for any case of the column.\n\n", nt, np)
	fmt.Fprint(w, "| estimator |")
	for _, c := range Columns {
		fmt.Fprintf(w, " %s |", c.Title)
	}
	fmt.Fprint(w, " time per estimate (truth; published) |\n|---|")
	for range Columns {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---:|\n")
	for _, row := range r.Rows {
		name := row.Name
		if row.Version != "" {
			name += " " + row.Version
		}
		fmt.Fprintf(w, "| %s |", name)
		for _, c := range row.Cells {
			if c.Stats.N == 0 {
				fmt.Fprint(w, " - |")
				continue
			}
			fmt.Fprintf(w, " %s / %s (%d) |", pct(c.Stats.MedianAPE), pct(c.Stats.MaxAPE), c.Stats.N)
		}
		fmt.Fprintf(w, " %s; %s |\n", dur(row.Ns[SetTruth]), dur(row.Ns[SetPublished]))
	}
	fmt.Fprint(w, "\nWhat each estimator cannot express (cases):\n\n")
	for _, row := range r.Rows {
		if len(row.Why) == 0 && len(row.Errs) == 0 {
			continue
		}
		var parts []string
		for _, k := range sortedKeys(row.Why) {
			parts = append(parts, fmt.Sprintf("%s (%d)", k, row.Why[k]))
		}
		for _, k := range sortedKeys(row.Errs) {
			parts = append(parts, fmt.Sprintf("failed: %s (%d)", k, row.Errs[k]))
		}
		fmt.Fprintf(w, "- %s: %s\n", row.Name, strings.Join(parts, "; "))
	}
}

// Paired writes, for each peer, its published errors beside memval's on
// exactly the cases the peer has a figure for (Markdown).
func (r *Report) Paired(w io.Writer) {
	fmt.Fprint(w, "| peer | published cases it expresses | its median / max \\|error\\| | memval's on the same cases |\n|---|---:|---:|---:|\n")
	mv := map[string]float64{}
	for _, p := range r.Points {
		if p.Estimator == Memval && p.Quantity == Peak {
			mv[p.Case] = p.Rel
		}
	}
	for _, row := range r.Rows {
		if row.Name == Memval {
			continue
		}
		var mine, theirs []float64
		for _, p := range r.Points {
			if p.Estimator == row.Name && p.Quantity == Peak {
				if m, ok := mv[p.Case]; ok {
					theirs = append(theirs, p.Rel)
					mine = append(mine, m)
				}
			}
		}
		if len(theirs) == 0 {
			fmt.Fprintf(w, "| %s | 0 | - | - |\n", row.Name)
			continue
		}
		a, b := fit.Stats(theirs), fit.Stats(mine)
		fmt.Fprintf(w, "| %s | %d | %s / %s | %s / %s |\n", row.Name, a.N, pct(a.MedianAPE), pct(a.MaxAPE), pct(b.MedianAPE), pct(b.MaxAPE))
	}
}

// Detail writes every scored point (Markdown).
func (r *Report) Detail(w io.Writer) {
	fmt.Fprint(w, "| estimator | case | quantity | predicted | measured | error |\n|---|---|---|---:|---:|---:|\n")
	for _, p := range r.Points {
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %+.1f %% |\n", p.Estimator, p.Case, p.Quantity, p.Predicted, p.Measured, 100*p.Rel)
	}
}

func sortedKeys(m map[string]int) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

func pct(f float64) string {
	if f < 0.001 {
		return fmt.Sprintf("%.3f %%", 100*f)
	}
	return fmt.Sprintf("%.1f %%", 100*f)
}

func dur(ns float64) string {
	switch {
	case ns <= 0:
		return "-"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	}
	return fmt.Sprintf("%.1f s", ns/1e9)
}

// MemvalNs times memval per estimate with testing.Benchmark: on the truth
// set the breakdown and its saved-activation terms (MemvalTruth), on the
// published set the breakdown with its device-level peaks
// (analytic.PredictDevice), each case in turn; the mean per case.
func MemvalNs(cases []Case) map[string]float64 {
	out := map[string]float64{}
	for _, set := range []string{SetTruth, SetPublished} {
		var cs []Case
		for _, c := range cases {
			if c.Set == set {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		res := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := cs[i%len(cs)]
				if set == SetTruth {
					if _, _, err := MemvalTruth(c.Arch, c.Workload); err != nil {
						b.Fatal(err)
					}
					continue
				}
				var e analytic.Estimate
				if err := analytic.PredictDevice(&e, "breakdown", c.Arch, c.Workload, analytic.DeviceOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		if res.N > 0 {
			out[set] = float64(res.T.Nanoseconds()) / float64(res.N)
		}
	}
	return out
}

// Options configure Run.
type Options struct {
	Out       string   // folder for cases.json, peers.json, the configs and report.md
	Published string   // the published corpus (scenarios/published)
	Only      []string // published cases to keep (all when empty)
	Small     bool     // the CI set of truth cases
	Python    string   // interpreter with the truth environment and the peers
	Script    string   // scripts/peers/peers.py
	Peers     []string // peers to run (all when empty)
	MinTime   float64  // seconds each (case, peer) is timed for; 0 means peers.py's default
	// Rescore compares the peers' results of an earlier run (Out's
	// cases.json and peers.json) with memval as it is now, without Python:
	// the measured figures and the peers' answers are the earlier run's;
	// memval's figures are recomputed (truth cases with TruthSpecs' current
	// workload of the same name, published cases from the corpus).
	Rescore bool
	Log     io.Writer
}

// Run builds the cases, runs peers.py on them, times memval and compares.
func Run(o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	if o.Rescore {
		return rescore(o, out)
	}
	fmt.Fprintf(o.Log, "peers: measuring the CPU truth with train.py (%s)\n", o.Python)
	cases, err := TruthCases(TruthSpecs(o.Small), out, o.Python)
	if err != nil {
		return nil, err
	}
	if o.Published != "" {
		pc, err := PublishedCases(o.Published, out, o.Only)
		if err != nil {
			return nil, err
		}
		cases = append(cases, pc...)
	}
	data, err := json.MarshalIndent(cases, "", " ")
	if err != nil {
		return nil, err
	}
	casesPath := filepath.Join(out, "cases.json")
	if err := os.WriteFile(casesPath, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	resPath := filepath.Join(out, "peers.json")
	args := []string{o.Script, "--cases", casesPath, "--out", resPath}
	if len(o.Peers) > 0 {
		args = append(args, "--peers", strings.Join(o.Peers, ","))
	}
	if o.MinTime > 0 {
		args = append(args, "--min-time", fmt.Sprint(o.MinTime))
	}
	fmt.Fprintf(o.Log, "peers: %d cases; running %s\n", len(cases), strings.Join(args, " "))
	cmd := exec.Command(o.Python, args...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrNoPeers, o.Python, o.Script, err)
	}
	raw, err := os.ReadFile(resPath)
	if err != nil {
		return nil, err
	}
	rs, err := ParseResults(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resPath, err)
	}
	return report(o, out, cases, rs)
}

// report times memval, compares and writes report.md.
func report(o Options, out string, cases []Case, rs []Result) (*Report, error) {
	fmt.Fprintln(o.Log, "peers: timing memval")
	rep := Compare(cases, rs, MemvalNs(cases))
	f, err := os.Create(filepath.Join(out, "report.md"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep.Markdown(f)
	fmt.Fprint(f, "\n## Published peaks, each peer beside memval on the same cases\n\n")
	rep.Paired(f)
	fmt.Fprint(f, "\n## Every scored comparison\n\n")
	rep.Detail(f)
	return rep, f.Close()
}

// rescore is Run with Options.Rescore: the earlier run's cases.json and
// peers.json under out, memval's figures recomputed.
func rescore(o Options, out string) (*Report, error) {
	raw, err := os.ReadFile(filepath.Join(out, "cases.json"))
	if err != nil {
		return nil, fmt.Errorf("rescore: %w (run once without -rescore first)", err)
	}
	var old []Case
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, fmt.Errorf("rescore: %s: %w", filepath.Join(out, "cases.json"), err)
	}
	specs := map[string]TruthSpec{}
	for _, s := range TruthSpecs(false) {
		specs[s.Name] = s
	}
	var pub map[string]Case
	if o.Published != "" {
		pc, err := PublishedCases(o.Published, out, o.Only)
		if err != nil {
			return nil, err
		}
		pub = map[string]Case{}
		for _, c := range pc {
			pub[c.Name] = c
		}
	}
	var cases []Case
	for _, c := range old {
		switch c.Set {
		case SetTruth:
			s, ok := specs[c.Name]
			if !ok {
				return nil, fmt.Errorf("rescore: truth case %s is no longer in TruthSpecs; run without -rescore", c.Name)
			}
			a := s.Arch
			if err := a.Normalize(); err != nil {
				return nil, err
			}
			w, err := s.Workload.WithDefaults()
			if err != nil {
				return nil, err
			}
			mv, _, err := MemvalTruth(a, w)
			if err != nil {
				return nil, fmt.Errorf("rescore: truth case %s: %w", c.Name, err)
			}
			c.Workload, c.Memval = w, mv
		default:
			n, ok := pub[c.Name]
			if !ok {
				continue // no longer evaluated: left out, as a fresh run would
			}
			c.Memval = n.Memval
		}
		cases = append(cases, c)
	}
	raw, err = os.ReadFile(filepath.Join(out, "peers.json"))
	if err != nil {
		return nil, fmt.Errorf("rescore: %w", err)
	}
	rs, err := ParseResults(raw)
	if err != nil {
		return nil, fmt.Errorf("rescore: %s: %w", filepath.Join(out, "peers.json"), err)
	}
	fmt.Fprintf(o.Log, "peers: rescoring %d cases of %s against memval as it is now\n", len(cases), out)
	return report(o, out, cases, rs)
}
