package model

import (
	"errors"
	"strings"
	"testing"
)

// TestLoRANoPEFTDefault: phi3 and olmo2 have no PEFT default targets
// (peft 0.21 refuses them without target_modules), so an empty
// lora_targets is an error naming the field and the modules to choose
// from; named targets and all-linear still work, and llama keeps q and v.
func TestLoRANoPEFTDefault(t *testing.T) {
	for _, c := range []struct {
		fam, targets string
		wantErr      string
		wantN        int
	}{
		{"phi3", "", "qkv_proj", 0},
		{"olmo2", "", "q_proj", 0},
		{"phi3", "qkv_proj", "", 1},
		{"olmo2", LoRAAllLinear, "", 7},
		{"llama", "", "", 2},
	} {
		a := Arch{Family: c.fam, Layers: 2, Hidden: 64, Heads: 4, FFN: 176, Vocab: 1000}
		if err := a.Normalize(); err != nil {
			t.Fatal(err)
		}
		ms, err := LoRATargets(a, Workload{Batch: 1, Seq: 8, LoRARank: 4, LoRATargets: c.targets})
		if c.wantErr != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "lora_targets" || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s %q: error %v, want a lora_targets error naming %s", c.fam, c.targets, err, c.wantErr)
			}
			continue
		}
		if err != nil || len(ms) != c.wantN {
			t.Errorf("%s %q: %d modules, error %v; want %d", c.fam, c.targets, len(ms), err, c.wantN)
		}
	}
}
