package analytic

import (
	"fmt"
	"testing"

	"github.com/memval/memval/analytic/alloc"
	"github.com/memval/memval/analytic/model"
)

func deviceEstimate(t testing.TB, formula, preset string, w model.Workload, opts DeviceOptions) Estimate {
	t.Helper()
	a, err := model.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	var e Estimate
	if err := PredictDevice(&e, formula, a, w, opts); err != nil {
		t.Fatal(err)
	}
	return e
}

var deviceWorkloads = []struct {
	preset string
	w      model.Workload
}{
	{"gpt2", model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed}},
	{"gpt2", model.Workload{Batch: 1, Seq: 256}},
	{"gpt2-medium", model.Workload{Batch: 16, Seq: 1024, Precision: model.BF16Mixed, Attention: model.FlashAttention, Checkpointing: model.FullCheckpointing}},
	{"gpt2-xl", model.Workload{Batch: 4, Seq: 1024, Precision: model.BF16Mixed, Attention: model.FlashAttention}},
	{"llama-2-7b", model.Workload{Batch: 1, Seq: 4096, Precision: model.BF16Pure, Attention: model.FlashAttention, ZeRO: 3, DP: 8}},
	{"llama-2-7b", model.Workload{Batch: 2, Seq: 2048, Precision: model.BF16Mixed, Attention: model.FlashAttention, ZeRO: 2, DP: 4, Checkpointing: model.SelectiveCheckpointing}},
	{"llama-3-8b", model.Workload{Batch: 4, Seq: 512, Precision: model.BF16Pure, Inference: true}},
	{"gpt2", model.Workload{Batch: 4, Seq: 512, Inference: true}},
}

// TestDevicePeaksOrdered: allocated <= reserved <= device for every
// formula and workload, and the breakdown's played allocated peak is
// within a few percent of its own peak less the context.
func TestDevicePeaksOrdered(t *testing.T) {
	for _, dw := range deviceWorkloads {
		for _, f := range Formulas() {
			name := fmt.Sprintf("%s/%s/b%d/s%d/inf%v", f, dw.preset, dw.w.Batch, dw.w.Seq, dw.w.Inference)
			a, _ := model.Preset(dw.preset)
			var e Estimate
			err := PredictDevice(&e, f, a, dw.w, DeviceOptions{})
			if err != nil {
				continue // not applicable
			}
			d := e.Device
			if d == nil || !(d.AllocatedPeak <= d.ReservedPeak && d.ReservedPeak <= d.DevicePeak) || d.AllocatedPeak == 0 {
				t.Errorf("%s: got %+v, want allocated <= reserved <= device, above 0", name, d)
				continue
			}
			if f != "breakdown" {
				continue
			}
			ctx, _ := e.Term("cuda_context")
			want := float64(e.Peak - ctx.Bytes)
			if got := float64(d.AllocatedPeak); got < 0.95*want || got > 1.05*want {
				t.Errorf("%s: played allocated peak %d, breakdown's peak less context %.0f: more than 5%% apart", name, d.AllocatedPeak, want)
			}
		}
	}
}

// TestExpandableNeverReservesMore: on the played steps, expandable
// segments reserve no more than the default segments, give or take the
// last page of each pool (20 MiB large, 2 MiB small).
func TestExpandableNeverReservesMore(t *testing.T) {
	exp, err := alloc.ParseConf("expandable_segments:True")
	if err != nil {
		t.Fatal(err)
	}
	for _, dw := range deviceWorkloads {
		plain := deviceEstimate(t, "breakdown", dw.preset, dw.w, DeviceOptions{})
		e := deviceEstimate(t, "breakdown", dw.preset, dw.w, DeviceOptions{Alloc: exp})
		if e.Device.ReservedPeak > plain.Device.ReservedPeak+alloc.LargeBuffer+alloc.SmallBuffer {
			t.Errorf("%s b%d: expandable reserves %d, default %d", dw.preset, dw.w.Batch, e.Device.ReservedPeak, plain.Device.ReservedPeak)
		}
		if e.Device.AllocatedPeak > plain.Device.AllocatedPeak+alloc.LargeBuffer {
			t.Errorf("%s b%d: expandable allocates %d, default %d", dw.preset, dw.w.Batch, e.Device.AllocatedPeak, plain.Device.AllocatedPeak)
		}
	}
}

func TestDeviceReport(t *testing.T) {
	for _, dw := range deviceWorkloads {
		e := deviceEstimate(t, "breakdown", dw.preset, dw.w, DeviceOptions{})
		d := e.Device
		t.Logf("%s b%d s%d: peak %s alloc %s reserved %s (+%.1f%%) device %s", dw.preset, dw.w.Batch, dw.w.Seq, FormatBytes(e.Peak),
			FormatBytes(d.AllocatedPeak), FormatBytes(d.ReservedPeak), 100*(float64(d.ReservedPeak)/float64(d.AllocatedPeak)-1), FormatBytes(d.DevicePeak))
	}
}

// BenchmarkDeviceEstimateGPT2 is a full device-level estimate of GPT-2
// 124M (batch 8, seq 1024, bf16 autocast): the breakdown and its two
// steps played through the allocator model. Goal: under 50 µs.
func BenchmarkDeviceEstimateGPT2(b *testing.B) {
	a, err := model.Preset("gpt2")
	if err != nil {
		b.Fatal(err)
	}
	w := model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed}
	var e Estimate
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := PredictDevice(&e, "breakdown", a, w, DeviceOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
