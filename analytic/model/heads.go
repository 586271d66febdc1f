package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Task heads (Arch.Head).
const (
	HeadLM       = "lm"        // the causal LM head (*ForCausalLM)
	HeadSeqCls   = "seq-cls"   // sequence classification (*ForSequenceClassification)
	HeadTokenCls = "token-cls" // token classification (*ForTokenClassification)
	HeadMLM      = "mlm"       // masked LM (*ForMaskedLM, encoders)
	HeadNone     = "none"      // the base model (*Model)
	HeadImageCls = "image-cls" // image classification (*ForImageClassification, vision families)
)

// HeadChoices lists the values of the --head flag (N the labels).
func HeadChoices() []string {
	return []string{HeadLM, HeadSeqCls + ":N", HeadTokenCls + ":N", HeadMLM, HeadImageCls + ":N", HeadNone}
}

// ParseHead parses a --head value: lm, seq-cls:N, token-cls:N, mlm or
// none, into Arch.Head and Arch.Labels.
func ParseHead(s string) (head string, labels int, err error) {
	kind, n, hasN := strings.Cut(s, ":")
	switch kind {
	case HeadLM, HeadMLM, HeadNone:
		if !hasN {
			return kind, 0, nil
		}
	case HeadSeqCls, HeadTokenCls, HeadImageCls:
		v, err := strconv.Atoi(n)
		if hasN && err == nil && v >= 1 && v <= MaxDim {
			return kind, v, nil
		}
		return "", 0, &FieldError{Field: "head", Value: fmt.Sprintf("%q", s),
			Reason: fmt.Sprintf("%s needs its number of labels, a positive integer: %s:2, for example", kind, kind)}
	}
	return "", 0, &FieldError{Field: "head", Value: fmt.Sprintf("%q", s), Reason: "unknown head; use one of " + strings.Join(HeadChoices(), ", ")}
}

// headOfArchitecture maps the class name suffixes of a config.json's
// architectures list to a head.
var headOfArchitecture = []struct{ suffix, head string }{
	{"ForCausalLM", HeadLM}, {"LMHeadModel", HeadLM}, {"ForSequenceClassification", HeadSeqCls},
	{"ForTokenClassification", HeadTokenCls}, {"ForMaskedLM", HeadMLM}, {"ForImageClassification", HeadImageCls},
	{"Model", HeadNone},
}

// HeadOfArchitectures returns the head the first class of a config.json's
// architectures names ("" when it names none memval knows, e.g.
// *ForPreTraining or *ForQuestionAnswering).
func HeadOfArchitectures(archs []string) string {
	if len(archs) == 0 {
		return ""
	}
	for _, h := range headOfArchitecture {
		if strings.HasSuffix(archs[0], h.suffix) {
			return h.head
		}
	}
	return ""
}

// normalizeHead sets the head fields of a (NoHead, Pooler) from a.Head and
// checks it; "" leaves the family's own.
func (a *Arch) normalizeHead(fam *Family) error {
	if fam.Vision != nil {
		return a.normalizeVisionHead(fam) // family_vision.go
	}
	encoder := fam.NoHead
	switch a.Head {
	case "":
		if a.Labels != 0 {
			return &FieldError{Field: "labels", Value: a.Labels, Reason: "needs a classification head: head seq-cls or token-cls"}
		}
		return nil
	case HeadLM:
		if encoder {
			return &FieldError{Field: "head", Value: a.Head, Reason: fmt.Sprintf("the %s family is an encoder without a causal LM head; use mlm, seq-cls:N, token-cls:N or none", a.Family)}
		}
		a.NoHead = false
	case HeadNone:
		a.NoHead, a.Pooler = true, fam.Pooler
	case HeadSeqCls, HeadTokenCls:
		if a.Labels < 1 {
			return &FieldError{Field: "head", Value: fmt.Sprintf("%s:%d", a.Head, a.Labels), Reason: "a classifier needs at least 1 label, e.g. " + a.Head + ":2"}
		}
		a.NoHead, a.Pooler = true, false
	case HeadMLM:
		if !encoder {
			return &FieldError{Field: "head", Value: a.Head, Reason: fmt.Sprintf("the %s family is a decoder; use lm, seq-cls:N, token-cls:N or none", a.Family)}
		}
		a.NoHead, a.Pooler = true, false
	default:
		return &FieldError{Field: "head", Value: fmt.Sprintf("%q", a.Head), Reason: "unknown head; use one of " + strings.Join(HeadChoices(), ", ")}
	}
	if a.Head != HeadSeqCls && a.Head != HeadTokenCls && a.Labels != 0 {
		return &FieldError{Field: "labels", Value: a.Labels, Reason: "only seq-cls and token-cls heads have labels"}
	}
	return nil
}

// headComponents are the parameters of a task head (beyond the LM head
// and pooler countParams counts):
//
//	seq-cls, encoders  a dense H*H+H (BERT's pooler, RoBERTa's
//	                   classification head dense, DistilBERT's
//	                   pre_classifier) and the classifier H*N+N
//	seq-cls, decoders  score, H*N without bias
//	token-cls          classifier (score) H*N+N
//	mlm                transform dense H*H+H and its LayerNorm 2H; the
//	                   decoder is tied to the embeddings, its bias V
func headComponents(a *Arch, c *checked) []ParamComponent {
	H, N := a.Hidden, a.Labels
	fam := families[a.Family]
	comp := func(name string, n int64, shape string) ParamComponent {
		return ParamComponent{Name: name, Group: ParamHead, Shape: shape, Count: n}
	}
	switch a.Head {
	case HeadSeqCls:
		if fam != nil && fam.NoHead {
			return []ParamComponent{comp("cls.dense", c.add(c.mul(H, H), c.mul(H)), fmt.Sprintf("%dx%d+%d", H, H, H)),
				comp("classifier", c.add(c.mul(H, N), c.mul(N)), fmt.Sprintf("%dx%d+%d", H, N, N))}
		}
		w := H
		if a.EmbedProj != 0 {
			w = a.EmbedProj
		}
		return []ParamComponent{comp("score", c.mul(w, N), fmt.Sprintf("%dx%d", w, N))}
	case HeadTokenCls:
		return []ParamComponent{comp("classifier", c.add(c.mul(H, N), c.mul(N)), fmt.Sprintf("%dx%d+%d", H, N, N))}
	case HeadImageCls:
		w := H
		if fam != nil && fam.Vision != nil && fam.Vision.ClsMeanPatch {
			w = 2 * H
		}
		return []ParamComponent{comp("classifier", c.add(c.mul(w, N), c.mul(N)), fmt.Sprintf("%dx%d+%d", w, N, N))}
	case HeadMLM:
		return []ParamComponent{comp("mlm.transform", c.add(c.mul(H, H), c.mul(H), c.mul(2, H)), fmt.Sprintf("%dx%d+%d+2x%d", H, H, H, H)),
			comp("mlm.decoder.bias", c.mul(a.Vocab), fmt.Sprint(a.Vocab))}
	}
	return nil
}

// headTotal is the sum of headComponents.
func headTotal(a *Arch, c *checked) int64 {
	var n int64
	for _, p := range headComponents(a, c) {
		n = c.add(n, p.Count)
	}
	return n
}

// HeadTrainable is the classifier's parameters, which LoRA fine-tuning
// trains besides the adapters (PEFT's modules_to_save for SEQ_CLS and
// TOKEN_CLS tasks): the last component of a classification head.
func HeadTrainable(a Arch) int64 {
	var c checked
	ps := headComponents(&a, &c)
	if len(ps) == 0 || a.Head == HeadMLM {
		return 0
	}
	return ps[len(ps)-1].Count
}

// readHead sets a's head from the config's architectures where it names a
// classifier (*ForSequenceClassification, *ForTokenClassification), with
// num_labels (or the size of id2label; transformers' default 2). Other
// classes keep the family's own head: a BERT checkpoint saved from
// BertForMaskedLM is counted as BertModel, as memval always has; give
// --head mlm for its MLM head.
func (c *config) readHead(a *Arch) error {
	v, ok := c.m["architectures"]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		return &FieldError{Field: "architectures", Value: v, Reason: "must be a list of class names"}
	}
	var names []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			names = append(names, s)
		}
	}
	h := HeadOfArchitectures(names)
	if h != HeadSeqCls && h != HeadTokenCls && h != HeadImageCls {
		return nil
	}
	n := 2
	if m, ok := c.m["id2label"].(map[string]any); ok && len(m) > 0 {
		n = len(m)
	}
	n, err := c.int("labels", false, n, "num_labels")
	if err != nil {
		return err
	}
	a.Head, a.Labels = h, n
	return nil
}

// HeadTensors is the number of parameter tensors of HeadTrainable's
// classifier: its weight, and its bias where it has one.
func HeadTensors(a Arch) int {
	switch {
	case HeadTrainable(a) == 0:
		return 0
	case a.Head == HeadSeqCls && !(families[a.Family] != nil && families[a.Family].NoHead):
		return 1 // decoders' score has no bias
	}
	return 2
}
