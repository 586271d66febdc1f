package model

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckLoss(t *testing.T) {
	for _, c := range []struct {
		in     Loss
		ok     bool
		chunks int
		kind   Loss
	}{
		{"", true, 1, ShiftLoss},
		{"shift", true, 1, ShiftLoss},
		{"hf", true, 1, HFLoss},
		{"torchtitan", true, 1, TorchtitanLoss},
		{"nanogpt", true, 1, NanoGPTLoss},
		{"chunked", true, 8, ChunkedLoss},
		{"chunked:16", true, 16, ChunkedLoss},
		{"fused", true, 1, FusedLoss},
		{"chunked:0", false, 0, ""},
		{"chunked:x", false, 0, ""},
		{"hf:2", false, 0, ""},
		{"liger", false, 0, ""},
	} {
		err := CheckLoss("loss", c.in)
		if (err == nil) != c.ok {
			t.Errorf("CheckLoss(%q) = %v, want ok %v", c.in, err, c.ok)
			continue
		}
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "loss" {
				t.Errorf("CheckLoss(%q): %v, want a *FieldError naming loss", c.in, err)
			}
			continue
		}
		if c.in.Chunks() != c.chunks || c.in.Kind() != c.kind {
			t.Errorf("%q: kind %q chunks %d, want %q %d", c.in, c.in.Kind(), c.in.Chunks(), c.kind, c.chunks)
		}
	}
	w := Workload{Batch: 1, Seq: 8, Loss: "chunky"}
	if _, err := w.WithDefaults(); err == nil || !strings.Contains(err.Error(), "loss") {
		t.Errorf("WithDefaults with loss chunky: %v, want an error naming loss", err)
	}
}

func FuzzCheckLoss(f *testing.F) {
	for _, s := range []string{"", "hf", "chunked:8", "chunked:", "fused:1", ":", "chunked:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := Loss(s)
		if err := CheckLoss("loss", l); err == nil {
			if n := l.Chunks(); n < 1 || n > MaxDim {
				t.Errorf("%q accepted with %d chunks", s, n)
			}
		}
	})
}

func FuzzCheckCheckpointing(f *testing.F) {
	for _, s := range []string{"", "none", "full", "selective", "layers:2", "layers:", "layers:-1", "ops:x", "ops:torchtitan"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Checkpointing(s)
		err := CheckCheckpointing("checkpointing", c)
		if err == nil && c.EveryNth() == 0 && c.OpsPolicy() != TorchtitanOpsPolicy && CheckEnum("checkpointing", s, Checkpointings()) != nil {
			t.Errorf("%q accepted but neither a plain value, layers:N nor ops:POLICY", s)
		}
	})
}
