package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/model"
)

// resolveFlags parses args into fresh model flags and resolves them.
func resolveFlags(t testing.TB, args ...string) (model.Arch, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	var m modelOptions
	m.bind(fs)
	if err := fs.Parse(args); err != nil {
		return model.Arch{}, err
	}
	return m.resolve()
}

func TestModelFlagsResolve(t *testing.T) {
	tests := []struct {
		args  []string
		check func(a model.Arch) bool
		want  string
	}{
		{[]string{"--model", "gpt2"}, func(a model.Arch) bool { return a.Layers == 12 && a.Name == "gpt2" && a.TiedHead },
			"gpt2: 12 layers, tied"},
		{[]string{"--model", "gpt2", "--layers", "24"}, func(a model.Arch) bool {
			return a.Layers == 24 && a.Hidden == 768 && a.Name == "gpt2 (--layers 24)"
		}, "24 layers, other sizes kept, name noting the override"},
		{[]string{"--model", "gpt2", "--heads", "16"}, func(a model.Arch) bool { return a.HeadDim == 48 && a.KVHeads == 16 },
			"head_dim and kv_heads follow --heads for multi-head models"},
		{[]string{"--model", "llama-3-8b", "--heads", "16"}, func(a model.Arch) bool { return a.HeadDim == 256 && a.KVHeads == 8 },
			"grouped-query kv_heads kept, head_dim follows"},
		{[]string{"--model", "gemma-2b", "--hidden", "4096"}, func(a model.Arch) bool { return a.HeadDim == 512 },
			"head_dim follows --hidden unless given"},
		{[]string{"--model", "gemma-2b", "--hidden", "4096", "--head-dim", "256"}, func(a model.Arch) bool { return a.HeadDim == 256 },
			"--head-dim kept"},
		{[]string{"--model", "gpt2", "--seq-max", "2048"}, func(a model.Arch) bool { return a.MaxPositions == 2048 && a.ContextLength == 2048 },
			"learned position table resized"},
		{[]string{"--model", "llama-2-7b", "--seq-max", "16384"}, func(a model.Arch) bool { return a.MaxPositions == 0 && a.ContextLength == 16384 },
			"rotary model: context only"},
		{[]string{"--model", "gpt2", "--tied=false"}, func(a model.Arch) bool { return !a.TiedHead }, "untied"},
		{[]string{"--config", "../../analytic/model/testdata/hf-configs/mistral-7b-v0.1.json", "--vocab", "1000"},
			func(a model.Arch) bool { return a.Family == "mistral" && a.Vocab == 1000 && a.KVHeads == 8 }, "config with override"},
		{[]string{"--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "100"},
			func(a model.Arch) bool {
				return a.Family == "gpt2" && a.FFN == 256 && a.TiedHead && a.MaxPositions == 1024
			},
			"explicit dimensions default to gpt2"},
		{[]string{"--family", "llama", "--layers", "2", "--hidden", "64", "--heads", "4", "--kv-heads", "2", "--ffn", "172", "--vocab", "100", "--tied"},
			func(a model.Arch) bool {
				return a.GatedMLP && a.KVHeads == 2 && a.TiedHead && a.Norm == model.RMSNorm
			},
			"explicit llama, tied"},
	}
	for _, tt := range tests {
		a, err := resolveFlags(t, tt.args...)
		if err != nil {
			t.Errorf("%v: got error %v, want %s", tt.args, err, tt.want)
			continue
		}
		if !tt.check(a) {
			t.Errorf("%v: got %+v, want %s", tt.args, a, tt.want)
		}
	}
}

func TestModelFlagsErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{nil, "no model given; give --model NAME, --config FILE or the dimensions"},
		{[]string{"--model", "gpt2", "--config", "x.json"}, "are exclusive"},
		{[]string{"--model", "gpt5"}, `--model: unknown model preset "gpt5"; use one of bert-base-uncased,`},
		{[]string{"--config", "no/such/config.json"}, "--config: read model config"},
		{[]string{"--model", "gpt2", "--family", "llama"}, "--family \"llama\" applies to explicit dimensions"},
		{[]string{"--layers", "2", "--hidden", "64"}, "need --heads, --vocab too"},
		{[]string{"--family", "t5", "--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "100"}, `--family "t5": unknown; use one of`},
		{[]string{"--layers", "2", "--hidden", "64", "--heads", "7", "--vocab", "100"}, "--heads 7: does not divide --hidden 64; choose a divisor of 64 or give --head-dim"},
		{[]string{"--layers", "0", "--hidden", "64", "--heads", "4", "--vocab", "100"}, "--layers 0: must be a positive integer"},
		{[]string{"--layers", "2", "--hidden", "64", "--heads", "4", "--kv-heads", "3", "--vocab", "100"}, "--kv-heads 3: does not divide --heads 4"},
		{[]string{"--family", "llama", "--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "100"}, "--ffn 0: the llama family has no default intermediate size"},
		{[]string{"--model", "gpt2", "--vocab", "-3"}, "--vocab -3: must be a positive integer"},
		{[]string{"--model", "gpt2", "--hidden", "3000000000"}, "--hidden 3000000000: is larger than"},
	}
	for _, tt := range tests {
		_, err := resolveFlags(t, tt.args...)
		if err == nil {
			t.Errorf("%v: got no error, want %q", tt.args, tt.msg)
			continue
		}
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("%v: got %T %v, want a usage error", tt.args, err, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: got %q, want it to contain %q", tt.args, err, tt.msg)
		}
	}
}

// FuzzModelFlags feeds arbitrary values to the model flags: they give an
// Arch whose parameters can be counted, or an error, never a panic.
func FuzzModelFlags(f *testing.F) {
	f.Add("gpt2", "", 0, 0, 0, 0, 0, 0, 0, 0, false)
	f.Add("", "llama", 2, 64, 4, 2, 0, 172, 100, 128, true)
	f.Add("mixtral-8x7b", "", 0, 0, 3, 0, 0, 0, 0, 0, false)
	f.Add("", "gpt2", 1, 7, 7, 0, 0, 0, 1, -1, false)
	f.Add("gemma-2b", "", 1<<31, 0, 0, 0, 1<<31, 0, 0, 0, false)
	f.Fuzz(func(t *testing.T, preset, family string, layers, hidden, heads, kv, headDim, ffn, vocab, seqMax int, tied bool) {
		var args []string
		if preset != "" {
			args = append(args, "--model="+preset)
		}
		if family != "" {
			args = append(args, "--family="+family)
		}
		for _, d := range []struct {
			name string
			v    int
		}{{"layers", layers}, {"hidden", hidden}, {"heads", heads}, {"kv-heads", kv}, {"head-dim", headDim}, {"ffn", ffn}, {"vocab", vocab}, {"seq-max", seqMax}} {
			if d.v != 0 {
				args = append(args, "--"+d.name+"="+strconv.Itoa(d.v))
			}
		}
		if tied {
			args = append(args, "--tied")
		}
		a, err := resolveFlags(t, args...)
		if err != nil {
			return
		}
		b, err := model.Params(a)
		if err != nil {
			t.Fatalf("%v gave %+v, whose Params fails: %v", args, a, err)
		}
		if b.Total <= 0 || b.Total > model.MaxParams {
			t.Fatalf("%v gave %+v with %d parameters", args, a, b.Total)
		}
	})
}
