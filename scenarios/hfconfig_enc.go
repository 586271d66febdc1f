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
	if fam.Vision != nil {
		if a.Head == model.HeadImageCls {
			return nil
		}
		return fmt.Errorf("hf config: arch.family %q is a vision model: arch.head %q has no loss for train.py; use image-cls:N", a.Family, a.Head)
	}
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
func encoderConfig(m map[string]any, a model.Arch, w model.Workload, fam *model.Family) error {
	if fam.Vision != nil {
		return visionConfig(m, a)
	}
	if !fam.NoHead {
		return nil
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
	return nil
}

// visionConfig adds a vision model's keys: the image, patch and channels,
// qkv_bias, the labels of its image classifier, and DINOv2's MLP width
// (mlp_ratio: Dinov2MLP is int(hidden * mlp_ratio) wide; Dinov2SwiGLUFFN,
// when gated, rounds 2/3 of that to a multiple of 8, written here with
// ratio 4 only), mask token and register tokens. It errors for an ffn the config cannot
// express.
func visionConfig(m map[string]any, a model.Arch) error {
	m["image_size"], m["patch_size"], m["num_channels"] = a.ImageSize, a.PatchSize, a.Channels
	m["qkv_bias"] = a.QKVBias
	if a.Head == model.HeadImageCls {
		m["num_labels"] = a.Labels
	}
	if !a.LayerScale { // vit
		return nil
	}
	if a.Registers > 0 {
		m["num_register_tokens"] = a.Registers
	}
	ratio := float64(a.FFN) / float64(a.Hidden)
	want := int(float64(a.Hidden) * ratio)
	if a.GatedMLP {
		ratio, want = 4, (int(float64(4*a.Hidden)*2/3)+7)/8*8
	}
	if want != a.FFN {
		return fmt.Errorf("hf config: arch.ffn %d: a dinov2 config.json gives the MLP as mlp_ratio of hidden %d; use ffn %d", a.FFN, a.Hidden, want)
	}
	m["mlp_ratio"], m["use_swiglu_ffn"], m["use_mask_token"] = ratio, a.GatedMLP, a.MaskToken
	return nil
}
