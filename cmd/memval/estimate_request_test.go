package main

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/estimate"
	"github.com/memval/memval/analytic/model"
)

// estimateRequest parses args as estimate's flags and returns the request
// they build, without running anything.
func estimateRequest(t *testing.T, args ...string) (estimate.Request, error) {
	t.Helper()
	var got *estimateOptions
	c := newEstimateCmdWith(streams{}, func(_ context.Context, o *estimateOptions) error { got = o; return nil })
	c.SetArgs(args)
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	return got.request()
}

func TestEstimateRequest(t *testing.T) {
	gpt2, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	defaults := model.Workload{Batch: 1, Seq: 1024, Precision: model.FP32, Optimizer: model.AdamW, Dropout: -1,
		Attention: model.MathAttention, Checkpointing: model.NoCheckpointing, Backend: model.CUDA, DP: 1, TP: 1}
	for _, tc := range []struct {
		name string
		args []string
		want func(*estimate.Request)
	}{
		{"defaults", nil, func(*estimate.Request) {}},
		{"workload", []string{"--batch", "8", "--seq", "512", "--precision", "bf16-master", "--optimizer", "sgd",
			"--dropout", "0.2", "--attention", "flash", "--checkpointing", "selective", "--backend", "cpu",
			"--zero", "2", "--dp", "4", "--tp", "2", "--sp", "--inference"}, func(r *estimate.Request) {
			r.Workload = model.Workload{Batch: 8, Seq: 512, Precision: model.BF16Master, Optimizer: model.SGD, Dropout: 0.2,
				Attention: model.FlashAttention, Checkpointing: model.SelectiveCheckpointing, Backend: model.CPU,
				ZeRO: 2, DP: 4, TP: 2, SP: true, Inference: true}
		}},
		{"fit and search", []string{"--formula", "all", "--budget", "24GiB", "--max-batch", "--calibration", "c.json"},
			func(r *estimate.Request) {
				r.Formula, r.Budget, r.MaxBatch, r.Calibration = "all", "24GiB", true, "c.json"
			}},
		{"gpu and max seq", []string{"--gpu", "l4", "--max-seq"}, func(r *estimate.Request) { r.GPU, r.MaxSeq = "l4", true }},
		// Values are passed down unchecked: estimate.Run judges them.
		{"bad values pass down", []string{"--precision", "fp8", "--dp", "0", "--formula", "magic"}, func(r *estimate.Request) {
			r.Workload.Precision, r.Workload.DP, r.Formula = "fp8", 0, "magic"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := estimateRequest(t, append([]string{"--model", "gpt2"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			want := estimate.Request{Arch: gpt2, Workload: defaults, Formula: "breakdown"}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestEstimateRequestModelErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no model given"},
		{[]string{"--model", "gpt5"}, `--model: unknown model preset "gpt5"`},
		{[]string{"--model", "gpt2", "--config", "c.json"}, "exclusive"},
	} {
		_, err := estimateRequest(t, tc.args...)
		var usage *usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}
