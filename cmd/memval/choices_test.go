package main

import "testing"

func TestOrList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"fp32", "fp16", "bf16"}, "fp32, fp16 or bf16"},
	} {
		if got := orList(tc.in); got != tc.want {
			t.Errorf("orList(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}
