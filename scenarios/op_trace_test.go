package scenarios

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// TestPlayerAgainstOpTrace holds the device estimate's play of a step (a
// few blocks per term, layer by layer: analytic/device.go) to an
// operator-level trace of the same step: every storage transformers'
// classes allocate and free in two training steps, in order, recorded on
// fake tensors of the real sizes (testdata/alloc/op_trace.py), replayed
// through the same allocator model. Both see the same allocator rules, so
// this checks the play's simplifications (which tensors, in which order
// and pieces), not the allocator. The cuBLAS workspace the play allocates
// before the first step is added to the trace's replay.
func TestPlayerAgainstOpTrace(t *testing.T) {
	needTorch(t)
	bertLarge := normalized(t, model.Arch{Family: "bert", Layers: 24, Hidden: 1024, Heads: 16, FFN: 4096, Vocab: 30522,
		ContextLength: 512, MaxPositions: 512, TokenTypes: 2, Dropout: 0.1, Head: model.HeadSeqCls, Labels: 2})
	gpt2, err := model.Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	llama := normalized(t, model.Arch{Family: "llama", Layers: 8, Hidden: 2048, Heads: 16, KVHeads: 4, FFN: 5632, Vocab: 32000, ContextLength: 2048})
	type pyCase struct {
		HFConfig      map[string]any `json:"hf_config"`
		Head          string         `json:"head"`
		Batch         int            `json:"batch"`
		Seq           int            `json:"seq"`
		Steps         int            `json:"steps"`
		OptimizerImpl string         `json:"optimizer_impl"`
		ZeroGrad      string         `json:"zero_grad"`
	}
	cases := []struct {
		name string
		a    model.Arch
		w    model.Workload
	}{
		// the published transformers-docs rows' step on torch 2.x
		{"bert-large seq-cls b4 s512, for-loop AdamW, zero_grad zeros", bertLarge, model.Workload{Batch: 4, Seq: 512, Dropout: 0.1,
			OptimizerImpl: model.ImplForLoop, ZeroGrad: model.ZeroGradZeros}},
		{"gpt2 b8 s1024, foreach AdamW", gpt2, model.Workload{Batch: 8, Seq: 1024, Dropout: 0.1, Loss: model.HFLoss}},
		{"llama 8x2048 GQA b2 s2048, foreach AdamW", llama, model.Workload{Batch: 2, Seq: 2048, Loss: model.HFLoss}},
	}
	var in []pyCase
	for i := range cases {
		c := &cases[i]
		c.w.Backend, c.w.Precision, c.w.AttnImpl = model.CUDA, model.FP32, model.EagerAttn
		m, err := HFConfig(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		impl, zg := "foreach", "none"
		if c.w.OptimizerImpl == model.ImplForLoop {
			impl = "for-loop"
		}
		if c.w.ZeroGrad == model.ZeroGradZeros {
			zg = "zeros"
		}
		in = append(in, pyCase{m, string(c.a.Head), c.w.Batch, c.w.Seq, 2, impl, zg})
	}
	traces := pyJSON[[][]any](t, filepath.Join("testdata", "alloc", "op_trace.py"), in)
	for i, c := range cases {
		var e analytic.Estimate
		if err := analytic.PredictDevice(&e, "breakdown", c.a, c.w, analytic.DeviceOptions{}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		d := e.Device
		allocated, reserved, err := replayOpTrace(traces[i], d.Workspace.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ra := float64(d.AllocatedPeak)/float64(allocated) - 1
		rr := float64(d.ReservedPeak)/float64(reserved) - 1
		t.Logf("%-58s allocated: play %6.0f MiB, op trace %6.0f MiB (%+.2f %%); reserved: play %6.0f MiB, op trace %6.0f MiB (%+.2f %%)",
			c.name, mib(d.AllocatedPeak), mib(allocated), 100*ra, mib(d.ReservedPeak), mib(reserved), 100*rr)
		if math.Abs(ra) > 0.02 || math.Abs(rr) > 0.02 {
			t.Errorf("%s: the play's peaks are %+.2f %% (allocated) and %+.2f %% (reserved) from the operator trace's; want both within 2 %%", c.name, 100*ra, 100*rr)
		}
	}
}

// replayOpTrace plays op_trace.py's events through a default allocator,
// with a block of workspace bytes allocated at the first forward, and
// returns its peaks.
func replayOpTrace(events [][]any, workspace uint64) (allocated, reserved uint64, err error) {
	a := alloc.New(alloc.Config{}, 0)
	ids := map[int]alloc.BlockID{}
	ws := false
	for _, ev := range events {
		if len(ev) < 2 {
			return 0, 0, fmt.Errorf("event %v: want [kind, ...]", ev)
		}
		kind, _ := ev[0].(string)
		switch kind {
		case "p":
			if ev[1] == "forward" && !ws && workspace > 0 {
				ws = true
				if _, err := a.Malloc(workspace); err != nil {
					return 0, 0, err
				}
			}
		case "a":
			k, n := ev[1].(float64), ev[2].(float64)
			id, err := a.Malloc(uint64(n))
			if err != nil {
				return 0, 0, err
			}
			ids[int(k)] = id
		case "f":
			k := int(ev[1].(float64))
			if id, ok := ids[k]; ok {
				a.Free(id)
				delete(ids, k)
			}
		default:
			return 0, 0, fmt.Errorf("event %v: unknown kind", ev)
		}
	}
	return a.MaxAllocated(), a.MaxReserved(), nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
