package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotDir is a downloaded sharded checkpoint's folder: config.json and
// model.safetensors.index.json, no weight files.
const snapshotDir = "../../analytic/model/testdata/snapshots/qwen3-8b"

// TestConfigSnapshotFolder: params and estimate read a model snapshot's
// folder from its config.json without any weights present.
func TestConfigSnapshotFolder(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"params", "--config", snapshotDir}, []string{"model qwen3-8b (family qwen3)", "8,190,735,360", "attn.qk_norm"}},
		{[]string{"estimate", "--config", snapshotDir, "--batch", "1", "--seq", "128"}, []string{"model qwen3-8b (8,190,735,360 parameters)", "weights"}},
		{[]string{"estimate", "--config", snapshotDir, "--inference", "--batch", "1", "--seq", "128"}, []string{"model qwen3-8b", "kv_cache"}},
	} {
		code, out, errw := runCLI(t, tt.args...)
		if code != 0 {
			t.Errorf("%v: got exit %d, stderr %q", tt.args, code, errw)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
}

// TestConfigUnreadable: a config memval cannot read names its model_type,
// the supported ones, or the sizes it lacks, and exits as a usage error.
func TestConfigUnreadable(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, json string
		want       []string
	}{
		{"t5.json", `{"model_type": "t5", "d_model": 512}`, []string{`"t5": not supported; supported: bert, bloom`, "qwen3_moe"}},
		{"partial.json", `{"model_type": "phi3", "vocab_size": 32064, "hidden_size": 3072}`,
			[]string{"a phi3 config needs", "lacks num_hidden_layers, num_attention_heads, intermediate_size"}},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errw := runCLI(t, "params", "--config", path)
		if code == 0 {
			t.Errorf("%s: got exit 0", tt.name)
		}
		for _, w := range append(tt.want, path) {
			if !strings.Contains(errw, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tt.name, w, errw)
			}
		}
	}
}
