package alloc_test

import (
	"fmt"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

// TestDifferentialSteps plays the device-level estimates' steps (load and
// two training steps, or an inference pass) of GPT-2 and Llama models
// through the reference implementation, event by event from the
// estimate's timeline, and compares allocated and reserved after every
// event and the peaks with the estimate's.
func TestDifferentialSteps(t *testing.T) {
	workloads := []struct {
		preset string
		w      model.Workload
	}{
		{"gpt2", model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed}},
		{"gpt2", model.Workload{Batch: 1, Seq: 256}},
		{"gpt2-medium", model.Workload{Batch: 16, Seq: 1024, Precision: model.BF16Mixed, Attention: model.FlashAttention, Checkpointing: model.FullCheckpointing}},
		{"gpt2-xl", model.Workload{Batch: 4, Seq: 1024, Precision: model.BF16Mixed, Attention: model.FlashAttention}},
		{"llama-2-7b", model.Workload{Batch: 1, Seq: 4096, Precision: model.BF16Pure, Attention: model.FlashAttention, ZeRO: 3, DP: 8}},
		{"llama-2-7b", model.Workload{Batch: 2, Seq: 2048, Precision: model.BF16Mixed, Attention: model.FlashAttention, ZeRO: 2, DP: 4, Checkpointing: model.SelectiveCheckpointing}},
		{"llama-3-8b", model.Workload{Batch: 1, Seq: 2048, Precision: model.BF16Mixed, Attention: model.FlashAttention}},
		{"llama-3-8b", model.Workload{Batch: 4, Seq: 512, Precision: model.BF16Pure, Inference: true}},
	}
	confs := []string{"", "expandable_segments:True", "max_split_size_mb:128", "roundup_power2_divisions:4", "max_split_size_mb:32,roundup_power2_divisions:[1:4,>:1]"}
	for _, dw := range workloads {
		for _, conf := range confs {
			name := fmt.Sprintf("%s/b%d/s%d/zero%d/inf%v/%s", dw.preset, dw.w.Batch, dw.w.Seq, dw.w.ZeRO, dw.w.Inference, conf)
			t.Run(name, func(t *testing.T) {
				cfg, err := alloc.ParseConf(conf)
				if err != nil {
					t.Fatal(err)
				}
				a, err := model.Preset(dw.preset)
				if err != nil {
					t.Fatal(err)
				}
				var e analytic.Estimate
				if err := analytic.PredictDevice(&e, "breakdown", a, dw.w, analytic.DeviceOptions{Alloc: cfg, Timeline: true}); err != nil {
					t.Fatal(err)
				}
				tl := e.Device.Timeline
				if len(tl) < 100 {
					t.Fatalf("timeline of %d events, want the played step's hundreds", len(tl))
				}
				ref := alloc.NewRef(cfg, 0)
				ids := map[alloc.BlockID]alloc.BlockID{0: 0}
				for i, pt := range tl {
					if pt.Free {
						ref.Free(ids[pt.ID])
					} else {
						id, err := ref.Malloc(pt.Bytes)
						if err != nil {
							t.Fatal(err)
						}
						ids[pt.ID] = id
					}
					if ref.Allocated() != pt.Allocated || ref.Reserved() != pt.Reserved {
						t.Fatalf("event %d (%s, step %d, free %v, %d B): allocated %d reserved %d, reference %d %d",
							i, pt.Phase, pt.Step, pt.Free, pt.Bytes, pt.Allocated, pt.Reserved, ref.Allocated(), ref.Reserved())
					}
				}
				if ref.MaxAllocated() != e.Device.AllocatedPeak || ref.MaxReserved() != e.Device.ReservedPeak {
					t.Errorf("peaks %d %d, reference %d %d", e.Device.AllocatedPeak, e.Device.ReservedPeak, ref.MaxAllocated(), ref.MaxReserved())
				}
			})
		}
	}
}
