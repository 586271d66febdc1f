package fit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
	"github.com/memval/memval/profiler"
	"github.com/memval/memval/profiler/schema"
)

// ResultFile is the name Load looks for when it walks a folder.
const ResultFile = "result.json"

// Warning is a note about one file: a run left out of the statistics, a
// field that was missing, an assumption made. Path is the file, Field the
// JSON field (dotted) when one is to blame.
type Warning struct {
	Path    string `json:"path,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	var b strings.Builder
	if w.Path != "" {
		b.WriteString(w.Path)
		b.WriteString(": ")
	}
	if w.Field != "" {
		b.WriteString(w.Field)
		b.WriteString(": ")
	}
	b.WriteString(w.Message)
	return b.String()
}

// Group is what runs must share to be compared: the GPU model, the driver,
// the framework version and whether the device was simulated.
type Group struct {
	GPU       string `json:"gpu"`
	Driver    string `json:"driver"`
	CUDA      string `json:"cuda,omitempty"` // informative; not part of the key
	Torch     string `json:"torch"`
	Simulated bool   `json:"simulated"`
}

// Key is the group's identity: GPU, driver, torch and simulated.
func (g Group) Key() string {
	s := fmt.Sprintf("%s / driver %s / torch %s", orUnknown(g.GPU), orUnknown(g.Driver), orUnknown(g.Torch))
	if g.Simulated {
		s += " (simulated)"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Run is one result.json that Load could read.
type Run struct {
	Path   string         // the result.json file
	Result *schema.Result // as decoded
	// Predictions are Result.Predictions decoded.
	Predictions []analytic.Estimate
	Arch        *model.Arch     // from the scenario; nil when it did not say
	Workload    *model.Workload // from the scenario; nil when it did not say
	Group       Group
	// TotalBytes is the GPU's memory (the OOM budget) or a budget the
	// scenario set (budget_bytes); 0 when unknown.
	TotalBytes uint64
	// Excluded says why the run cannot enter any statistic (failed, no
	// predictions); empty for usable and OOM runs.
	Excluded string
}

// OOM reports whether the run ran out of memory.
func (r Run) OOM() bool {
	return r.Result.Summary.OOM || r.Result.Summary.Status == "oom"
}

// Name is a short label for the run: its folder's name.
func (r Run) Name() string {
	return filepath.Base(filepath.Dir(r.Path))
}

// Tokens is B*S, tokens per micro-batch, or 0 when the workload is unknown.
func (r Run) Tokens() int {
	if r.Workload == nil {
		return 0
	}
	return r.Workload.Batch * r.Workload.Seq
}

// Prediction returns the run's prediction by formula, or nil.
func (r Run) Prediction(formula string) *analytic.Estimate {
	for i := range r.Predictions {
		if r.Predictions[i].Formula == formula {
			return &r.Predictions[i]
		}
	}
	return nil
}

// Load reads result.json files. Each path is a file, a folder (walked for
// files named result.json) or a glob. Runs come back sorted by path, with
// failed runs and runs without predictions marked Excluded and a warning
// naming the file and field; out-of-memory runs are kept (Run.OOM) for the
// OOM table. A path that matches nothing or a file that is not a result is
// an error.
func Load(paths ...string) ([]Run, []Warning, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("no result files given: name result.json files, folders or globs")
	}
	files, err := expand(paths)
	if err != nil {
		return nil, nil, err
	}
	var runs []Run
	var warns []Warning
	for _, f := range files {
		r, w, err := readRun(f)
		if err != nil {
			return nil, nil, err
		}
		runs = append(runs, r)
		warns = append(warns, w...)
	}
	return runs, warns, nil
}

// expand turns files, folders and globs into a sorted, deduplicated list of
// files.
func expand(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		matches := []string{p}
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("glob %q: %w", p, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("glob %q matches no file", p)
			}
			matches = m
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil {
				return nil, fmt.Errorf("results: %w", err)
			}
			if !st.IsDir() {
				add(m)
				continue
			}
			n := 0
			err = filepath.WalkDir(m, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && d.Name() == ResultFile {
					add(path)
					n++
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("walk %s: %w", m, err)
			}
			if n == 0 {
				return nil, fmt.Errorf("folder %s holds no %s", m, ResultFile)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// scenarioView is the part of the scenario spec that fit reads: its
// resolved arch and workload, and an optional memory budget.
type scenarioView struct {
	Arch        *model.Arch     `json:"arch"`
	Workload    *model.Workload `json:"workload"`
	BudgetBytes uint64          `json:"budget_bytes"`
}

// readRun reads one result.json with schema.ReadResult (errors name the
// file and the field) and classifies it.
func readRun(path string) (Run, []Warning, error) {
	res, err := schema.ReadResult(path)
	if err != nil {
		return Run{}, nil, err
	}
	preds, err := analytic.DecodeEstimates(res.Predictions)
	if err != nil {
		return Run{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	r, w := classifyRun(path, res)
	r.Predictions = preds
	return r, w, nil
}

// classifyRun reads the scenario, environment and summary of a decoded
// result.
func classifyRun(path string, res *schema.Result) (Run, []Warning) {
	r := Run{Path: path, Result: res}
	var warns []Warning
	warn := func(field, format string, args ...any) {
		warns = append(warns, Warning{Path: path, Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if len(res.Scenario) > 0 && string(res.Scenario) != "null" {
		var sv scenarioView
		if err := json.Unmarshal(res.Scenario, &sv); err != nil {
			warn("scenario", "unreadable (%v): run has no workload for the breakdowns", err)
		} else {
			r.Arch, r.Workload = sv.Arch, sv.Workload
			r.TotalBytes = sv.BudgetBytes
		}
	}
	if r.Workload == nil {
		warn("scenario.workload", "missing: the run counts only in overall statistics")
	} else if r.Workload.Batch <= 0 || r.Workload.Seq <= 0 {
		warn("scenario.workload", "batch %d, seq %d: not a training shape; the run counts only in overall statistics", r.Workload.Batch, r.Workload.Seq)
		r.Workload = nil
	}

	env := res.Env
	var gpu profiler.GPU
	for _, g := range env.GPUs {
		if g.Index == res.Summary.GPU {
			gpu = g
			break
		}
	}
	if gpu.Name == "" && len(env.GPUs) > 0 {
		gpu = env.GPUs[0]
	}
	r.Group = Group{GPU: gpu.Name, Driver: env.Versions.Driver, CUDA: env.Versions.CUDA, Torch: env.Torch, Simulated: res.Simulated}
	if r.TotalBytes == 0 {
		r.TotalBytes = gpu.TotalBytes
	}

	switch st := res.Summary.Status; {
	case r.OOM():
		// kept for the OOM table
	case st != "" && st != "ok":
		r.Excluded = "status " + st
		warn("summary.status", "%q: the run is left out of the statistics", st)
	case len(res.Predictions) == 0:
		r.Excluded = "no predictions"
		warn("predictions", "missing: the run was profiled, not validated (run memval validate); left out")
	}
	return r, warns
}

// Groups lists the groups of runs in the order of their first run, with how
// many runs each holds.
func Groups(runs []Run) []GroupCount {
	var out []GroupCount
	idx := map[string]int{}
	for _, r := range runs {
		k := r.Group.Key()
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, GroupCount{Group: r.Group})
		}
		out[i].Runs++
	}
	return out
}

// GroupCount is a group and the number of runs in it.
type GroupCount struct {
	Group Group
	Runs  int
}

// ErrMixedGroups is returned (wrapped) when runs from several groups are
// given without a group selected or mixing allowed.
var ErrMixedGroups = errors.New("results come from different GPUs, drivers or torch versions")

// SelectGroup keeps the runs whose group matches sel: the group's key, or a
// case-insensitive substring of exactly one group's key. An empty sel keeps
// every run if they all share one group and returns ErrMixedGroups (listing
// the groups) otherwise, unless allowMixed.
func SelectGroup(runs []Run, sel string, allowMixed bool) ([]Run, error) {
	groups := Groups(runs)
	list := func() string {
		var b strings.Builder
		for _, g := range groups {
			fmt.Fprintf(&b, "\n  %q (%d runs)", g.Group.Key(), g.Runs)
		}
		return b.String()
	}
	if sel == "" {
		if len(groups) > 1 && !allowMixed {
			return nil, fmt.Errorf("%w: choose one with --group or compare them anyway with --allow-mixed; groups:%s", ErrMixedGroups, list())
		}
		return runs, nil
	}
	var match []string
	for _, g := range groups {
		k := g.Group.Key()
		if k == sel {
			match = []string{k}
			break
		}
		if strings.Contains(strings.ToLower(k), strings.ToLower(sel)) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("group %q matches none of:%s", sel, list())
	case 1:
	default:
		return nil, fmt.Errorf("group %q matches %d groups; give more of the name:%s", sel, len(match), list())
	}
	var out []Run
	for _, r := range runs {
		if r.Group.Key() == match[0] {
			out = append(out, r)
		}
	}
	return out, nil
}
