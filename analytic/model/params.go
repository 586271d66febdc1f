package model

import (
	"fmt"
	"math/bits"
)

// Parameter groups of a ParamComponent.
const (
	ParamEmbeddings = "embeddings"
	ParamAttention  = "attention"
	ParamMLP        = "mlp"
	ParamNorms      = "norms"
	ParamHead       = "head"
	ParamOther      = "other"
)

// ParamComponent is one tensor (or one kind of tensor) of a model.
type ParamComponent struct {
	Name     string `json:"name"`      // a family-neutral module name: attn.q_proj.weight, mlp.fc1.weight, final_norm, ...
	Group    string `json:"group"`     // embeddings, attention, mlp, norms, head or other
	Shape    string `json:"shape"`     // e.g. "768x2304"; "8x(768x3072)" for experts
	Count    int64  `json:"count"`     // parameters in one instance
	PerLayer bool   `json:"per_layer"` // repeated in each of the Layers layers
}

// ParamBreakdown is a model's parameter count, exact to the parameter, by
// group and by component. Group totals include every layer.
type ParamBreakdown struct {
	Total      int64 `json:"total"`
	Embeddings int64 `json:"embeddings"` // token, position and token-type tables
	Attention  int64 `json:"attention"`  // Q, K, V and output projections with their biases
	MLP        int64 `json:"mlp"`        // feed-forward projections (all experts) and the MoE router
	Norms      int64 `json:"norms"`      // every LayerNorm/RMSNorm, including the embedding and final ones
	Head       int64 `json:"head"`       // untied LM head weight and any head bias
	Other      int64 `json:"other"`      // BERT pooler, OPT project_in/out
	PerLayer   int64 `json:"per_layer"`  // one layer (attention + MLP + its norms)

	// ActivePerToken is the parameters one token passes through: Total less
	// the experts it is not routed to (MoE); equal to Total for dense models.
	ActivePerToken int64 `json:"active_per_token"`

	Components []ParamComponent `json:"components"`
}

// Params counts the parameters of a, exactly as the Hugging Face modeling
// code for a's family builds them (the seed article's formula for family
// "vanilla"). a is normalized first (a copy; see Arch.Normalize), so bare
// dimensions work.
//
// Per layer, with H hidden, h heads, k kv heads, d head dim, F the FFN width:
//
//	attention = H*h*d + 2*H*k*d + h*d*H  (+ h*d + 2*k*d with QKV biases, + H with an output bias)
//	MLP       = 2*H*F (+ F + H biases), gated 3*H*F (+ 2F + H), MoE experts*3*H*F + H*experts
//	            (+ 3*H*SharedFFN for a shared expert, + H for its gate)
//	norms     = NormsPerLayer * (2H LayerNorm | H RMSNorm)
//	            (+ 2 norms of d with per-head q/k norms, of h*d and k*d with full ones)
//
// and once: token table V*H (V*EmbedProj for OPT), learned positions
// (MaxPositions+PositionOffset)*H, token types TokenTypes*H, embedding and
// final norms, an untied head H*V (+ V bias), the BERT pooler H*H + H, OPT's
// project_in/out 2*H*EmbedProj. It errors with a *FieldError if a is invalid
// or a count would exceed int64.
func Params(a Arch) (ParamBreakdown, error) {
	if err := a.Normalize(); err != nil {
		return ParamBreakdown{}, err
	}
	return countParams(a)
}

// overflowError reports a parameter count that does not fit int64.
func overflowError(a Arch) error {
	return &FieldError{Field: "hidden", Value: a.Hidden,
		Reason: "the parameter count overflows a 64-bit integer; the sizes are implausibly large"}
}

// checked multiplies and adds non-negative counts, remembering overflow past
// 1<<62 instead of wrapping.
type checked struct{ overflow bool }

const checkedLimit = 1 << 62

func (c *checked) mul(xs ...int) int64 {
	p := uint64(1)
	for _, x := range xs {
		if x < 0 {
			c.overflow = true
			return 0
		}
		hi, lo := bits.Mul64(p, uint64(x))
		if hi != 0 || lo > checkedLimit {
			c.overflow = true
			return 0
		}
		p = lo
	}
	return int64(p)
}

func (c *checked) add(xs ...int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
		if s > checkedLimit || x < 0 {
			c.overflow = true
			return 0
		}
	}
	return s
}

// countParams counts an already normalized a.
func countParams(a Arch) (ParamBreakdown, error) {
	var c checked
	var comps []ParamComponent
	addc := func(name, group string, count int64, perLayer bool, shape string) {
		if count == 0 {
			return
		}
		comps = append(comps, ParamComponent{Name: name, Group: group, Shape: shape, Count: count, PerLayer: perLayer})
	}
	H, V := a.Hidden, a.Vocab
	q := a.Heads * a.HeadDim // query width
	kv := a.KVHeads * a.HeadDim
	if a.HeadDim > MaxDim || a.Heads > MaxDim || a.KVHeads > MaxDim {
		return ParamBreakdown{}, overflowError(a)
	}
	if a.Heads != 0 && q/a.Heads != a.HeadDim {
		return ParamBreakdown{}, overflowError(a)
	}
	norm := func(width int) int64 {
		if a.Norm == RMSNorm {
			return c.mul(width)
		}
		return c.mul(2, width)
	}
	normShape := func(width int) string {
		if a.Norm == RMSNorm {
			return fmt.Sprint(width)
		}
		return fmt.Sprintf("2x%d", width)
	}

	// Embeddings.
	embedWidth := H
	if a.EmbedProj != 0 {
		embedWidth = a.EmbedProj
	}
	addc("embed_tokens", ParamEmbeddings, c.mul(V, embedWidth), false, fmt.Sprintf("%dx%d", V, embedWidth))
	if a.MaxPositions > 0 {
		rows := a.MaxPositions + a.PositionOffset
		addc("embed_positions", ParamEmbeddings, c.mul(rows, H), false, fmt.Sprintf("%dx%d", rows, H))
	}
	if a.TokenTypes > 0 {
		addc("token_type_embeddings", ParamEmbeddings, c.mul(a.TokenTypes, H), false, fmt.Sprintf("%dx%d", a.TokenTypes, H))
	}
	if a.EmbedNorm {
		addc("embeddings.norm", ParamNorms, norm(H), false, normShape(H))
	}
	if a.EmbedProj != 0 {
		addc("project_in", ParamOther, c.mul(a.EmbedProj, H), false, fmt.Sprintf("%dx%d", a.EmbedProj, H))
		addc("project_out", ParamOther, c.mul(H, a.EmbedProj), false, fmt.Sprintf("%dx%d", H, a.EmbedProj))
	}

	once, perLayer := visionComponents(&a, &c) // family_vision.go
	for _, p := range once {
		addc(p.Name, p.Group, p.Count, false, p.Shape)
	}
	for _, p := range perLayer {
		addc(p.Name, p.Group, p.Count, true, p.Shape)
	}

	// One layer: attention.
	addc("attn.q_proj.weight", ParamAttention, c.mul(H, q), true, fmt.Sprintf("%dx%d", H, q))
	addc("attn.k_proj.weight", ParamAttention, c.mul(H, kv), true, fmt.Sprintf("%dx%d", H, kv))
	addc("attn.v_proj.weight", ParamAttention, c.mul(H, kv), true, fmt.Sprintf("%dx%d", H, kv))
	if a.QKVBias {
		addc("attn.qkv.bias", ParamAttention, c.add(c.mul(q), c.mul(2, kv)), true, fmt.Sprintf("%d+2x%d", q, kv))
	}
	addc("attn.o_proj.weight", ParamAttention, c.mul(q, H), true, fmt.Sprintf("%dx%d", q, H))
	if a.OutBias {
		addc("attn.o_proj.bias", ParamAttention, c.mul(H), true, fmt.Sprint(H))
	}
	switch a.QKNorm {
	case QKNormHead:
		addc("attn.qk_norm", ParamNorms, c.mul(2, int(norm(a.HeadDim))), true, "2x"+normShape(a.HeadDim))
	case QKNormFull:
		addc("attn.qk_norm", ParamNorms, c.add(norm(q), norm(kv)), true, normShape(q)+"+"+normShape(kv))
	}

	// One layer: MLP.
	F := a.FFN
	expertParams := int64(0)
	switch {
	case a.Experts > 0:
		n := 3
		if !a.GatedMLP {
			n = 2
		}
		expertParams = c.mul(n, H, F)
		addc("moe.experts.weight", ParamMLP, c.mul(a.Experts, n, H, F), true, fmt.Sprintf("%dx%dx(%dx%d)", a.Experts, n, H, F))
		addc("moe.gate.weight", ParamMLP, c.mul(H, a.Experts), true, fmt.Sprintf("%dx%d", H, a.Experts))
		if a.MLPBias {
			per := c.mul(2, F)
			if !a.GatedMLP {
				per = c.mul(F)
			}
			per = c.add(per, c.mul(H))
			expertParams = c.add(expertParams, per)
			addc("moe.experts.bias", ParamMLP, c.mul(a.Experts, int(per)), true, fmt.Sprintf("%dx%d", a.Experts, per))
		}
		if a.SharedFFN > 0 {
			addc("moe.shared_expert.weight", ParamMLP, c.mul(n, H, a.SharedFFN), true, fmt.Sprintf("%dx(%dx%d)", n, H, a.SharedFFN))
		}
		if a.SharedExpertGate {
			addc("moe.shared_expert_gate.weight", ParamMLP, c.mul(H), true, fmt.Sprintf("%dx1", H))
		}
	case a.GatedMLP:
		addc("mlp.gate_proj.weight", ParamMLP, c.mul(H, F), true, fmt.Sprintf("%dx%d", H, F))
		addc("mlp.up_proj.weight", ParamMLP, c.mul(H, F), true, fmt.Sprintf("%dx%d", H, F))
		addc("mlp.down_proj.weight", ParamMLP, c.mul(F, H), true, fmt.Sprintf("%dx%d", F, H))
		if a.MLPBias {
			addc("mlp.bias", ParamMLP, c.add(c.mul(2, F), c.mul(H)), true, fmt.Sprintf("2x%d+%d", F, H))
		}
	default:
		addc("mlp.fc1.weight", ParamMLP, c.mul(H, F), true, fmt.Sprintf("%dx%d", H, F))
		if a.MLPBias {
			addc("mlp.fc1.bias", ParamMLP, c.mul(F), true, fmt.Sprint(F))
		}
		addc("mlp.fc2.weight", ParamMLP, c.mul(F, H), true, fmt.Sprintf("%dx%d", F, H))
		if a.MLPBias {
			addc("mlp.fc2.bias", ParamMLP, c.mul(H), true, fmt.Sprint(H))
		}
	}

	// One layer: norms.
	if a.NormsPerLayer > 0 {
		shape := fmt.Sprintf("%dx%s", a.NormsPerLayer, normShape(H))
		if a.Norm == LayerNorm {
			shape = fmt.Sprintf("%dx(%s)", a.NormsPerLayer, normShape(H))
		}
		addc("layer.norms", ParamNorms, c.mul(a.NormsPerLayer, int(norm(H))), true, shape)
	}

	// After the last layer.
	if a.FinalNorm {
		addc("final_norm", ParamNorms, norm(H), false, normShape(H))
	}
	if !a.NoHead {
		if !a.TiedHead {
			addc("lm_head.weight", ParamHead, c.mul(embedWidth, V), false, fmt.Sprintf("%dx%d", embedWidth, V))
		}
		if a.HeadBias {
			addc("lm_head.bias", ParamHead, c.mul(V), false, fmt.Sprint(V))
		}
	}
	if a.Pooler {
		addc("pooler.dense", ParamOther, c.add(c.mul(H, H), c.mul(H)), false, fmt.Sprintf("%dx%d+%d", H, H, H))
	}
	for _, p := range headComponents(&a, &c) { // task heads (heads.go)
		addc(p.Name, p.Group, p.Count, false, p.Shape)
	}

	var b ParamBreakdown
	for _, p := range comps {
		n := p.Count
		if p.PerLayer {
			b.PerLayer = c.add(b.PerLayer, p.Count)
			n = c.mul(a.Layers, int(p.Count))
		}
		switch p.Group {
		case ParamEmbeddings:
			b.Embeddings = c.add(b.Embeddings, n)
		case ParamAttention:
			b.Attention = c.add(b.Attention, n)
		case ParamMLP:
			b.MLP = c.add(b.MLP, n)
		case ParamNorms:
			b.Norms = c.add(b.Norms, n)
		case ParamHead:
			b.Head = c.add(b.Head, n)
		default:
			b.Other = c.add(b.Other, n)
		}
		b.Total = c.add(b.Total, n)
	}
	b.ActivePerToken = b.Total
	if a.Experts > 0 {
		idle := c.mul(a.Layers, a.Experts-a.ExpertsPerToken, int(expertParams))
		b.ActivePerToken = b.Total - idle
	}
	b.Components = comps
	if c.overflow {
		return ParamBreakdown{}, overflowError(a)
	}
	return b, nil
}

// TotalParams is countParams(a).Total, and its error, without building the
// components: the same checked sums in closed form, allocation-free, for
// Normalize and Predict. a must be normalized (or be checked by Normalize
// up to its call). Tests hold it equal to Params(a).Total.
func TotalParams(a Arch) (int64, error) {
	var c checked
	H, V := a.Hidden, a.Vocab
	q := a.Heads * a.HeadDim
	kv := a.KVHeads * a.HeadDim
	if a.HeadDim > MaxDim || a.Heads > MaxDim || a.KVHeads > MaxDim {
		return 0, overflowError(a)
	}
	if a.Heads != 0 && q/a.Heads != a.HeadDim {
		return 0, overflowError(a)
	}
	norm := func(width int) int64 {
		if a.Norm == RMSNorm {
			return c.mul(width)
		}
		return c.mul(2, width)
	}
	embedWidth := H
	if a.EmbedProj != 0 {
		embedWidth = a.EmbedProj
	}
	// Once: embeddings, final norm, head, pooler, OPT projections.
	once := c.mul(V, embedWidth)
	if a.MaxPositions > 0 {
		once = c.add(once, c.mul(a.MaxPositions+a.PositionOffset, H))
	}
	if a.TokenTypes > 0 {
		once = c.add(once, c.mul(a.TokenTypes, H))
	}
	if a.EmbedNorm {
		once = c.add(once, norm(H))
	}
	if a.EmbedProj != 0 {
		once = c.add(once, c.mul(a.EmbedProj, H), c.mul(H, a.EmbedProj))
	}
	// One layer.
	layer := c.add(c.mul(H, q), c.mul(H, kv), c.mul(H, kv))
	visionOnce, visionLayer := visionTotals(&a, &c) // family_vision.go
	once, layer = c.add(once, visionOnce), c.add(layer, visionLayer)
	if a.QKVBias {
		layer = c.add(layer, c.add(c.mul(q), c.mul(2, kv)))
	}
	layer = c.add(layer, c.mul(q, H))
	if a.OutBias {
		layer = c.add(layer, c.mul(H))
	}
	switch a.QKNorm {
	case QKNormHead:
		layer = c.add(layer, c.mul(2, int(norm(a.HeadDim))))
	case QKNormFull:
		layer = c.add(layer, norm(q), norm(kv))
	}
	F := a.FFN
	switch {
	case a.Experts > 0:
		n := 3
		if !a.GatedMLP {
			n = 2
		}
		layer = c.add(layer, c.mul(a.Experts, n, H, F), c.mul(H, a.Experts))
		if a.MLPBias {
			per := c.mul(2, F)
			if !a.GatedMLP {
				per = c.mul(F)
			}
			per = c.add(per, c.mul(H))
			layer = c.add(layer, c.mul(a.Experts, int(per)))
		}
		if a.SharedFFN > 0 {
			layer = c.add(layer, c.mul(n, H, a.SharedFFN))
		}
		if a.SharedExpertGate {
			layer = c.add(layer, c.mul(H))
		}
	case a.GatedMLP:
		layer = c.add(layer, c.mul(H, F), c.mul(H, F), c.mul(F, H))
		if a.MLPBias {
			layer = c.add(layer, c.add(c.mul(2, F), c.mul(H)))
		}
	default:
		layer = c.add(layer, c.mul(H, F))
		if a.MLPBias {
			layer = c.add(layer, c.mul(F))
		}
		layer = c.add(layer, c.mul(F, H))
		if a.MLPBias {
			layer = c.add(layer, c.mul(H))
		}
	}
	if a.NormsPerLayer > 0 {
		layer = c.add(layer, c.mul(a.NormsPerLayer, int(norm(H))))
	}
	if a.FinalNorm {
		once = c.add(once, norm(H))
	}
	if !a.NoHead {
		if !a.TiedHead {
			once = c.add(once, c.mul(embedWidth, V))
		}
		if a.HeadBias {
			once = c.add(once, c.mul(V))
		}
	}
	if a.Pooler {
		once = c.add(once, c.add(c.mul(H, H), c.mul(H)))
	}
	once = c.add(once, headTotal(&a, &c))
	total := c.add(once, c.mul(a.Layers, int(layer)))
	if c.overflow {
		return 0, overflowError(a)
	}
	return total, nil
}
