package analytic

import (
	"testing"

	"github.com/memval/memval/analytic/model"
)

// alibiMQAArch is one of the tiny BLOOM and Falcon models of
// scenarios/family_truth_famD_test.go (L=2, H=64, h=4, V=1000).
func alibiMQAArch(t *testing.T, name string) model.Arch {
	t.Helper()
	a := model.Arch{Family: "falcon", Layers: 2, Hidden: 64, Heads: 4, Vocab: 1000}
	if name == "bloom" {
		a.Family = "bloom"
	}
	if err := a.Normalize(); err != nil {
		t.Fatal(err)
	}
	set := func(kv int, parallel bool, norms int, alibi, bias bool) {
		a.KVHeads, a.ParallelBlock, a.NormsPerLayer, a.Alibi = kv, parallel, norms, alibi
		a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
	}
	switch name {
	case "falcon-mqa":
		set(1, true, 1, false, false)
	case "falcon-mqa-alibi":
		set(1, true, 1, true, false)
	case "falcon-new":
		set(2, true, 2, false, false)
	case "falcon-new-alibi":
		set(2, true, 2, true, false)
	case "falcon-rw":
		set(4, false, 2, true, true)
	case "falcon-new1":
		set(2, true, 1, false, true)
	}
	return a
}

// TestAlibiMQASavedMeasured: the breakdown's saved bytes of BLOOM and
// Falcon equal, to the byte, what transformers 5.24's BloomForCausalLM and
// FalconForCausalLM saved for backward on torch 2.11's CPU (B=2, S=32,
// transformers' loss; measured by scenarios/train.py with MEMVAL_PYTHON
// set: go test ./scenarios -run TestAlibiMQATruth -v). The rows are that
// run's output, kept here so that the rules stay checked without torch.
func TestAlibiMQASavedMeasured(t *testing.T) {
	rows := []struct {
		arch     string
		prec     model.Precision
		impl     model.AttnImpl
		ckpt     model.Checkpointing
		dropout  float64
		measured uint64
	}{
		{"bloom", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 899076},
		{"bloom", model.FP32, model.EagerAttn, model.FullCheckpointing, 0, 339972},
		{"falcon-mqa", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 819748},
		{"falcon-mqa", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0, 819748},
		{"falcon-mqa-alibi", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 815652},
		{"falcon-mqa-alibi", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0, 815652},
		{"falcon-new", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 853540},
		{"falcon-new", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0, 806436},
		{"falcon-new-alibi", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 849444},
		{"falcon-new-alibi", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0, 818724},
		{"falcon-rw", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 882180},
		{"falcon-rw", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0, 851460},
		{"bloom", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 1018884},
		{"bloom", model.BF16Mixed, model.EagerAttn, model.FullCheckpointing, 0, 459780},
		{"falcon-mqa", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 947748},
		{"falcon-mqa", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0, 964132},
		{"falcon-mqa-alibi", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 943652},
		{"falcon-mqa-alibi", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0, 960036},
		{"falcon-new", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 956964},
		{"falcon-new", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0, 868900},
		{"falcon-new-alibi", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 952868},
		{"falcon-new-alibi", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0, 889380},
		{"falcon-rw", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0, 1067524},
		{"falcon-rw", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0, 1004036},
		{"bloom", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 643588},
		{"bloom", model.BF16Pure, model.EagerAttn, model.FullCheckpointing, 0, 298500},
		{"falcon-mqa", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 538404},
		{"falcon-mqa", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0, 620324},
		{"falcon-mqa-alibi", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 536356},
		{"falcon-mqa-alibi", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0, 618276},
		{"falcon-new", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 555300},
		{"falcon-new", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0, 532772},
		{"falcon-new-alibi", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 553252},
		{"falcon-new-alibi", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0, 538916},
		{"falcon-rw", model.BF16Pure, model.EagerAttn, model.NoCheckpointing, 0, 569604},
		{"falcon-rw", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0, 555268},
		{"bloom", model.FP32, model.EagerAttn, model.NoCheckpointing, 0.1, 1095684},
		{"bloom", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0.1, 1084420},
		{"falcon-mqa", model.FP32, model.EagerAttn, model.FullCheckpointing, 0, 323076},
		{"falcon-mqa", model.BF16Mixed, model.EagerAttn, model.FullCheckpointing, 0, 442884},
		{"falcon-new", model.BF16Mixed, model.SDPAAttn, model.FullCheckpointing, 0, 442884},
		{"falcon-mqa", model.FP32, model.EagerAttn, model.NoCheckpointing, 0.1, 852516},
		{"falcon-mqa-alibi", model.BF16Mixed, model.EagerAttn, model.NoCheckpointing, 0.1, 1025572},
		{"falcon-new", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0.1, 885284},
		{"falcon-rw", model.FP32, model.EagerAttn, model.NoCheckpointing, 0.1, 1078788},
		{"falcon-rw", model.BF16Mixed, model.EagerAttn, "layers:2", 0, 755204},
		{"falcon-rw", model.FP32, model.SDPAAttn, model.NoCheckpointing, 0.1, 1078788},
		{"falcon-new-alibi", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0.1, 1116708},
		{"falcon-mqa-alibi", model.BF16Pure, model.SDPAAttn, model.NoCheckpointing, 0.1, 765732},
		{"falcon-new1", model.FP32, model.EagerAttn, model.NoCheckpointing, 0, 819748},
		{"falcon-new1", model.BF16Mixed, model.SDPAAttn, model.NoCheckpointing, 0.1, 966180},
	}
	for _, r := range rows {
		a := alibiMQAArch(t, r.arch)
		w := model.Workload{Batch: 2, Seq: 32, Precision: r.prec, AttnImpl: r.impl, Checkpointing: r.ckpt, Dropout: r.dropout,
			Backend: model.CPU, Loss: model.HFLoss}
		if r.impl == model.SDPAAttn {
			w.Attention = model.FlashAttention
		}
		terms, err := SavedActivations(a, w)
		if err != nil {
			t.Fatalf("%s %+v: %v", r.arch, w, err)
		}
		if got := SavedBytes(terms); got != r.measured {
			t.Errorf("%s %s %s ckpt %s dropout %g: saved %d bytes, transformers saved %d (%+d)",
				r.arch, r.prec, r.impl, r.ckpt, r.dropout, got, r.measured, int64(got)-int64(r.measured))
		}
		for _, term := range terms {
			if term.Note != noteMeasured {
				t.Errorf("%s %s %s: term %s is noted %q, want measured", r.arch, r.prec, r.impl, term.Name, term.Note)
				break
			}
		}
	}
}

// TestAlibiMQADerived: what the truth runs did not cover is noted derived.
func TestAlibiMQADerived(t *testing.T) {
	for _, c := range []struct {
		arch string
		w    model.Workload
	}{
		{"bloom", model.Workload{Batch: 2, Seq: 32, Backend: model.CUDA}},
		{"falcon-new", model.Workload{Batch: 2, Seq: 32, Backend: model.CPU, Checkpointing: model.SelectiveCheckpointing}},
		{"falcon-new-alibi", model.Workload{Batch: 2, Seq: 32, Backend: model.CPU, LoRARank: 8}},
	} {
		terms, err := SavedActivations(alibiMQAArch(t, c.arch), c.w)
		if err != nil {
			t.Fatal(err)
		}
		if terms[len(terms)-1].Note != noteDerived {
			t.Errorf("%s %+v: noted %q, want derived", c.arch, c.w, terms[len(terms)-1].Note)
		}
	}
}
