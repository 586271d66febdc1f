package model

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAttnImpl(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want AttnImpl
		ok   bool
	}{
		{"eager", EagerAttn, true},
		{"sdpa", SDPAAttn, true},
		{"flash_attention_2", FlashAttention2, true},
		{"flash-attention-2", FlashAttention2, true},
		{" SDPA ", SDPAAttn, true},
		{"hand", HandAttn, true},
		{"flex_attention", "", false},
		{"flash_attention_3", "", false},
		{"", "", false},
	} {
		got, ok := ParseAttnImpl(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseAttnImpl(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestAttnImplDefaults: attn_impl sets the attention it runs, rejects an
// attention it does not run and unknown values, naming attn_impl.
func TestAttnImplDefaults(t *testing.T) {
	for _, tc := range []struct {
		impl    AttnImpl
		att     Attention
		want    Attention
		wantErr string
	}{
		{"", "", MathAttention, ""},
		{HandAttn, FlashAttention, FlashAttention, ""},
		{EagerAttn, "", MathAttention, ""},
		{SDPAAttn, "", FlashAttention, ""},
		{FlashAttention2, FlashAttention, FlashAttention, ""},
		{SDPAAttn, MathAttention, "", "runs flash attention"},
		{EagerAttn, FlashAttention, "", "runs math attention"},
		{"flex", "", "", "unknown value"},
	} {
		w, err := Workload{Batch: 1, Seq: 8, AttnImpl: tc.impl, Attention: tc.att}.WithDefaults()
		if tc.wantErr != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "attn_impl" || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q %q: err %v, want a FieldError on attn_impl saying %q", tc.impl, tc.att, err, tc.wantErr)
			}
			continue
		}
		if err != nil || w.Attention != tc.want {
			t.Errorf("%q %q: attention %q, err %v; want %q", tc.impl, tc.att, w.Attention, err, tc.want)
		}
	}
}

func TestConfigAttnImplementation(t *testing.T) {
	base := `{"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "intermediate_size": 176`
	for _, tc := range []struct {
		extra string
		want  AttnImpl
		bad   bool
	}{
		{``, "", false},
		{`, "attn_implementation": "flash_attention_2"`, FlashAttention2, false},
		{`, "_attn_implementation": "eager"`, EagerAttn, false},
		{`, "attn_implementation": "flex_attention"`, "", false},
		{`, "attn_implementation": null`, "", false},
		{`, "attn_implementation": 3`, "", true},
		{`, "attn_implementation": "sdpa", "_attn_implementation": "eager"`, "", true},
	} {
		a, err := ParseConfig([]byte(base + tc.extra + "}"))
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "attn_implementation") {
				t.Errorf("%s: err %v, want one naming attn_implementation", tc.extra, err)
			}
			continue
		}
		if err != nil || a.AttnImpl != tc.want {
			t.Errorf("%s: AttnImpl %q, err %v; want %q", tc.extra, a.AttnImpl, err, tc.want)
		}
	}
}
