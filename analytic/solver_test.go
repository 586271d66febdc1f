package analytic

import (
	"errors"
	"fmt"
	"testing"

	"github.com/memval/memval/analytic/model"
)

func TestMaxBatch(t *testing.T) {
	a := memPreset(t, "gpt2")
	w := model.Workload{Seq: 1024, Precision: model.BF16Mixed}
	for _, f := range []string{"seed", "korthikanti", "megatron", "eleuther"} {
		for _, budget := range []uint64{4 * GiB, 24 * GiB, 80 * GiB} {
			b, e, err := MaxBatch(f, a, w, budget)
			if err != nil {
				t.Fatalf("%s %s: %v", f, FormatBytes(budget), err)
			}
			if b < 1 || e.Peak > budget {
				t.Fatalf("%s: got batch %d peak %d over budget %d", f, b, e.Peak, budget)
			}
			w2 := w
			w2.Batch = b + 1
			next, err := Predict(f, a, w2)
			if err != nil {
				t.Fatal(err)
			}
			if next.Peak <= budget {
				t.Errorf("%s %s: got %d, but %d fits too (peak %d)", f, FormatBytes(budget), b, b+1, next.Peak)
			}
		}
	}
	b, e, err := MaxBatch("korthikanti", a, w, 1*GiB)
	if b != 0 || !errors.Is(err, ErrNoFit) || e.Peak <= 1*GiB {
		t.Errorf("1 GiB: got %d, peak %d, %v; want 0 with ErrNoFit", b, e.Peak, err)
	}
	if _, _, err := MaxBatch("accelerate", a, w, 80*GiB); !errors.Is(err, ErrUnbounded) {
		t.Errorf("accelerate: got %v, want ErrUnbounded", err)
	}
	if _, _, err := MaxBatch("korthikanti", a, model.Workload{Seq: 4096}, 80*GiB); err == nil {
		t.Error("seq over the position table: got no error")
	}
}

func TestMaxSeq(t *testing.T) {
	a := memPreset(t, "gpt2")
	s, _, err := MaxSeq("korthikanti", a, model.Workload{Batch: 1}, 80*GiB)
	if err != nil || s != 1024 {
		t.Errorf("gpt2 on 80 GiB: got %d %v, want 1024, the position table", s, err)
	}
	a = memPreset(t, "llama-2-7b")
	w := model.Workload{Batch: 1, Precision: model.BF16Mixed, ZeRO: 3, DP: 8, Checkpointing: model.FullCheckpointing}
	s, e, err := MaxSeq("korthikanti", a, w, 80*GiB)
	if err != nil || s < 1024 || e.Peak > 80*GiB {
		t.Fatalf("llama-2-7b zero-3: got %d peak %d %v", s, e.Peak, err)
	}
	w.Seq = s + 1
	if next, err := Predict("korthikanti", a, w); err != nil || next.Peak <= 80*GiB {
		t.Errorf("seq %d fits too: %d %v", s+1, next.Peak, err)
	}
}

func ExampleMaxBatch() {
	a, _ := model.Preset("gpt2")
	b, e, err := MaxBatch("korthikanti", a, model.Workload{Seq: 1024, Precision: model.BF16Mixed}, 24*GiB)
	fmt.Println(b, FormatBytes(e.Peak), err)
	// Output: 18 23.4 GiB <nil>
}

func BenchmarkMaxBatch(b *testing.B) {
	a := memPreset(b, "gpt2")
	w := model.Workload{Seq: 1024, Precision: model.BF16Mixed}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MaxBatch("korthikanti", a, w, 80*GiB); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBreakdown is one full breakdown estimate (every term, steady and
// peak) of GPT-2 124M, reusing the Estimate as a solver or a sweep does.
func BenchmarkBreakdown(b *testing.B) {
	a := memPreset(b, "gpt2")
	w := model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: 0.1}
	var e Estimate
	if err := PredictInto(&e, "breakdown", a, w); err != nil {
		b.Fatal(err)
	}
	want := e.Peak
	b.ReportAllocs()
	for b.Loop() {
		if err := PredictInto(&e, "breakdown", a, w); err != nil {
			b.Fatal(err)
		}
	}
	if e.Peak != want || len(e.Terms) < 30 {
		b.Fatalf("got peak %d with %d terms, want %d", e.Peak, len(e.Terms), want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "estimates/s")
}

// BenchmarkBreakdownPredict is BenchmarkBreakdown through Predict, which
// allocates a new Estimate.Terms each time.
func BenchmarkBreakdownPredict(b *testing.B) {
	a := memPreset(b, "gpt2")
	w := model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed, Dropout: 0.1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Predict("breakdown", a, w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKorthikanti(b *testing.B) {
	a := memPreset(b, "gpt2")
	w := model.Workload{Batch: 8, Seq: 1024, Precision: model.BF16Mixed}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Predict("korthikanti", a, w); err != nil {
			b.Fatal(err)
		}
	}
}
