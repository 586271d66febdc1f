package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// checkImageSeq checks that a vision model's workload sees its tokens per
// image (model.ImageTokens: patches + the class token) as the sequence:
// for vit and dinov2 Workload.Seq is that count and Workload.Batch is
// images.
func checkImageSeq(a model.Arch, seq int) error {
	n := model.ImageTokens(a)
	if n == 0 || seq == n {
		return nil
	}
	return &model.FieldError{Field: "seq", Value: seq,
		Reason: fmt.Sprintf("a %s model of image_size %d and patch_size %d sees %d tokens per image (%d patches + the class token); give seq %d (batch counts images)",
			a.Family, a.ImageSize, a.PatchSize, n, n-1, n)}
}

// visShape is what the vision transformers' program
// (model.VisionLayerName: vit, dinov2) needs beyond actShape.
//
// Measured on torch 2.11's CPU against transformers 5.24's
// ViTForImageClassification and Dinov2ForImageClassification
// (TestVisionTruth in scenarios/family_truth_enc_test.go; models/vit/modeling_vit.py,
// models/dinov2/modeling_dinov2.py). S is the tokens per image (patches +
// the class token), B the images, I the image size, C the channels, P the
// patch size. Once:
//
//	input.pixels          a*B*C*I*I   the patch Conv2d's input (the fp32 pixels; under
//	                                  autocast or pure bf16 their 16-bit copy)
//	autocast.patch_weight 2*H*C*P*P   under autocast
//	dropout.embed_mask    r*B*S*H     with dropout (the class token's fp32 makes it r)
//
// per layer, pre-norm: ln.in, ln.stats (two LayerNorms), attn.qkv_in (one
// input, or under autocast q, k and v's own copies), the eager core
// (q, k^T, v copies; ViT's softmax(dtype=float32): fp32 scores and their
// cast back when 16-bit; DINOv2's softmax in the scores' dtype; with
// dropout its mask and the dropped probabilities) or sdpa's q, k, v and
// logsumexp, attn.proj_in, ViT's two residual dropout masks, DINOv2's two
// layer-scale inputs (a*2*B*S*H), the MLP's input, activation input and
// second projection's input (SwiGLU: gate, silu, up as Llama's, and under
// autocast gate and up each cast the input), the linear weights' autocast
// copies; then the final LayerNorm and the image classifier: ViT's reads
// the class token, a view of the whole final norm output (a*B*S*H; under
// autocast a B*H copy); DINOv2's the concatenated class and mean patch
// tokens (B*2H); cross entropy over B images (fp32 under autocast, else
// the logits' dtype).
type visShape struct {
	pixels, patchWeights float64 // B*C*I*I, H*C*P*P
	softmaxFP32          bool    // ViT's eager softmax(dtype=float32)
	residDropout         bool    // dropout on both residual branches (ViT)
	layerScale           bool    // DINOv2's layer scale
	gated                bool    // DINOv2's SwiGLU MLP
	clsWidth, labels     float64 // the classifier's input width (H or 2H) and outputs
	classify             bool    // image-cls head (else the base model: derived)
}

// initVision sets s.vis for a vision family.
func (s *actShape) initVision(a *model.Arch, fam *model.Family, known bool) {
	s.vis = nil
	if !known || fam.Vision == nil {
		return
	}
	C, I, P := float64(a.Channels), float64(a.ImageSize), float64(a.PatchSize)
	v := &visShape{pixels: s.B * C * I * I, patchWeights: s.H * C * P * P, softmaxFP32: fam.Layer.SoftmaxFP32,
		residDropout: fam.Layer.HasOp(model.OpDropout), layerScale: fam.Layer.HasOp(model.OpLayerScale), gated: a.GatedMLP,
		clsWidth: s.H, labels: float64(a.Labels), classify: a.Head == model.HeadImageCls}
	if fam.Vision.ClsMeanPatch {
		v.clsWidth = 2 * s.H
	}
	if !v.classify {
		s.note = noteDerived // the base model has no loss of its own
	}
	s.vis = v
}

// visTerms is a vision model: patch embedding, L layers, final norm and
// the image classifier.
func (s *actShape) visTerms(b *actBuilder) {
	v, BS := s.vis, s.B*s.S
	b.add("input.pixels", GroupInput, v.pixels, "B*C*I*I", s.a)
	if s.autocast {
		b.add("autocast.patch_weight", GroupActivations, v.patchWeights, "H*C*P*P", 2)
	}
	if s.dropout {
		b.add("dropout.embed_mask", GroupActivations, BS*s.H, "B*S*H", s.maskBytes(s.r))
	}
	s.layerTerms(b)
	b.add("lnf.in", GroupActivations, BS*s.H, "B*S*H", s.r)
	b.add("lnf.stats", GroupActivations, 2*BS, "2*B*S", s.stat)
	if !v.classify {
		return
	}
	switch {
	case s.autocast:
		b.add("cls.in", GroupActivations, s.B*v.clsWidth, "B*W", 2)
		b.add("autocast.cls_weight_copy", GroupActivations, v.clsWidth*v.labels, "W*N", 2)
	case v.clsWidth == s.H:
		b.add("cls.in", GroupActivations, BS*s.H, "B*S*H", s.a) // a view of the class token keeps the whole output
	default:
		b.add("cls.in", GroupActivations, s.B*v.clsWidth, "B*2*H", s.a) // torch.cat of the class and mean patch tokens
	}
	ls := s.a
	if s.autocast {
		ls = 4
	}
	b.add("loss.log_softmax", GroupLogits, s.B*v.labels, "B*N", ls)
	b.add("loss.targets", GroupLogits, s.B, "B", 8)
	b.add("loss.total_weight", GroupLogits, 1, "1", ls)
}

// visLayer is one vision transformer layer times L.
func (s *actShape) visLayer(b *actBuilder) {
	v, L := s.vis, s.L
	BSH := s.B * s.S * s.H * L
	BSq := s.B * s.S * s.h * s.hd * L
	BSF := s.B * s.S * s.F * L
	b.add("ln.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.r)
	b.add("ln.stats", GroupActivations, 4*s.B*s.S*L, "4*B*S*L", s.stat)
	if eager := s.splitQKVAttn(b, BSH, BSq); eager { // activations_enc.go
		BhSS := s.B * s.h * s.S * s.S * L
		if !v.softmaxFP32 {
			s.castCore(b, BhSS) // activations_enc.go
		} else {
			b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4)
			if s.a != 4 && !s.dropout { // the cast back; dropout keeps only its mask of it
				b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
			}
			if s.dropout {
				b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(s.a))
				b.add("attn.probs_dropped", GroupActivations, BhSS, "B*h*S*S*L", s.a)
			}
		}
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	if s.dropout && v.residDropout {
		b.add("dropout.resid_mask", GroupActivations, 2*BSH, "2*B*S*H*L", s.maskBytes(s.a))
	}
	if v.layerScale {
		b.add("layer_scale.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.a)
	}
	if v.gated {
		n := 1.0
		if s.autocast {
			n = 2 // gate and up each cast the norm's output
		}
		b.add("mlp.fc_in", GroupActivations, n*BSH, "B*S*H*L", s.a)
		b.add("mlp.act", GroupActivations, 3*BSF, "3*B*S*F*L", s.a) // gate out, silu(gate), up out
	} else {
		b.add("mlp.fc_in", GroupActivations, BSH, "B*S*H*L", s.a)
		if s.actSaves {
			b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.a)
		}
	}
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*L, "linear params", 2)
	}
}

// batchInput is the batch the training loop holds (the breakdown's
// input_ids term): B*S int64 token ids, or a vision model's fp32 pixels,
// B*C*I*I.
func (in *inputs) batchInput() (float64, string, float64) {
	if model.ImageTokens(in.a) > 0 {
		I := float64(in.a.ImageSize)
		return in.B * float64(in.a.Channels) * I * I, "B*C*I*I", 4
	}
	return in.B * in.S, "B*S", 8
}

// visLossExtras is lossExtras for a vision model: the image classifier's
// B x N logits the loop holds and, under autocast, the fp32 copy cross
// entropy makes (derived, not measured; none for the base model).
func (s *actShape) visLossExtras(b *actBuilder, held, loss int, heldNote string) {
	if !s.vis.classify {
		return
	}
	n := s.B * s.vis.labels
	b.put("logits.output", GroupLogits, n, "B*N", s.a, held, heldNote)
	if s.autocast && s.a != 4 {
		b.put("logits.fp32_copy", GroupLogits, n, "B*N", 4, loss, b.note)
	}
}

// visLogitsGrad is logitsGrad for a vision model: the B x N logits'
// gradients (log_softmax's and the logits').
func (s *actShape) visLogitsGrad() (float64, string, float64) {
	if !s.vis.classify {
		return 0, "B*N", 0
	}
	ls := s.a
	if s.autocast {
		ls = 4
	}
	return s.B * s.vis.labels, "B*N", 2 * ls
}
