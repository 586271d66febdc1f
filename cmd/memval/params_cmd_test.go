package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateParamsGolden rewrites testdata/params-*.golden: go test -run TestParamsGolden -update-params
var updateParamsGolden = flag.Bool("update-params", false, "rewrite the params command's golden files")

func TestParamsCommandFlags(t *testing.T) {
	cmd := newParamsCmd(streams{})
	if err := cmd.ParseFlags([]string{"--model", "gpt2", "--json", "--layers", "3"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model", "config", "family", "layers", "hidden", "heads", "kv-heads", "head-dim", "ffn", "vocab", "seq-max", "tied", "json"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("flag --%s missing", name)
		}
	}
	if v, _ := cmd.Flags().GetBool("json"); !v {
		t.Error("--json: got false, want true")
	}
	if v, _ := cmd.Flags().GetInt("layers"); v != 3 {
		t.Errorf("--layers: got %d, want 3", v)
	}
}

func TestParamsGolden(t *testing.T) {
	for _, model := range []string{"seed-example", "gpt3", "mixtral-8x7b", "bert-base-uncased"} {
		t.Run(model, func(t *testing.T) {
			code, out, errw := runCLI(t, "params", "--model", model)
			if code != 0 {
				t.Fatalf("got exit %d, stderr %q", code, errw)
			}
			golden := filepath.Join("testdata", "params-"+model+".golden")
			if *updateParamsGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-params to create it)", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (rerun with -update-params after checking):\ngot:\n%s\nwant:\n%s", golden, out, want)
			}
		})
	}
}

func TestParamsCommand(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"params", "--model", "gpt2"}, []string{"total", "124,439,808", "per layer", "7,087,872", "attn.q_proj.weight", "768x768"}},
		{[]string{"params", "--model", "seed-example"}, []string{"123,383,808", "123,417,600", "4,719,616", "4,722,432", "<- differs", "493,535,232", "246,767,616", "123亿"}},
		{[]string{"params", "--model", "gpt3"}, []string{"174,604,259,328", "1.056e10", "6,039,822,336", "3.90", "1.93e+14"}},
		{[]string{"params", "--config", "../../analytic/model/testdata/hf-configs/opt-125m.json"}, []string{"model opt-125m (family opt)", "125,239,296"}},
		{[]string{"params", "--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "100"}, []string{"model custom gpt2", "total"}},
	}
	for _, tt := range tests {
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
	// The seed's figures only for the unmodified preset.
	if _, out, _ := runCLI(t, "params", "--model", "seed-example", "--layers", "6"); strings.Contains(out, "seed printed") {
		t.Errorf("--layers 6: got the seed's printed figures for a modified model:\n%s", out)
	}
}

func TestParamsCommandJSON(t *testing.T) {
	code, out, errw := runCLI(t, "params", "--config", "../../analytic/model/testdata/hf-configs/llama-3-8b.json", "--json")
	if code != 0 {
		t.Fatalf("got exit %d, stderr %q", code, errw)
	}
	var r struct {
		Arch struct {
			Family  string `json:"family"`
			KVHeads int    `json:"kv_heads"`
		} `json:"arch"`
		Params struct {
			Total      int64 `json:"total"`
			Components []struct {
				Name string `json:"name"`
			} `json:"components"`
		} `json:"params"`
		Seed *json.RawMessage `json:"seed_example"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r.Arch.Family != "llama" || r.Arch.KVHeads != 8 || r.Params.Total != 8_030_261_248 || len(r.Params.Components) == 0 || r.Seed != nil {
		t.Errorf("got %+v", r)
	}
	code, out, _ = runCLI(t, "params", "--model", "seed-example", "--json")
	if code != 0 || !strings.Contains(out, `"printed_fp32_bytes": 493535232`) || !strings.Contains(out, `"errata"`) {
		t.Errorf("seed-example --json: got exit %d, output %s", code, out)
	}
}

func TestParamsCommandUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"params"}, "no model given"},
		{[]string{"params", "--model", "nope"}, "use one of bert-base-uncased"},
		{[]string{"params", "--model", "gpt2", "--heads", "7"}, "--heads 7: does not divide --hidden 768"},
		{[]string{"params", "--config", "../../analytic/model/testdata/hf-configs/gpt2.json", "--model", "gpt2"}, "exclusive"},
		{[]string{"params", "--layers", "x"}, "invalid argument"},
		{[]string{"params", "extra"}, "unknown command"},
	}
	for _, tt := range tests {
		code, _, errw := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(errw, tt.msg) {
			t.Errorf("%v: got exit %d, stderr %q; want %d and %q", tt.args, code, errw, exitUsage, tt.msg)
		}
	}
}
