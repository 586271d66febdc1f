package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/memval/memval/analytic"
	"github.com/memval/memval/analytic/model"
)

// TestHFConfigRoundTrip: the config.json HFConfig writes for each family
// train.py builds parses back (model.ParseConfig) to the same parameter
// count; the other families get an error.
func TestHFConfigRoundTrip(t *testing.T) {
	built := 0
	for _, fam := range model.ConfigFamilies() {
		a := model.Arch{Family: fam, Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000}
		if f, _ := model.FamilyOf(fam); f.SharedGate {
			a.SharedFFN = 128
		} else if f.Vision != nil {
			a.Vocab = 0 // images have no vocabulary
		}
		if err := a.Normalize(); err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		m, err := HFConfig(a, model.Workload{Batch: 1, Seq: 16})
		if f, _ := model.FamilyOf(fam); a.NoHead || !f.Measured {
			if err == nil {
				t.Errorf("%s: got a config for a family train.py does not build, want an error", fam)
			}
			continue
		}
		built++
		if err != nil {
			t.Fatalf("%s: %v", fam, err)
		}
		data, _ := json.Marshal(m)
		back, err := model.ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: ParseConfig of %s: %v", fam, data, err)
		}
		if err := back.Normalize(); err != nil {
			t.Fatal(err)
		}
		pa, _ := model.Params(a)
		pb, _ := model.Params(back)
		if pa.Total != pb.Total {
			t.Errorf("%s: params %d, after the config round trip %d (%s)", fam, pa.Total, pb.Total, data)
		}
	}
	if built < 4 {
		t.Errorf("round-tripped %d families, want at least gpt2, llama, mistral and qwen2", built)
	}
	if _, err := HFConfig(model.Arch{Family: "vanilla"}, model.Workload{}); err == nil {
		t.Error("vanilla: got a config, want an error (no config.json mapping)")
	}
}

// savedTensor is one row of train.py's saved_tensors: the autograd node
// that saved it, its shape, dtype and storage bytes.
type savedTensor struct {
	Op    string
	Shape []int
	DType string
	Bytes uint64
}

func (s *savedTensor) UnmarshalJSON(b []byte) error {
	var row []json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil || len(row) != 4 {
		return fmt.Errorf("saved tensor row %s: want [op, shape, dtype, bytes]", b)
	}
	for i, dst := range []any{&s.Op, &s.Shape, &s.DType, &s.Bytes} {
		if err := json.Unmarshal(row[i], dst); err != nil {
			return err
		}
	}
	return nil
}

type truthResult struct {
	scriptResult
	Impl         string        `json:"impl"`
	Trainable    int64         `json:"trainable"`
	OptimBytes   uint64        `json:"optimizer_state_bytes"`
	Transformers string        `json:"transformers"`
	Saved        []savedTensor `json:"saved_tensors"`
}

// TestTransformersTruth is the CI truth matrix on torch 2.x: tiny GPT-2 and
// Llama configs across precision, checkpointing, dropout and attention,
// built both by transformers (AutoModelForCausalLM.from_config) and by
// hand. Both give model.Params' parameter count (all trainable) and the
// same optimizer-state bytes, within 0.1% of the breakdown's optimizer
// states; the hand-built program's saved bytes equal
// analytic.SavedActivations within 0.1%, and transformers' equal it for
// the workload's attn_impl eager (math attention) or sdpa (flash). A
// mismatch lists both programs' saved tensors that differ.
func TestTransformersTruth(t *testing.T) {
	needTorch(t)
	gpt2 := normalized(t, model.Arch{Family: "gpt2", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000, MaxPositions: 128})
	llama := normalized(t, model.Arch{Family: "llama", Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, FFN: 176, Vocab: 1000})
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for _, prec := range []model.Precision{model.FP32, model.BF16Mixed, model.BF16Pure} {
		for _, ck := range []model.Checkpointing{model.NoCheckpointing, model.FullCheckpointing} {
			cases = append(cases, tc{gpt2, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}},
				tc{llama, model.Workload{Batch: 2, Seq: 32, Precision: prec, Checkpointing: ck}})
		}
		cases = append(cases, tc{gpt2, model.Workload{Batch: 2, Seq: 32, Precision: prec, Dropout: 0.1}},
			tc{gpt2, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: model.FlashAttention}},
			tc{llama, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: model.FlashAttention}},
			tc{gpt2, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: model.FlashAttention, Checkpointing: model.FullCheckpointing}},
			tc{llama, model.Workload{Batch: 2, Seq: 32, Precision: prec, Attention: model.FlashAttention, Checkpointing: model.FullCheckpointing}})
	}
	cases = append(cases, tc{gpt2, model.Workload{Batch: 1, Seq: 48}})
	// layers:2 on 3 layers: torchtitan's (the hand-built program) checkpoints
	// layer 2, transformers' every_n_layers layers 1 and 3
	gpt2x3, llamax3 := gpt2, llama
	gpt2x3.Layers, llamax3.Layers = 3, 3
	for _, w := range []model.Workload{{Precision: model.FP32}, {Precision: model.BF16Mixed, Attention: model.FlashAttention}} {
		w.Batch, w.Seq, w.Checkpointing = 2, 32, "layers:2"
		cases = append(cases, tc{gpt2x3, w}, tc{llamax3, w})
	}
	// activation offloading: the checkpointed layers' inputs in host memory
	for _, ck := range []model.Checkpointing{model.FullCheckpointing, "layers:2"} {
		w := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Checkpointing: ck, OffloadActivations: true}
		cases = append(cases, tc{gpt2x3, w}, tc{llamax3, w})
	}
	res := runTruthJobs(t, handAndHFJobs(len(cases), func(i int) (model.Arch, *model.Workload) { return cases[i].a, &cases[i].w }))
	for i, c := range cases {
		hand, hf := res[2*i], res[2*i+1]
		name := fmt.Sprintf("%s %s ckpt %s dropout %g %s", c.a.Family, c.w.Precision, c.w.Checkpointing, c.w.Dropout, c.w.Attention)
		if c.w.OffloadActivations {
			name += " offload"
		}
		if hand.Impl != "hand" || hf.Impl != "transformers" {
			t.Fatalf("%s: impls %q and %q, want hand and transformers", name, hand.Impl, hf.Impl)
		}
		pb, err := model.Params(c.a)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []truthResult{hand, hf} {
			if r.Params != pb.Total || r.Trainable != pb.Total {
				t.Errorf("%s %s: params %d trainable %d, want model.Params %d", name, r.Impl, r.Params, r.Trainable, pb.Total)
			}
		}
		e, err := analytic.Predict("breakdown", c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		var opt float64
		for _, term := range e.Terms {
			if term.Group == analytic.GroupOptimizer && !term.Peak {
				opt += float64(term.Bytes)
			}
		}
		if hand.OptimBytes != hf.OptimBytes || math.Abs(float64(hf.OptimBytes)-opt) > 0.001*opt {
			t.Errorf("%s: optimizer state %d (hand) %d (transformers) bytes, want the breakdown's %.0f", name, hand.OptimBytes, hf.OptimBytes, opt)
		}
		terms, err := analytic.SavedActivations(c.a, c.w)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(analytic.SavedBytes(terms))
		got := float64(hand.SavedBytes[0])
		if math.Abs(got-want) > 0.001*want {
			t.Errorf("%s: hand-built saved %.0f bytes, want analytic %.0f (%+.3f%%)", name, got, want, 100*(got/want-1))
		}
		hw := hfWorkload(c.w, "transformers")
		hfTerms, err := analytic.SavedActivations(c.a, hw)
		if err != nil {
			t.Fatal(err)
		}
		wantHF := float64(analytic.SavedBytes(hfTerms))
		gotHF := float64(hf.SavedBytes[0])
		t.Logf("%-42s analytic %8.0f hand %8.0f; attn_impl %-5s analytic %8.0f transformers %8.0f", name, want, got, hw.AttnImpl, wantHF, gotHF)
		if math.Abs(gotHF-wantHF) > 0.001*wantHF {
			t.Errorf("%s: transformers %s saved %.0f bytes, want analytic (attn_impl %s) %.0f (%+.3f%%); tensors that differ from the hand-built program:\n%s",
				name, hf.Transformers, gotHF, hw.AttnImpl, wantHF, 100*(gotHF/wantHF-1), diffSaved(hand.Saved, hf.Saved))
		}
	}
}

// hfWorkload is w as impl runs it: the hand-built program's attention, or
// transformers' eager (math) or sdpa (flash) implementation.
func hfWorkload(w model.Workload, impl string) model.Workload {
	if impl != "transformers" {
		return w
	}
	w.AttnImpl = model.EagerAttn
	if w.Attention == model.FlashAttention {
		w.AttnImpl = model.SDPAAttn
	}
	return w
}

// handAndHFJobs is, for each of n cases, a job on the hand-built program
// and one on transformers' classes (res[2*i] and res[2*i+1] of
// runTruthJobs), on the CPU and transformers' loss, the transformers job
// under its attention implementation (hfWorkload). at returns case i's
// arch and workload, which it sets to the CPU and that loss in place so
// that the expectations see what ran.
func handAndHFJobs(n int, at func(i int) (model.Arch, *model.Workload)) []TrainJob {
	var jobs []TrainJob
	for i := 0; i < n; i++ {
		a, w := at(i)
		w.Backend = model.CPU
		w.Loss = model.HFLoss // transformers' ForCausalLMLoss; the hand-built program writes it out
		for _, impl := range []string{"hand", "transformers"} {
			jobs = append(jobs, TrainJob{Arch: a, Workload: hfWorkload(*w, impl), Steps: 1, Seed: 1, Device: "cpu",
				MeasureSaved: true, Impl: impl, ListSaved: true})
		}
	}
	return jobs
}

// runTruthJobs is runJobs with the fields of the truth tests.
func runTruthJobs(t *testing.T, jobs []TrainJob) []truthResult {
	t.Helper()
	lines := runJobLines(t, jobs)
	res := make([]truthResult, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal(l, &res[i]); err != nil {
			t.Fatalf("train.py printed %s: %v", l, err)
		}
	}
	return res
}

// diffSaved lists, per (dtype, bytes) of a saved tensor, the ones one
// program saves more often than the other, with the nodes that saved them.
func diffSaved(hand, hf []savedTensor) string {
	type key struct {
		dt    string
		bytes uint64
	}
	count := func(ts []savedTensor) (map[key]int, map[key][]string) {
		n, ops := map[key]int{}, map[key][]string{}
		for _, s := range ts {
			k := key{s.DType, s.Bytes}
			n[k]++
			ops[k] = append(ops[k], fmt.Sprintf("%s%v", s.Op, s.Shape))
		}
		return n, ops
	}
	nh, oh := count(hand)
	nf, of := count(hf)
	var lines []string
	for k := range nh {
		if nh[k] != nf[k] {
			lines = append(lines, fmt.Sprintf("  %s %d B: hand %d x %v, transformers %d x %v", k.dt, k.bytes, nh[k], oh[k], nf[k], of[k]))
		}
	}
	for k := range nf {
		if _, ok := nh[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s %d B: hand 0, transformers %d x %v", k.dt, k.bytes, nf[k], of[k]))
		}
	}
	sort.Strings(lines)
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}
