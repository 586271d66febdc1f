package model

import (
	"slices"
	"strings"
	"testing"
)

func TestParseKVCache(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind string
		n    int
		bad  string // part of the error
	}{
		{"", DynamicCache, 0, ""}, {"dynamic", DynamicCache, 0, ""}, {"static", StaticCache, 0, ""},
		{"sliding:4096", "sliding", 4096, ""}, {"quantized:2", "quantized", 2, ""},
		{"sliding:", "", 0, "positive integer"}, {"sliding:1", "", 0, "at least 2"},
		{"quantized:5", "", 0, "1, 2, 3, 4, 8"}, {"paged", "", 0, "unknown cache kind"},
	} {
		kind, n, err := ParseKVCache(c.in)
		switch {
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.bad)
		case c.bad == "" && (err != nil || kind != c.kind || n != c.n):
			t.Errorf("%q = %q, %d, %v; want %q, %d", c.in, kind, n, err, c.kind, c.n)
		}
	}
}

func FuzzParseKVCache(f *testing.F) {
	for _, s := range []string{"", "static", "sliding:8", "quantized:4", "quantized:-1", "sliding:99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, n, err := ParseKVCache(s)
		if err != nil {
			return
		}
		if !slices.Contains([]string{DynamicCache, StaticCache, "sliding", "quantized"}, kind) || n < 0 || n > MaxDim {
			t.Fatalf("%q: kind %q n %d", s, kind, n)
		}
	})
}

func FuzzParsePromptLengths(f *testing.F) {
	for _, s := range []string{"", "1", "512,300,17", "1,,2", "-3", " 4 , 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParsePromptLengths(s)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l < 1 || l > MaxDim {
				t.Fatalf("%q: length %d", s, l)
			}
		}
		w := Workload{Batch: max(len(ls), 1), Seq: 8, Inference: true, PromptLengths: s}
		if _, err := w.WithDefaults(); err != nil && len(ls) > 0 {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
