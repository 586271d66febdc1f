package scenarios

import (
	"fmt"
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestEncoderTruth is issue 19's truth for the BERT-style encoders (bert,
// roberta, xlm-roberta, distilbert; model.EncoderLayerName): each built by
// transformers from_config as its masked-LM, sequence and token classifier
// (AutoModelForMaskedLM, ...ForSequenceClassification,
// ...ForTokenClassification; impl "transformers" only: the hand-built
// program has no encoder), tiny sizes, on the CPU. The parameter and
// trainable counts equal model.Params, the optimizer-state bytes the
// breakdown's, and the saved-for-backward bytes analytic.SavedActivations
// for the attention implementation that ran (hfWorkload), within 0.1%; a
// mismatch lists the saved tensors.
func TestEncoderTruth(t *testing.T) {
	needTorch(t)
	type tc struct {
		a model.Arch
		w model.Workload
	}
	base := model.Workload{Batch: 2, Seq: 32}
	vary := []model.Workload{base,
		{Batch: 2, Seq: 32, Precision: model.BF16Mixed},
		{Batch: 2, Seq: 32, Precision: model.BF16Pure},
		{Batch: 2, Seq: 32, Dropout: 0.1},
		{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Attention: model.FlashAttention},
		{Batch: 2, Seq: 32, Checkpointing: model.FullCheckpointing},
	}
	var cases []tc
	// bert across the matrix; the others where their programs differ from
	// it (RoBERTa's position ids and head dropout, DistilBERT's embeddings
	// and single residual dropout), kept few: the package's truth tests
	// share the machine's CPUs
	dropout := model.Workload{Batch: 2, Seq: 32, Dropout: 0.1}
	mixedDropout := model.Workload{Batch: 2, Seq: 32, Precision: model.BF16Mixed, Dropout: 0.1}
	for _, f := range []struct {
		fam  string
		vary []model.Workload
	}{
		{"bert", vary},
		{"roberta", []model.Workload{base, dropout, mixedDropout}},
		{"xlm-roberta", []model.Workload{base}},
		{"distilbert", []model.Workload{base, dropout, mixedDropout}},
	} {
		// RoBERTa's positions count from padding_idx 1: seq + 2 rows
		a := model.Arch{Family: f.fam, Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000, MaxPositions: 34}
		for _, h := range []struct {
			head   string
			labels int
		}{{model.HeadMLM, 0}, {model.HeadSeqCls, 3}} {
			a.Head, a.Labels = h.head, h.labels
			for _, w := range f.vary {
				cases = append(cases, tc{normalized(t, a), w})
			}
		}
		a.Head, a.Labels = model.HeadTokenCls, 5
		cases = append(cases, tc{normalized(t, a), mixedDropout})
	}
	// distilbert with relu, bert with 3 layers and layers:2 checkpointing
	relu := normalized(t, model.Arch{Family: "distilbert", Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000,
		MaxPositions: 34, Act: "relu", Head: model.HeadMLM})
	bert3 := normalized(t, model.Arch{Family: "bert", Layers: 3, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000,
		MaxPositions: 34, Head: model.HeadSeqCls, Labels: 2})
	cases = append(cases, tc{relu, base}, tc{bert3, model.Workload{Batch: 2, Seq: 32, Checkpointing: "layers:2"}})

	jobs := make([]TrainJob, len(cases))
	for i := range cases {
		cases[i].w.Backend = model.CPU
		cases[i].w.Loss = model.HFLoss
		cases[i].w = hfWorkload(cases[i].w, "transformers")
		jobs[i] = TrainJob{Arch: cases[i].a, Workload: cases[i].w, Steps: 1, Seed: 1, Device: "cpu",
			MeasureSaved: true, Impl: "transformers", ListSaved: true}
	}
	res := runTruthJobs(t, jobs)
	for i, r := range res {
		c := cases[i]
		name := fmt.Sprintf("%s head %s %s dropout %g %s ckpt %s act %s", c.a.Family, c.a.Head, c.w.Precision, c.w.Dropout,
			c.w.AttnImpl, c.w.Checkpointing, c.a.Act)
		checkTransformersTruth(t, name, c.a, c.w, r, true)
	}
}

// TestVisionTruth is the truth of issues 16 and 20 for the vision
// transformers: ViTForImageClassification and Dinov2ForImageClassification
// and Dinov2WithRegistersForImageClassification
// (AutoModelForImageClassification.from_config, train.py's image-cls task
// on random pixel_values, one label per image; impl "transformers" only),
// tiny sizes (32-pixel images of 8-pixel patches: 16 patches + the class
// token = seq 17), on the CPU. Parameters, trainable parameters,
// optimizer-state bytes and saved-for-backward bytes equal memval's within
// 0.1%, and every saved term is marked measured.
func TestVisionTruth(t *testing.T) {
	needTorch(t)
	swiglu, err := model.ParseConfig([]byte(`{"model_type": "dinov2", "hidden_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "image_size": 32, "patch_size": 8, "use_swiglu_ffn": true}`))
	if err != nil {
		t.Fatal(err)
	}
	swiglu.Head, swiglu.Labels = model.HeadImageCls, 3
	swiglu = normalized(t, swiglu)
	type tc struct {
		a model.Arch
		w model.Workload
	}
	var cases []tc
	for _, fam := range []string{"vit", "dinov2"} {
		a := normalized(t, model.Arch{Family: fam, Layers: 2, Hidden: 64, Heads: 4, FFN: 256, ImageSize: 32, PatchSize: 8,
			Head: model.HeadImageCls, Labels: 3})
		for _, w := range []model.Workload{{}, {Precision: model.BF16Mixed}, {Precision: model.BF16Pure}, {Dropout: 0.1},
			{Precision: model.BF16Mixed, Dropout: 0.1}, {Precision: model.BF16Mixed, Attention: model.FlashAttention},
			{Checkpointing: model.FullCheckpointing}} {
			cases = append(cases, tc{a, w})
		}
	}
	cases = append(cases, tc{swiglu, model.Workload{}}, tc{swiglu, model.Workload{Precision: model.BF16Mixed}})
	// two register tokens after the class token: seq 16 + 1 + 2
	reg := normalized(t, model.Arch{Family: "dinov2_with_registers", Layers: 2, Hidden: 64, Heads: 4, FFN: 256, ImageSize: 32,
		PatchSize: 8, Registers: 2, Head: model.HeadImageCls, Labels: 3})
	cases = append(cases, tc{reg, model.Workload{}}, tc{reg, model.Workload{Precision: model.BF16Mixed, Dropout: 0.1}})
	jobs := make([]TrainJob, len(cases))
	for i := range cases {
		w := &cases[i].w
		w.Batch, w.Seq, w.Backend, w.Loss = 2, model.ImageTokens(cases[i].a), model.CPU, model.HFLoss
		*w = hfWorkload(*w, "transformers")
		jobs[i] = TrainJob{Arch: cases[i].a, Workload: *w, Steps: 1, Seed: 1, Device: "cpu",
			MeasureSaved: true, Impl: "transformers", ListSaved: true}
	}
	res := runTruthJobs(t, jobs)
	for i, r := range res {
		c := cases[i]
		name := fmt.Sprintf("%s gated %v %s dropout %g %s ckpt %s", c.a.Family, c.a.GatedMLP, c.w.Precision, c.w.Dropout,
			c.w.AttnImpl, c.w.Checkpointing)
		checkTransformersTruth(t, name, c.a, c.w, r, true)
	}
}
