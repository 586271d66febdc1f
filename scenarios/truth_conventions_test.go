package scenarios

import (
	"fmt"
	"math"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestLossConventionsTruth: for each loss convention and each
// checkpointing policy train.py writes out (layers:N) (model.Loss), the
// hand-built program with the convention written out as its library
// computes it (train.py's build_losses) saves what analytic.SavedActivations
// says, within 0.1%, for tiny GPT-2 and Llama models in fp32, bf16 autocast
// and pure bf16 on the CPU. The transformers-built model's own loss is the
// hf convention: TestTransformersTruth checks it.
func TestLossConventionsTruth(t *testing.T) {
	needTorch(t)
	gpt2 := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for _, loss := range []model.Loss{model.HFLoss, model.TorchtitanLoss, model.NanoGPTLoss, "chunked:4", model.FusedLoss} {
		for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
			for _, a := range []model.Arch{gpt2, llama} {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec, Loss: loss, FreeLogits: true}})
			}
		}
	}
	cases = append(cases, tc{gpt2, model.Workload{Batch: 1, Seq: 48, Loss: "chunked:3"}})
	// torchtitan's every-Nth-layer checkpointing (layers:N), 3 layers
	for _, a := range []model.Arch{gpt2, llama} {
		a.Layers = 3
		for _, ck := range []model.Checkpointing{"layers:1", "layers:2", "layers:4"} {
			for _, prec := range []model.Precision{model.FP32, model.BF16Mixed} {
				cases = append(cases, tc{a, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}})
			}
		}
	}
	jobs := make([]TrainJob, len(cases))
	for i := range cases {
		cases[i].w.Backend = model.CPU
		jobs[i] = TrainJob{Arch: cases[i].a, Workload: cases[i].w, Steps: 1, Seed: 1, Device: "cpu",
			MeasureSaved: true, Impl: "hand", ListSaved: true}
	}
	res := runTruthJobs(t, jobs)
	for i, c := range cases {
		name := fmt.Sprintf("%s %s loss %s ckpt %s B%d", c.a.Family, c.w.Precision, c.w.Loss, c.w.Checkpointing, c.w.Batch)
		terms, err := analytic.SavedActivations(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(analytic.SavedBytes(terms))
		got := float64(res[i].SavedBytes[0])
		t.Logf("%-34s analytic %8.0f hand %8.0f (%+.3f%%)", name, want, got, 100*(got/want-1))
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: hand-built saved %.0f bytes, want analytic %.0f (%+.3f%%); saved tensors:\n%v", name, got, want, 100*(got/want-1), res[i].Saved)
		}
	}
}
