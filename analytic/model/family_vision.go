package model

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Vision is what makes a family an image model (issues 16 and 20): a
// Conv2d patch embedding (kernel and stride PatchSize) cuts each square
// image of ImageSize pixels into (ImageSize/PatchSize)^2 patches, a class
// token is put first and a learned position table of patches+1 rows
// added; there is no vocabulary. The tokens per image, patches+1, are the
// workload's Seq (ImageTokens); the batch is images.
type Vision struct {
	ImageSize, PatchSize int  // the configuration class's defaults
	MaskToken            bool // a learned mask token of H (DINOv2's use_mask_token, default true)
	LayerScale           bool // a per-channel scale (H) after the attention and after the MLP (DINOv2)
	// ClsMeanPatch: the image classifier reads the class token and the
	// mean of the patch tokens, 2H wide (Dinov2ForImageClassification);
	// false: the class token, H (ViTForImageClassification).
	ClsMeanPatch bool
	// Registers is the configuration class's num_register_tokens (0: the
	// family has none).
	Registers int
}

// VisionLayerName is the eager program of the vision transformers
// (Layer.Name).
const VisionLayerName = "vit"

// OpLayerScale multiplies the branch by a learned per-channel scale
// before the residual add (Dinov2LayerScale).
const OpLayerScale Op = "layer_scale"

// The vision transformers' layers as transformers 5.24 runs them
// (transformers/models/vit/modeling_vit.py ViTLayer,
// models/dinov2/modeling_dinov2.py Dinov2Layer): pre-norm, separate q, k,
// v nn.Linear, eager attention scaled by a Python float without a mask.
// ViT's softmax runs in fp32 and casts back (softmax(dtype=float32)), and
// drops out both residual branches with hidden_dropout_prob; DINOv2's
// softmax runs in the scores' dtype, scales both branches (layer scale)
// and has no dropout in its layers (only after the embeddings).
var (
	vitLayer = &Layer{Name: VisionLayerName,
		Ops:      []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		SplitQKV: true, SoftmaxFP32: true, Dropout: true}
	dinov2Layer = &Layer{Name: VisionLayerName,
		Ops:      []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpLayerScale, OpResidual, OpNorm, OpMLP, OpLayerScale, OpResidual},
		SplitQKV: true, Dropout: true}
)

// ImageTokens is the tokens per image of a vision model, patches plus the
// class token; 0 for a text model. a must be normalized.
func ImageTokens(a Arch) int {
	if f, ok := families[a.Family]; !ok || f.Vision == nil || a.PatchSize == 0 {
		return 0
	}
	n := a.ImageSize / a.PatchSize
	return n*n + 1 + a.Registers
}

// normalizeVision fills and checks the image fields of a (Normalize's
// hook): the family's image and patch sizes when zero, three channels, no
// vocabulary, and the position table and context of patches+1 rows. A text
// family's image fields must be zero.
func (a *Arch) normalizeVision(fam *Family) error {
	v := fam.Vision
	if v == nil {
		switch {
		case a.ImageSize != 0, a.PatchSize != 0, a.Channels != 0:
			return &FieldError{Field: "image_size", Value: a.ImageSize,
				Reason: fmt.Sprintf("the %s family reads tokens, not images; leave image_size, patch_size and channels 0", a.Family)}
		case a.MaskToken || a.LayerScale || a.Registers != 0:
			return &FieldError{Field: "mask_token", Value: a.MaskToken,
				Reason: fmt.Sprintf("the %s family has no mask token, layer scale or registers; leave mask_token and layer_scale false and registers 0", a.Family)}
		}
		return nil
	}
	if a.Registers < 0 || a.Registers > MaxDim || a.Registers != 0 && v.Registers == 0 {
		return &FieldError{Field: "registers", Value: a.Registers,
			Reason: fmt.Sprintf("the %s family has no register tokens; leave registers 0 (dinov2_with_registers has them)", a.Family)}
	}
	if a.Vocab != 0 {
		return &FieldError{Field: "vocab", Value: a.Vocab,
			Reason: fmt.Sprintf("the %s family embeds image patches and has no vocabulary; leave vocab 0", a.Family)}
	}
	if a.ImageSize == 0 {
		a.ImageSize = v.ImageSize
	}
	if a.PatchSize == 0 {
		a.PatchSize = v.PatchSize
	}
	if a.Channels == 0 {
		a.Channels = 3
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"image_size", a.ImageSize}, {"patch_size", a.PatchSize}, {"channels", a.Channels}} {
		if f.v < 0 || f.v > MaxDim {
			return &FieldError{Field: f.name, Value: f.v, Reason: fmt.Sprintf("must be a positive integer up to %d", MaxDim)}
		}
	}
	if a.PatchSize > a.ImageSize {
		return &FieldError{Field: "patch_size", Value: a.PatchSize,
			Reason: fmt.Sprintf("is larger than image_size %d; an image needs at least one patch", a.ImageSize)}
	}
	n := a.ImageSize / a.PatchSize
	if n*n+1+a.Registers > MaxDim {
		return &FieldError{Field: "image_size", Value: a.ImageSize,
			Reason: fmt.Sprintf("gives %d patches of %d pixels, more than memval accepts; use a larger patch_size", n*n, a.PatchSize)}
	}
	if a.MaxPositions != 0 && a.MaxPositions != n*n+1 {
		return &FieldError{Field: "max_positions", Value: a.MaxPositions,
			Reason: fmt.Sprintf("a %s model of image_size %d and patch_size %d has %d position rows (patches + class token); leave max_positions 0", a.Family, a.ImageSize, a.PatchSize, n*n+1)}
	}
	a.MaxPositions, a.ContextLength, a.PositionOffset, a.TokenTypes = n*n+1, n*n+1+a.Registers, 0, 0
	return nil
}

// normalizeVisionHead checks a vision model's head: "" or none (the base
// model, ViTModel with its pooler, Dinov2Model) or image-cls:N.
func (a *Arch) normalizeVisionHead(fam *Family) error {
	switch a.Head {
	case "", HeadNone:
		if a.Labels != 0 {
			return &FieldError{Field: "labels", Value: a.Labels, Reason: "needs the image classifier: head image-cls"}
		}
		a.NoHead = true
		if a.Head == HeadNone {
			a.Pooler = fam.Pooler
		}
		return nil
	case HeadImageCls:
		if a.Labels < 1 {
			return &FieldError{Field: "head", Value: fmt.Sprintf("%s:%d", a.Head, a.Labels), Reason: "an image classifier needs at least 1 label, e.g. image-cls:1000"}
		}
		a.NoHead, a.Pooler = true, false // *ForImageClassification builds the base model without its pooler
		return nil
	}
	return &FieldError{Field: "head", Value: fmt.Sprintf("%q", a.Head),
		Reason: fmt.Sprintf("the %s family classifies images; use image-cls:N or none", a.Family)}
}

// visionComponents are a vision model's parameters beyond a text
// encoder's (countParams): once the patch embedding (Conv2d of
// Channels x PatchSize^2 to H, with bias), the class token and the mask
// token; per layer the two layer scales. The position table is
// embed_positions (MaxPositions rows).
func visionComponents(a *Arch, c *checked) (once, perLayer []ParamComponent) {
	f := families[a.Family]
	if f == nil || f.Vision == nil {
		return nil, nil
	}
	H, C, P := a.Hidden, a.Channels, a.PatchSize
	once = []ParamComponent{
		{Name: "patch_embed.projection", Group: ParamEmbeddings, Count: c.add(c.mul(H, C, P, P), c.mul(H)),
			Shape: fmt.Sprintf("%dx%dx%dx%d+%d", H, C, P, P, H)},
		{Name: "cls_token", Group: ParamEmbeddings, Count: c.mul(H), Shape: fmt.Sprint(H)},
	}
	if a.Registers > 0 {
		once = append(once, ParamComponent{Name: "register_tokens", Group: ParamEmbeddings, Count: c.mul(a.Registers, H),
			Shape: fmt.Sprintf("%dx%d", a.Registers, H)})
	}
	if a.MaskToken {
		once = append(once, ParamComponent{Name: "mask_token", Group: ParamEmbeddings, Count: c.mul(H), Shape: fmt.Sprint(H)})
	}
	if a.LayerScale {
		perLayer = []ParamComponent{{Name: "layer_scale", Group: ParamOther, Count: c.mul(2, H), Shape: fmt.Sprintf("2x%d", H)}}
	}
	return once, perLayer
}

// visionTotals is the sums of visionComponents (TotalParams).
func visionTotals(a *Arch, c *checked) (once, perLayer int64) {
	o, l := visionComponents(a, c)
	for _, p := range o {
		once = c.add(once, p.Count)
	}
	for _, p := range l {
		perLayer = c.add(perLayer, p.Count)
	}
	return once, perLayer
}

// visionKeys are the keys of a ViT-style config.
func visionKeys(ffn []string, read func(c *config, a *Arch) error) *ConfigKeys {
	return &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: ffn, FFNOptional: len(ffn) == 0,
		Dropouts: []ConfigDropout{{"hidden_dropout_prob", 0}, {"attention_probs_dropout_prob", 0}}, Read: read}
}

// readImage reads image_size, patch_size (an integer, or a square [n, n]
// pair) and num_channels, and qkv_bias.
func readImage(c *config, a *Arch) (err error) {
	if a.ImageSize, err = c.square("image_size", a.ImageSize); err != nil {
		return err
	}
	if a.PatchSize, err = c.square("patch_size", a.PatchSize); err != nil {
		return err
	}
	if a.Channels, err = c.int("channels", false, 3, "num_channels"); err != nil {
		return err
	}
	a.QKVBias, err = c.bool("qkv_bias", true)
	return err
}

// readViT reads ViTConfig's switches; the base model's pooler must be
// hidden_size wide (pooler_output_size).
func readViT(c *config, a *Arch) error {
	a.ImageSize, a.PatchSize = 224, 16
	if err := readImage(c, a); err != nil {
		return err
	}
	if n, err := c.int("pooler_output_size", false, a.Hidden, "pooler_output_size"); err != nil {
		return err
	} else if n != a.Hidden {
		return &FieldError{Field: "pooler_output_size", Value: n,
			Reason: fmt.Sprintf("a pooler narrower or wider than hidden_size %d is not supported; remove the key", a.Hidden)}
	}
	return nil
}

// readDinov2 reads Dinov2Config's switches: the MLP of mlp_ratio*hidden
// (Dinov2MLP), or with use_swiglu_ffn a SwiGLU of (int(2/3 of that)+7)
// rounded down to a multiple of 8 (Dinov2SwiGLUFFN: gate, up and down
// with biases, silu), and use_mask_token.
func readDinov2(c *config, a *Arch) (err error) {
	a.ImageSize, a.PatchSize = 224, 14
	if err := readImage(c, a); err != nil {
		return err
	}
	ratio, err := c.positiveNumber("mlp_ratio", 4)
	if err != nil {
		return err
	}
	f := int(float64(a.Hidden) * ratio)
	swiglu, err := c.bool("use_swiglu_ffn", false)
	if err != nil {
		return err
	}
	if swiglu {
		f = (int(float64(f)*2/3) + 7) / 8 * 8
		a.GatedMLP, a.Act = true, "silu"
	}
	if f < 1 || f > MaxDim {
		return &FieldError{Field: "mlp_ratio", Value: ratio, Reason: fmt.Sprintf("gives an MLP of %d, outside 1..%d", f, MaxDim)}
	}
	a.FFN = f
	a.MaskToken, err = c.bool("use_mask_token", true)
	return err
}

// readDinov2Registers reads Dinov2WithRegistersConfig: DINOv2's keys
// with 16-pixel patches by default, num_register_tokens (default 4) and
// the mask token always (the class has no use_mask_token).
func readDinov2Registers(c *config, a *Arch) (err error) {
	if err := readDinov2(c, a); err != nil {
		return err
	}
	if _, ok := c.m["patch_size"]; !ok {
		a.PatchSize = 16
	}
	a.MaskToken = true
	a.Registers, err = c.int("registers", false, 4, "num_register_tokens")
	return err
}

// square reads a size given as an integer or a square [n, n] pair.
func (c *config) square(key string, def int) (int, error) {
	v, ok := c.m[key]
	if !ok || v == nil {
		return def, nil
	}
	if l, isList := v.([]any); isList {
		if len(l) != 2 || fmt.Sprint(l[0]) != fmt.Sprint(l[1]) {
			return 0, &FieldError{Field: key, Value: jsonValue(v), Reason: "only square images and patches are supported: give one integer or [n, n]"}
		}
		sub := &config{m: map[string]any{key: l[0]}, keys: c.keys}
		return sub.int(key, true, 0, key)
	}
	return c.int(key, true, 0, key)
}

// positiveNumber reads a positive number (integer or not), def when absent.
func (c *config) positiveNumber(key string, def float64) (float64, error) {
	v, ok := c.m[key]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, &FieldError{Field: key, Value: jsonValue(v), Reason: "is " + jsonKind(v) + " where a number is expected"}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || !(f > 0) || f > MaxDim {
		return 0, &FieldError{Field: key, Value: n, Reason: "must be a positive number"}
	}
	return f, nil
}
