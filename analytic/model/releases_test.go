package model

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReleases(t *testing.T) {
	cases := []struct {
		field, in string
		want      Release
		bad       string // a word of the error's reason; "" for none
		before    [2]int // a release it is before ({0, 0}: none checked)
		notBefore [2]int
	}{
		{"torch", "", Release{}, "", [2]int{0, 0}, [2]int{99, 0}},
		{"torch", "1.10", Release{1, 10, true}, "", [2]int{1, 11}, [2]int{1, 10}},
		{"torch", "1.10.2", Release{1, 10, true}, "", [2]int{1, 11}, [2]int{1, 10}},
		{"torch", "1.11", Release{1, 11, true}, "", [2]int{2, 0}, [2]int{1, 11}},
		{"torch", "2.11", Release{2, 11, true}, "", [2]int{2, 12}, [2]int{1, 11}},
		{"torch", "1.7", Release{}, "before 1.8", [2]int{}, [2]int{}},
		{"torch", "0.4", Release{}, "before 1.8", [2]int{}, [2]int{}},
		{"torch", "1", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"torch", "1.x", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"torch", "1.10.0.1", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"torch", "1.010", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"torch", "v2.1", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"torch", "2.1+cu121", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
		{"bitsandbytes", "0.42", Release{0, 42, true}, "", [2]int{0, 43}, [2]int{0, 42}},
		{"bitsandbytes", "0.41.3", Release{0, 41, true}, "", [2]int{0, 43}, [2]int{0, 41}},
		{"bitsandbytes", "0.45", Release{0, 45, true}, "", [2]int{1, 0}, [2]int{0, 43}},
		{"bitsandbytes", "0.35", Release{}, "before 0.37", [2]int{}, [2]int{}},
		{"bitsandbytes", "latest", Release{}, "MAJOR.MINOR", [2]int{}, [2]int{}},
	}
	for _, c := range cases {
		parse := ParseTorch
		if c.field == "bitsandbytes" {
			parse = ParseBitsandbytes
		}
		got, err := parse(c.in)
		if c.bad != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Error(), c.bad) {
				t.Errorf("%s %q: got %v, want a %s field error saying %q", c.field, c.in, err, c.field, c.bad)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %q = %v, %v; want %v", c.field, c.in, got, err, c.want)
		}
		if b := c.before; b != [2]int{} && !got.Before(b[0], b[1]) {
			t.Errorf("%s %q: not before %d.%d", c.field, c.in, b[0], b[1])
		}
		if b := c.notBefore; got.Before(b[0], b[1]) {
			t.Errorf("%s %q: before %d.%d", c.field, c.in, b[0], b[1])
		}
	}
	if !(Workload{Torch: "1.10"}).TorchBefore(1, 11) || (Workload{}).TorchBefore(1, 11) {
		t.Error("TorchBefore")
	}
	if !(Workload{Bitsandbytes: "0.42"}).BitsandbytesBefore(0, 43) || (Workload{}).BitsandbytesBefore(0, 43) {
		t.Error("BitsandbytesBefore")
	}
	for _, w := range []Workload{{Batch: 1, Seq: 1, Torch: "1.x"}, {Batch: 1, Seq: 1, Bitsandbytes: "0.1"}} {
		if _, err := w.WithDefaults(); err == nil {
			t.Errorf("WithDefaults accepted %+v", w)
		}
	}
}

// FuzzParseRelease: any string is accepted or refused with a field error,
// never a panic; an accepted release is from the least one on, and Before
// agrees with ordering by (major, minor).
func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{"", "1.10", "2.5.1", "1.7", "0.42", "x", "1..2", "99999.1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, bnb bool) {
		parse, field, least := ParseTorch, "torch", [2]int{1, 8}
		if bnb {
			parse, field, least = ParseBitsandbytes, "bitsandbytes", [2]int{0, 37}
		}
		r, err := parse(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Fatalf("%s %q: %v is not a %s field error", field, s, err, field)
			}
			return
		}
		if s == "" {
			if r != (Release{}) || r.Before(99, 0) {
				t.Fatalf("%s \"\" = %v", field, r)
			}
			return
		}
		if !r.Set || r.Before(least[0], least[1]) || !r.Before(r.Major, r.Minor+1) || r.Before(r.Major, r.Minor) {
			t.Fatalf("%s %q = %v: Before is inconsistent", field, s, r)
		}
	})
}
