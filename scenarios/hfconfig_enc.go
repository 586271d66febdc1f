package scenarios

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// encoderHead refuses an encoder (bert, roberta, xlm-roberta, distilbert:
// model.Family.NoHead) without a task head: train.py trains the masked-LM
// and classification classes (AutoModelForMaskedLM,
// AutoModelForSequenceClassification, AutoModelForTokenClassification);
// the bare encoder has no loss.
func encoderHead(a model.Arch, fam *model.Family) error {
	if !fam.NoHead {
		return nil
	}
	switch a.Head {
	case model.HeadMLM, model.HeadSeqCls, model.HeadTokenCls:
		return nil
	}
	return fmt.Errorf("hf config: arch.family %q is an encoder: arch.head %q has no loss for train.py; use mlm, seq-cls:N or token-cls:N", a.Family, a.Head)
}

// encoderConfig adds an encoder's own keys to a config.json written by
// HFConfig: the token types (type_vocab_size), DistilBERT's activation
// and classifier dropout (seq_classif_dropout, which its sequence
// classifier uses instead of the hidden dropout), and RoBERTa's
// pad_token_id 1, from which its position ids count (padding_idx + 1 on,
// so max_position_embeddings must be at least seq + 2).
func encoderConfig(m map[string]any, a model.Arch, w model.Workload, fam *model.Family) {
	if !fam.NoHead {
		return
	}
	if fam.TokenTypes > 0 {
		m["type_vocab_size"] = a.TokenTypes
	}
	switch a.Family {
	case "distilbert":
		m["activation"] = a.Act
		m["seq_classif_dropout"] = w.Dropout
	case "roberta", "xlm-roberta":
		m["pad_token_id"] = 1
	}
}
