package main

import (
	"fmt"
	"path/filepath"

	"github.com/memval/memval/fit"
)

// allPublished reports whether every run is a published measurement
// (scenarios/published), which fit analyses per basis and per source.
func allPublished(runs []fit.Run) bool {
	for _, r := range runs {
		if !r.IsPublished() {
			return false
		}
	}
	return len(runs) > 0
}

// runFitPublished writes the report on published measurements: per formula
// and basis, per source, leave-one-source-out calibration, the OOM table
// and what is not evaluated yet.
func runFitPublished(opts *fitOptions, runs []fit.Run) error {
	an, err := fit.AnalyzePublished(runs)
	if err != nil {
		return asUsage(err)
	}
	if err := an.WriteReport(opts.out); err != nil {
		return err
	}
	for _, w := range an.Warnings {
		fmt.Fprintln(opts.stderr, "memval: warning:", w)
	}
	an.Counts(opts.stdout)
	an.Headline(opts.stdout)
	fmt.Fprintf(opts.stdout, "report: %s\n", filepath.Join(opts.out, fit.ReportFile))
	return nil
}
