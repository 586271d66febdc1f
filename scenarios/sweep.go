package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/profiler/schema"
)

// SweepOptions configure Sweep. OutDir is required; Validate's OutDir is
// ignored (each scenario gets OutDir/<name>).
type SweepOptions struct {
	OutDir   string
	Jobs     int // scenarios run at once; 0 or 1: one after the other
	Validate ValidateOptions

	// Progress, when set, is called (never concurrently) as each scenario
	// starts and ends, and once for each skipped one.
	Progress func(SweepUpdate)
}

// SweepUpdate is one change of a sweep's state, for progress displays.
type SweepUpdate struct {
	Done, Total int   // scenarios finished (skipped ones included) and in all
	Entry       Entry // the scenario that started (Status "running") or ended
}

// Entry is one scenario of a sweep and what became of it.
type Entry struct {
	Name    string
	Dir     string // OutDir/<name>
	Status  string // a Verdict status, "skipped" for one done by an earlier sweep, or "running"
	Skipped bool
	Result  *schema.Result // nil when memval could not run it
	// Elsewhere: another sweep sharing the folder ran it (while this one
	// waited for its claim); Skipped is set too.
	Elsewhere bool
	Verdict   *Verdict
	Err       error // what kept memval from running it (also in result.json's notices)
}

// Sweep statuses that are not verdicts.
const (
	StatusRunning = "running"
	StatusSkipped = "skipped"
)

// SweepReport is a finished (or interrupted) sweep.
type SweepReport struct {
	Entries     []Entry // in the grid's order
	Ran         int
	Skipped     int
	Elsewhere   int  // of the skipped, those another sweep ran meanwhile
	Failed      int  // entries whose verdict is failed or error
	Interrupted bool // ctx was cancelled: the entries not run have Status ""
}

// Sweep runs every spec with Validate, each in OutDir/<name>/. A scenario
// whose folder holds a complete result (see Complete) is skipped (read
// back for the report), so a sweep can be resumed; anything else is rerun.
// Sweeps may share OutDir: each runs a scenario only while it holds the
// scenario's claim (see ClaimFile), so no two ever run or write the same
// one, and a sweep waits at the end for the scenarios another one is
// running and reports them.
// Every result is written atomically as its scenario ends, so finished
// results survive an interruption. Cancelling ctx interrupts the scenarios
// running (they are recorded as interrupted) and starts no more.
//
// Failures and OOMs are results (see Verdict); an error that keeps memval
// from running a scenario (no device, an unwritable folder) is recorded in
// its result.json with status "error", reported, and retried by the next
// sweep. The returned error is for the sweep itself.
func Sweep(ctx context.Context, specs []*Spec, opts SweepOptions) (*SweepReport, error) {
	if opts.OutDir == "" {
		return nil, errors.New("sweep: no output folder")
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	rep := &SweepReport{Entries: make([]Entry, len(specs))}
	var mu sync.Mutex // guards rep, done and Progress calls
	done := 0
	update := func(i int) {
		if opts.Progress != nil {
			opts.Progress(SweepUpdate{Done: done, Total: len(specs), Entry: rep.Entries[i]})
		}
	}
	var todo []int
	for i, s := range specs {
		dir := filepath.Join(opts.OutDir, s.Name)
		rep.Entries[i] = Entry{Name: s.Name, Dir: dir}
		if res, sc, ok := finished(dir); ok {
			rep.Entries[i].Status, rep.Entries[i].Skipped = StatusSkipped, true
			rep.Entries[i].Result, rep.Entries[i].Verdict = res, &sc.Verdict
			rep.Skipped++
			done++
			update(i)
			continue
		}
		todo = append(todo, i)
	}

	// Each scenario runs under its claim (see ClaimFile). One another sweep
	// holds is deferred: once this sweep's own queue is done, it waits for
	// the claim and then reads the other sweep's result, or runs the
	// scenario when there is none (that sweep died or was interrupted).
	var (
		deferred []int
		fatal    error
	)
	runOne := func(i int, wait bool) {
		s := specs[i]
		e := &rep.Entries[i]
		c, err := claimScenario(e.Dir)
		for wait && errors.Is(err, errClaimed) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(claimPoll):
			}
			c, err = claimScenario(e.Dir)
		}
		if errors.Is(err, errClaimed) {
			if !wait {
				mu.Lock()
				deferred = append(deferred, i)
				mu.Unlock()
			}
			return
		}
		if err != nil {
			mu.Lock()
			if fatal == nil {
				fatal = err
			}
			mu.Unlock()
			return
		}
		defer c.release()
		if res, sc, ok := finished(e.Dir); ok { // another sweep finished it meanwhile
			mu.Lock()
			e.Status, e.Skipped, e.Elsewhere = StatusSkipped, true, true
			e.Result, e.Verdict = res, &sc.Verdict
			rep.Skipped++
			rep.Elsewhere++
			done++
			update(i)
			mu.Unlock()
			return
		}
		// What an earlier, unfinished run left must not pass for this one's.
		os.Remove(filepath.Join(e.Dir, schema.ResultFile))

		mu.Lock()
		e.Status = StatusRunning
		update(i)
		mu.Unlock()

		vo := opts.Validate
		vo.OutDir = e.Dir
		v, err := Validate(ctx, s, vo)
		if v == nil && err != nil {
			v = recordError(s, e.Dir, opts.Validate.Tool, err)
		}

		mu.Lock()
		e.Err = err
		if v != nil {
			e.Result, e.Verdict = v.Result, &v.Scenario.Verdict
			e.Status = v.Scenario.Verdict.Status
		}
		rep.Ran++
		if e.Status == VerdictFailed || e.Status == VerdictError {
			rep.Failed++
		}
		done++
		update(i)
		mu.Unlock()
	}

	jobs := max(opts.Jobs, 1)
	pool := func(queue []int, wait bool) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(jobs, max(len(queue), 1)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					runOne(i, wait)
				}
			}()
		}
	feed:
		for _, i := range queue {
			mu.Lock()
			stop := fatal != nil
			mu.Unlock()
			if ctx.Err() != nil || stop {
				break
			}
			select {
			case <-ctx.Done():
				break feed
			case next <- i:
			}
		}
		close(next)
		wg.Wait()
	}
	pool(todo, false)
	if fatal == nil && ctx.Err() == nil && len(deferred) > 0 {
		sort.Ints(deferred)
		pool(deferred, true)
	}
	rep.Interrupted = ctx.Err() != nil
	if fatal != nil {
		return rep, fmt.Errorf("sweep: %w", fatal)
	}
	return rep, nil
}

// claimPoll is how often a sweep retries a claim another sweep holds.
const claimPoll = 200 * time.Millisecond

// finished reports whether dir holds a complete result (see Complete).
func finished(dir string) (*schema.Result, Scenario, bool) {
	res, sc, err := Complete(dir)
	return res, sc, err == nil
}

// recordError writes a result.json saying why memval could not run s, so
// that the sweep's folder tells the whole story; the next sweep retries it.
func recordError(s *Spec, dir, tool string, cause error) *Validation {
	sc := Scenario{Spec: s, Steps: s.StepsOrDefault(), Warmup: s.WarmupOrDefault(), Formula: s.FormulaOrDefault(), Tolerance: s.ToleranceOrDefault(),
		Verdict: Verdict{Status: VerdictError, ExitCode: 1, Message: cause.Error()}}
	if a, w, err := s.Resolve(); err == nil {
		sc.Arch, sc.Workload = a, w
	}
	res := &schema.Result{Schema: schema.ResultSchema, Tool: tool, Simulated: true,
		Summary: schema.Summary{Status: VerdictError}, Notices: []string{cause.Error()}}
	if raw, err := json.Marshal(sc); err == nil {
		res.Scenario = raw
	}
	if os.MkdirAll(dir, 0o755) == nil {
		schema.WriteResult(dir, res) // best effort: the error is reported either way
	}
	return &Validation{Result: res, Scenario: sc}
}

// WriteSummary prints the sweep's table: scenario, status, measured peak
// (process truth) and each formula's relative peak error; then the counts.
func (r *SweepReport) WriteSummary(w io.Writer) error {
	formulas := r.formulas()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tstatus\tpeak\t%s\n", strings.Join(formulas, "\t"))
	for _, e := range r.Entries {
		status := e.Status
		if status == "" {
			status = "not run"
		}
		peak := "-"
		errs := make([]string, len(formulas))
		for i := range errs {
			errs[i] = "-"
		}
		if e.Result != nil && e.Result.Summary.PeakProcessBytes > 0 {
			peak = gib(e.Result.Summary.PeakProcessBytes)
			for _, c := range e.Result.Comparisons {
				if c.Quantity != "peak" || c.Truth != TruthProcess {
					continue
				}
				for i, f := range formulas {
					if f == c.Formula {
						errs[i] = fmt.Sprintf("%+.1f%%", c.RelError*100)
					}
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, status, peak, strings.Join(errs, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d scenario(s): %d run, %d skipped (already done), %d failed", len(r.Entries), r.Ran, r.Skipped, r.Failed)
	if r.Elsewhere > 0 {
		fmt.Fprintf(w, ", %d run by another sweep sharing the folder", r.Elsewhere)
	}
	if r.Interrupted {
		fmt.Fprintf(w, ", %d not run (interrupted)", len(r.Entries)-r.Ran-r.Skipped)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// formulas lists the formulas of the entries' predictions, in first-seen order.
func (r *SweepReport) formulas() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range r.Entries {
		if e.Result == nil {
			continue
		}
		preds, err := analytic.DecodeEstimates(e.Result.Predictions)
		if err != nil {
			continue // a damaged result names no formula
		}
		for _, p := range preds {
			if !seen[p.Formula] {
				seen[p.Formula] = true
				out = append(out, p.Formula)
			}
		}
	}
	return out
}

// Counts of entries by status, for tests and summaries.
func (r *SweepReport) Counts() map[string]int {
	m := map[string]int{}
	for _, e := range r.Entries {
		m[e.Status]++
	}
	return m
}
