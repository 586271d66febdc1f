package main

import (
	"strings"
	"testing"

	"github.com/memval/memval/analytic/estimate"
)

// TestEstimateGeneration: the generation flags go into the workload only
// when given, --prompt-lengths sets the batch unless --batch is given, and
// bad values get an error naming the flag.
func TestEstimateGeneration(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		batch, prompt int
		kv, lengths   string
		runError      string
	}{
		{[]string{"--inference"}, 1, 0, "", "", ""},
		{[]string{"--inference", "--prompt", "100", "--generate", "20", "--kv-cache", "static"}, 1, 100, "static", "", ""},
		{[]string{"--inference", "--kv-cache", ""}, 1, 0, "dynamic", "", ""},
		{[]string{"--inference", "--prompt-lengths", "30,20,10", "--generate", "4"}, 3, 0, "", "30,20,10", ""},
		{[]string{"--inference", "--prompt-lengths", "30,20", "--batch", "3"}, 3, 0, "", "30,20", "--prompt-lengths"},
		{[]string{"--generate", "4"}, 1, 0, "", "", "--generate"},
		{[]string{"--inference", "--kv-cache", "quantized:7"}, 1, 0, "quantized:7", "", "--kv-cache"},
		{[]string{"--inference", "--logits", "some"}, 1, 0, "", "", "--logits"},
		{[]string{"--inference", "--prompt", "1000", "--generate", "100"}, 1, 1000, "", "", "--generate"}, // gpt2: 1024 positions
	} {
		req, err := estimateRequest(t, append([]string{"--model", "gpt2", "--seq", "64"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		w := req.Workload
		if w.Batch != tc.batch || w.Prompt != tc.prompt || w.KVCache != tc.kv || w.PromptLengths != tc.lengths {
			t.Errorf("%v: batch %d prompt %d kv_cache %q prompt_lengths %q, want %d %d %q %q",
				tc.args, w.Batch, w.Prompt, w.KVCache, w.PromptLengths, tc.batch, tc.prompt, tc.kv, tc.lengths)
		}
		_, err = estimate.Run(req)
		if tc.runError == "" && err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		if tc.runError != "" && (err == nil || !strings.Contains(err.Error(), tc.runError)) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.runError)
		}
	}
}
