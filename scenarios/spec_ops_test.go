package scenarios

import (
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestSpecOpsCheckpointing: checkpointing ops:torchtitan reaches the
// workload; an unknown policy, or offloading beside it, is an error
// naming the field.
func TestSpecOpsCheckpointing(t *testing.T) {
	for _, tc := range []struct {
		src, wantErr string
	}{
		{"checkpointing: ops:torchtitan\n", ""},
		{"checkpointing: ops:megatron\n", "checkpointing"},
		{"checkpointing: \"ops:\"\n", "checkpointing"},
		{"checkpointing: ops:torchtitan\noffload_activations: true\n", "offload_activations"},
	} {
		s, err := ParseSpec([]byte("name: x\nmodel: llama-3-8b\nbatch: 2\nseq: 128\n"+tc.src), "s.yaml")
		var w model.Workload
		if err == nil {
			_, w, err = s.Resolve()
		}
		if err == nil {
			_, err = w.WithDefaults()
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.src, err)
		case tc.wantErr == "" && w.Checkpointing.OpsPolicy() != model.TorchtitanOpsPolicy:
			t.Errorf("%q: checkpointing %q, want ops:torchtitan", tc.src, w.Checkpointing)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err %v, want one naming %s", tc.src, err, tc.wantErr)
		}
	}
}
