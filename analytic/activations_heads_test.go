package analytic

import (
	"testing"

	"github.com/memval/memval/analytic/model"
)

// TestBERTHeadDifferences checks BERT's head terms against differences of
// saved-for-backward bytes measured on torch 2.11's CPU with transformers
// 5.24 (BertForMaskedLM, BertForSequenceClassification and
// BertForTokenClassification from one BertConfig: 2 layers, hidden 64, 4
// heads, intermediate 256, vocab 1000, 3 labels, dropout 0; batch 2,
// sequence 32; eager attention; saved_tensors_hooks, storages counted once,
// parameters left out). The three share the encoder, so the differences are
// the heads' and losses' alone; train.py does not build BERT (its layers
// are modelled approximately), so these are recorded here. The MLM run
// passed labels=input_ids, whose storage was counted already; the model
// counts labels as a tensor of their own (8*B*S more, added below).
func TestBERTHeadDifferences(t *testing.T) {
	const mlmLabels = 8 * 2 * 32
	for _, c := range []struct {
		prec           model.Precision
		mlmTok, seqTok float64 // measured MLM - token-cls, seq-cls - token-cls
	}{
		{model.FP32, 931588 - 627204 + mlmLabels, 626476 - 627204},
		{model.BF16Mixed, 1002244 - 586628 + mlmLabels, 585900 - 586628},
		{model.BF16Pure, 466178 - 314242 + mlmLabels, 313630 - 314242},
	} {
		saved := func(head string, labels int) float64 {
			a := model.Arch{Family: "bert", Layers: 2, Hidden: 64, Heads: 4, FFN: 256, Vocab: 1000, Head: head, Labels: labels}
			if err := a.Normalize(); err != nil {
				t.Fatal(err)
			}
			terms, err := SavedActivations(a, model.Workload{Batch: 2, Seq: 32, Precision: c.prec, Backend: model.CPU})
			if err != nil {
				t.Fatal(err)
			}
			return float64(SavedBytes(terms))
		}
		tok := saved(model.HeadTokenCls, 3)
		if got := saved(model.HeadMLM, 0) - tok; got != c.mlmTok {
			t.Errorf("%s: mlm - token-cls = %.0f bytes, measured %.0f", c.prec, got, c.mlmTok)
		}
		if got := saved(model.HeadSeqCls, 3) - tok; got != c.seqTok {
			t.Errorf("%s: seq-cls - token-cls = %.0f bytes, measured %.0f", c.prec, got, c.seqTok)
		}
	}
}
