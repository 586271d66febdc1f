package model

import (
	"errors"
	"strings"
	"testing"
)

// TestWorkloadEnums checks that WithDefaults accepts exactly the values the
// lists name, and that its error for any other names the field and lists
// them.
func TestWorkloadEnums(t *testing.T) {
	for _, tc := range []struct {
		field   string
		choices []string
		set     func(*Workload, string)
	}{
		{"precision", Precisions(), func(w *Workload, v string) { w.Precision = Precision(v) }},
		{"optimizer", Optimizers(), func(w *Workload, v string) { w.Optimizer = Optimizer(v) }},
		{"attention", Attentions(), func(w *Workload, v string) { w.Attention = Attention(v) }},
		{"checkpointing", Checkpointings(), func(w *Workload, v string) { w.Checkpointing = Checkpointing(v) }},
		{"backend", Backends(), func(w *Workload, v string) { w.Backend = Backend(v) }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if len(tc.choices) < 2 {
				t.Fatalf("got choices %v, want at least two", tc.choices)
			}
			for _, v := range tc.choices {
				w := Workload{Batch: 1, Seq: 1}
				tc.set(&w, v)
				if _, err := w.WithDefaults(); err != nil {
					t.Errorf("%s %s: got %v, want it accepted", tc.field, v, err)
				}
				if err := CheckEnum(tc.field, v, tc.choices); err != nil {
					t.Errorf("CheckEnum(%s, %s): got %v, want nil", tc.field, v, err)
				}
			}
			w := Workload{Batch: 1, Seq: 1}
			tc.set(&w, "nope")
			_, err := w.WithDefaults()
			var fe *FieldError
			want := "unknown value; use one of " + strings.Join(tc.choices, ", ")
			if !errors.As(err, &fe) || fe.Field != tc.field || fe.Reason != want {
				t.Errorf("got %v, want a field error on %s: %s", err, tc.field, want)
			}
			if err := CheckEnum(tc.field, "nope", tc.choices); err == nil || err.Error() != fe.Error() {
				t.Errorf("CheckEnum: got %v, want %v", err, fe)
			}
		})
	}
}

func TestWorkloadEnumDefaults(t *testing.T) {
	w, err := Workload{Batch: 1, Seq: 1}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if w.Precision != FP32 || w.Optimizer != AdamW || w.Attention != MathAttention || w.Checkpointing != NoCheckpointing || w.Backend != CUDA {
		t.Errorf("got %+v, want fp32, adamw, math, none, cuda", w)
	}
}
