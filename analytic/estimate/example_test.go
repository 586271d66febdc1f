package estimate_test

import (
	"fmt"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

// GPT-2 small, batch 8 of 1024 tokens in bf16 autocast: does one training
// step fit an H100, and how large a batch would?
func ExampleRun() {
	a, err := model.Preset("gpt2")
	if err != nil {
		panic(err)
	}
	req := estimate.Request{
		Arch:     a,
		Workload: model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: -1, DP: 1, TP: 1},
		Formula:  "korthikanti",
		GPU:      "h100-80gb",
	}
	rep, err := estimate.Run(req)
	if err != nil {
		panic(err)
	}
	r := rep.Results[0]
	e := rep.Estimates[0]
	fmt.Printf("peak %s, device peak %s, fits %v, %s free\n", analytic.FormatBytes(e.Peak), analytic.FormatBytes(e.Device.DevicePeak), r.Fits, analytic.FormatBytes(r.FreeBytes))

	req.MaxBatch = true
	if rep, err = estimate.Run(req); err != nil {
		panic(err)
	}
	fmt.Println("max batch:", *rep.MaxBatch)
	// Output:
	// peak 11.4 GiB, device peak 11.8 GiB, fits true, 67.8 GiB free
	// max batch: 64
}
