package scenarios

import (
	"errors"
	"strings"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestSpecAttnImpl: attn_impl sets the attention it runs, an attention it
// does not run is an error naming the scenario and attn_impl, and a bad
// value names the field.
func TestSpecAttnImpl(t *testing.T) {
	for _, tc := range []struct {
		src     string
		want    model.Attention
		wantErr string
	}{
		{"attn_impl: sdpa\n", "", ""},
		{"attn_impl: eager\n", "", ""},
		{"attn_impl: hand\n", model.MathAttention, ""},
		{"attn_impl: sdpa\nattention: math\n", "", "attn_impl"},
		{"attn_impl: flex\n", "", "attn_impl"},
	} {
		s, err := ParseSpec([]byte("name: x\nmodel: gpt2\nbatch: 2\nseq: 128\n"+tc.src), "s.yaml")
		if err == nil {
			var w model.Workload
			_, w, err = s.Resolve()
			if err == nil && w.Attention != tc.want {
				t.Errorf("%q: attention %q, want %q", tc.src, w.Attention, tc.want)
			}
		}
		if tc.wantErr == "" && err != nil {
			t.Errorf("%q: %v", tc.src, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: err %v, want one naming %s", tc.src, err, tc.wantErr)
		}
		if strings.Contains(tc.src, "math") && err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", tc.src, err)
		}
	}
}
