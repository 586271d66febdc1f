package model

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTorch(t *testing.T) {
	cases := []struct {
		in      string
		want    TorchRelease
		bad     string // a word of the error's reason; "" for none
		before1 bool   // Before(1, 11)
	}{
		{"", TorchRelease{}, "", false},
		{"1.10", TorchRelease{1, 10}, "", true},
		{"1.10.2", TorchRelease{1, 10}, "", true},
		{"1.11", TorchRelease{1, 11}, "", false},
		{"1.8", TorchRelease{1, 8}, "", true},
		{"2.11", TorchRelease{2, 11}, "", false},
		{"1.7", TorchRelease{}, "before 1.8", false},
		{"0.4", TorchRelease{}, "before 1.8", false},
		{"1", TorchRelease{}, "MAJOR.MINOR", false},
		{"1.x", TorchRelease{}, "MAJOR.MINOR", false},
		{"1.10.0.1", TorchRelease{}, "MAJOR.MINOR", false},
		{"1.010", TorchRelease{}, "MAJOR.MINOR", false},
		{"v2.1", TorchRelease{}, "MAJOR.MINOR", false},
		{"2.1+cu121", TorchRelease{}, "MAJOR.MINOR", false},
	}
	for _, c := range cases {
		got, err := ParseTorch(c.in)
		if c.bad != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "torch" || !strings.Contains(fe.Error(), c.bad) {
				t.Errorf("ParseTorch(%q): got %v, want a torch field error saying %q", c.in, err, c.bad)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseTorch(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if b := (Workload{Torch: c.in}).TorchBefore(1, 11); b != c.before1 {
			t.Errorf("TorchBefore(1, 11) for %q = %v, want %v", c.in, b, c.before1)
		}
	}
	if _, err := (Workload{Batch: 1, Seq: 1, Torch: "1.x"}).WithDefaults(); err == nil {
		t.Error("WithDefaults accepted torch 1.x")
	}
}

// FuzzParseTorch: any string is accepted or refused with a field error,
// never a panic; an accepted one is from 1.8 on, and Before agrees with
// ordering by (major, minor).
func FuzzParseTorch(f *testing.F) {
	for _, s := range []string{"", "1.10", "2.5.1", "1.7", "x", "1..2", "99999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTorch(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "torch" {
				t.Fatalf("ParseTorch(%q): %v is not a torch field error", s, err)
			}
			return
		}
		if s == "" {
			if r != (TorchRelease{}) || r.Before(99, 0) {
				t.Fatalf("ParseTorch(\"\") = %v", r)
			}
			return
		}
		if r.Before(1, 8) || !r.Before(r.Major, r.Minor+1) || r.Before(r.Major, r.Minor) {
			t.Fatalf("ParseTorch(%q) = %v: Before is inconsistent", s, r)
		}
	})
}
