package main

import (
	"strings"
	"testing"
)

// TestEstimateVision: a vision model's workload sees its tokens per image
// as the sequence (--seq defaults to it; another value and --max-seq are
// usage errors naming it), and params prints the image instead of a
// vocabulary.
func TestEstimateVision(t *testing.T) {
	cfg := "../../analytic/model/testdata/hf-configs/vit-base-patch16-224.json"
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout (code 0) or stderr
	}{
		{[]string{"estimate", "--config", cfg, "--batch", "8"}, 0, "batch 8, seq 197"},
		{[]string{"estimate", "--model", "dinov2-small", "--seq", "1370"}, 0, "seq 1370"},
		{[]string{"estimate", "--model", "dinov2-small", "--seq", "1024"}, 2, "1370 tokens per image"},
		{[]string{"estimate", "--model", "vit-base-patch16-224", "--gpu", "h100-80gb", "--max-seq"}, 2, "--max-batch"},
		{[]string{"params", "--config", cfg}, 0, "image 224, patch 16 (197 tokens per image)"},
		{[]string{"params", "--family", "vit", "--layers", "2", "--hidden", "64", "--heads", "4"}, 0, "patch 16"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		got := out
		if c.code != 0 {
			got = errOut
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%v: exit %d, %q / %q; want exit %d with %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
}
