package model

import (
	"math"
	"sort"
)

// This file is the one description of each model family: what its
// structure is when a config does not say otherwise, how its config.json
// names things, and what one of its layers computes, in order. Parameter
// counts (Normalize, Params), config parsing (ParseConfig), the breakdown's
// saved tensors (package analytic), the simulator's op list (profiler/sim)
// and the PyTorch scenario script's model (scenarios/train.py, through the
// Layer a train job carries) all read it; none of them switches on a
// family's name. Adding a family is one entry in families plus its tests.

// Positions is how a family encodes token positions.
type Positions string

const (
	NoPositions      Positions = "none"    // nothing (the seed's layer)
	LearnedPositions Positions = "learned" // a learned table of MaxPositions+PositionOffset rows
	RotaryPositions  Positions = "rotary"  // rotary embeddings: no parameters, cos/sin tables
	AlibiPositions   Positions = "alibi"   // ALiBi: a bias on the attention scores, no parameters
)

// Op is one step of what a transformer layer computes.
type Op string

const (
	OpNorm      Op = "norm"      // the next norm of the layer (LayerNorm or RMSNorm, Arch.Norm)
	OpQKV       Op = "qkv"       // the q, k, v projections (Layer.SplitQKV: separate, else one fused projection)
	OpRotary    Op = "rotary"    // rotary positions applied to q and k
	OpAttention Op = "attention" // the attention core (eager or SDPA) and the merge of the heads
	OpOutProj   Op = "out_proj"  // the attention's output projection
	OpDropout   Op = "dropout"   // a residual dropout
	OpResidual  Op = "residual"  // the residual add (the stream the next op reads)
	OpMLP       Op = "mlp"       // the feed-forward block (Arch.GatedMLP, Arch.Act)
	// OpMoE is a sparse mixture-of-experts block as transformers 5.x's
	// grouped experts run it: a router Linear(hidden, experts) and its
	// softmax, top-k selection (Arch.ExpertsPerToken, Arch.NormTopK), the
	// k*B*S (token, expert) rows sorted by expert and gathered, one grouped
	// matmul for every expert's gate and up projections and one for its
	// down projection, the rows weighted, unsorted and summed per token;
	// plus a shared gated MLP of Arch.SharedFFN with its sigmoid gate
	// (Arch.SharedExpertGate) where the family has one.
	OpMoE Op = "moe"
	// OpQKNorm is the RMSNorms of q and k after their projections, before
	// rotary (Arch.QKNorm: per head, Qwen3's q_norm and k_norm, or over the
	// whole projection, OLMo2's); torch's autograd keeps each one's fp32
	// input, rsqrt and normalized output (analytic/activations_variants.go).
	OpQKNorm Op = "qk_norm"
)

// Layer is what one transformer layer of a family computes as its Hugging
// Face modeling code runs it in eager mode: the ordered ops and the facts
// that decide which tensors autograd saves. Ops lists one layer; the
// embeddings before the first layer and the final norm and LM head after
// the last follow from Arch (positions, FinalNorm, TiedHead) and the flags.
type Layer struct {
	Name string `json:"name"` // the modeling code it follows: "gpt2" (GPT2Block) or "llama" (LlamaDecoderLayer)
	Ops  []Op   `json:"ops"`

	SplitQKV bool `json:"split_qkv"` // q_proj, k_proj, v_proj and o_proj (else one fused c_attn and c_proj)
	// Conv1D: the linear layers are GPT-2's Conv1D (x @ W + b through
	// addmm); false: nn.Linear.
	Conv1D bool `json:"conv1d"`
	// RepeatKV: with grouped-query attention, k and v are expanded to every
	// query head before the attention core (repeat_kv).
	RepeatKV bool `json:"repeat_kv"`
	// AdditiveMask: the causal mask is a float S x S tensor added to the
	// scores (Llama); false: torch.where on a boolean buffer (GPT-2).
	AdditiveMask bool `json:"additive_mask"`
	// FP32Norm: an RMSNorm written out in fp32 (x.to(float32), pow, mean,
	// rsqrt, cast back), as LlamaRMSNorm is; false: torch's layer_norm.
	FP32Norm bool `json:"fp32_norm"`
	// SoftmaxFP32: softmax(dtype=float32) in eager attention, cast back;
	// false: softmax in the scores' dtype (autocast's own lists decide).
	SoftmaxFP32 bool `json:"softmax_fp32"`
	// ScaleFloat64: the scores are divided by a Python float (a float64
	// 0-dim tensor is saved); false: by torch.full in the scores' dtype.
	ScaleFloat64 bool `json:"scale_float64"`
	// GeluScalars: gelu_new written out with three Python float constants
	// saved per layer (HF NewGELUActivation).
	GeluScalars bool `json:"gelu_scalars"`
	// LogitsFP32: the LM head's logits are upcast with .float() before the
	// loss (LlamaForCausalLM).
	LogitsFP32 bool `json:"logits_fp32"`
	// Dropout: the family has residual and embedding dropout layers.
	Dropout bool `json:"dropout"`
	// RouterFP32: the router's softmax reads logits.float() and the
	// routing weights stay fp32 (Mixtral); false: softmax(dtype=float32)
	// and the weights cast back to the logits' dtype (Qwen MoE). Only
	// with OpMoE.
	RouterFP32 bool `json:"router_fp32,omitempty"`
	// PositionIDsFromInput: the position ids are counted from the input
	// ids past the padding token (RoBERTa), a B x S int64 tensor, and the
	// token type ids gathered by them, another; false: slices of the
	// embeddings' buffers. Only with EncoderLayerName.
	PositionIDsFromInput bool `json:"position_ids_from_input,omitempty"`
	// HeadDropoutIn: the sequence classifier drops out the first token's
	// features before its dense layer too (RobertaClassificationHead).
	HeadDropoutIn bool `json:"head_dropout_in,omitempty"`
	// NormPlusOne: the RMSNorm multiplies the fp32 normalized x by a
	// fresh fp32 1 + weight, a tensor of the norm's width that the product
	// keeps, and casts back (GemmaRMSNorm); with FP32Norm.
	NormPlusOne bool `json:"norm_plus_one,omitempty"`
	// Softcap: the config has soft-caps (Arch.AttnSoftcap, LogitSoftcap)
	// and the LM head applies Arch.LogitSoftcap (x/cap, tanh, *cap) when
	// it is set (Gemma 2, 3); AttnSoftcap: eager attention applies
	// Arch.AttnSoftcap to the scores likewise (Gemma 2).
	Softcap     bool `json:"softcap,omitempty"`
	AttnSoftcap bool `json:"attn_softcap,omitempty"`

	// The flags of the GPT-style programs (family_gptstyle.go).
	// HFOnly: only transformers' own class runs this layer (bloom, falcon
	// and the GPT-style programs); the program is written out for the
	// breakdown, and scenarios/train.py's hand-built path refuses it.
	HFOnly bool `json:"hf_only,omitempty"`
	// RotaryCat: rotary turns the first RotaryDims of each head and is
	// concatenated with the rest, so q and k are laid out (B, h, S, d) and
	// SDPA's output is a storage of its own before the merge of the heads.
	RotaryCat bool `json:"rotary_cat,omitempty"`
	// RotaryPerLayer: each layer repeats sin and cos for q and for k (GPT-J's
	// repeat_interleave): four S x RotaryDims tensors a layer, none shared.
	RotaryPerLayer bool `json:"rotary_per_layer,omitempty"`
	// QKFP32: eager attention upcasts q and k to fp32 before the scores.
	QKFP32 bool `json:"qk_fp32,omitempty"`
	// ValueView: v is a view of the fused q, k, v output, which SDPA keeps whole.
	ValueView bool `json:"value_view,omitempty"`
	// BatchPositions: the learned positions are looked up with B x S ids.
	BatchPositions bool `json:"batch_positions,omitempty"`
	// EagerOnly: the class has no SDPA attention (transformers refuses sdpa).
	EagerOnly bool `json:"eager_only,omitempty"`
	// NoEmbedDropout: no dropout after the embeddings (OPT's decoder).
	NoEmbedDropout bool `json:"no_embed_dropout,omitempty"`

	// The Llama variants' own details (analytic/activations_variants.go).
	// NormWeightFP32: the RMSNorm multiplies by its weight in fp32 and casts
	// the product back (GemmaRMSNorm, Olmo2RMSNorm), so the normalized x
	// it keeps is fp32 whatever the input's dtype.
	NormWeightFP32 bool `json:"norm_weight_fp32,omitempty"`
	// EmbedScale: the token embeddings are multiplied by sqrt(hidden), a
	// buffer (GemmaTextScaledWordEmbedding); nothing more is saved.
	EmbedScale bool `json:"embed_scale,omitempty"`
	// RopeFP32: rotary's cos and sin stay fp32 and the rotated q and k are
	// cast back to q's dtype (Olmo2RotaryEmbedding, apply_rotary_pos_emb).
	RopeFP32 bool `json:"rope_fp32,omitempty"`
	// FusedQKVProj: q, k and v are slices of one qkv_proj's output, which
	// SDPA then keeps whole through v (Phi3Attention).
	FusedQKVProj bool `json:"fused_qkv_proj,omitempty"`
	// FusedGateUp: the gate and up projections are one gate_up_proj whose
	// output is chunked (Phi3MLP).
	FusedGateUp bool `json:"fused_gate_up,omitempty"`
	// ResidDropout: dropout layers on the attention's and the MLP's outputs
	// before each residual add (Phi3DecoderLayer's resid_attn_dropout and
	// resid_mlp_dropout), without GPT-2's embedding dropout (Dropout).
	ResidDropout bool `json:"resid_dropout,omitempty"`
}

// HandBuilt reports whether scenarios/train.py's hand-built program
// computes l: the variants' details above are transformers' classes only
// (the script's ops are refused, its flags would be ignored).
func (l *Layer) HandBuilt() bool {
	return !l.HasOp(OpQKNorm) && !l.NormWeightFP32 && !l.NormPlusOne && !l.EmbedScale && !l.RopeFP32 &&
		!l.FusedQKVProj && !l.FusedGateUp && !l.ResidDropout
}

// Names of the two eager programs (Layer.Name).
const (
	GPT2LayerName  = "gpt2"
	LlamaLayerName = "llama"
)

// The two eager programs memval models tensor by tensor. Families whose
// modeling code differs in details the breakdown does not follow yet are
// mapped to the nearer one and say so (Family.Measured false).
var (
	gpt2Layer = &Layer{Name: GPT2LayerName,
		Ops:    []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		Conv1D: true, GeluScalars: true, Dropout: true}
	llamaLayer = &Layer{Name: LlamaLayerName,
		Ops:      []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpResidual, OpNorm, OpMLP, OpResidual},
		SplitQKV: true, RepeatKV: true, AdditiveMask: true, FP32Norm: true, SoftmaxFP32: true, ScaleFloat64: true, LogitsFP32: true}
	// The Llama layer with its MLP replaced by the sparse block (Mixtral's
	// MixtralSparseMoeBlock, Qwen's Qwen2MoeSparseMoeBlock).
	mixtralLayer = moeLayer(true)
	qwenMoELayer = moeLayer(false)

	// The Llama variants, as transformers 5.24's classes run them (each
	// checked against torch: scenarios/family_truth_famA_test.go).
	// GemmaDecoderLayer (models/gemma/modeling_gemma.py): scaled
	// embeddings, RMSNorm by 1 + weight in fp32.
	gemmaLayer = variant(llamaLayer, nil, func(l *Layer) { l.NormWeightFP32, l.NormPlusOne, l.EmbedScale = true, true, true })
	// Qwen3DecoderLayer and Qwen3MoeDecoderLayer (models/qwen3,
	// models/qwen3_moe): per-head q_norm and k_norm.
	qwen3Layer    = variant(llamaLayer, qkNormOps(llamaLayer.Ops), nil)
	qwen3MoELayer = variant(qwenMoELayer, qkNormOps(qwenMoELayer.Ops), nil)
	// Phi3DecoderLayer (models/phi3/modeling_phi3.py): fused qkv_proj and
	// gate_up_proj.
	phi3Layer = variant(llamaLayer, nil, func(l *Layer) { l.FusedQKVProj, l.FusedGateUp, l.ResidDropout = true, true, true })
	// Olmo2DecoderLayer (models/olmo2/modeling_olmo2.py): q_norm and k_norm
	// over the whole projections, the two norms after attention and after
	// the MLP (before each residual add), weights applied in fp32, fp32
	// cos and sin.
	olmo2Layer = variant(llamaLayer, []Op{OpQKV, OpQKNorm, OpRotary, OpAttention, OpOutProj, OpNorm, OpResidual,
		OpMLP, OpNorm, OpResidual}, func(l *Layer) { l.NormWeightFP32, l.RopeFP32 = true, true })
)

// variant is a copy of base with ops (nil: base's) and set's changes.
func variant(base *Layer, ops []Op, set func(*Layer)) *Layer {
	l := *base
	if ops == nil {
		ops = base.Ops
	}
	l.Ops = append([]Op(nil), ops...)
	if set != nil {
		set(&l)
	}
	return &l
}

// qkNormOps is ops with OpQKNorm after OpQKV.
func qkNormOps(ops []Op) []Op {
	var out []Op
	for _, op := range ops {
		out = append(out, op)
		if op == OpQKV {
			out = append(out, OpQKNorm)
		}
	}
	return out
}

// moeLayer is llamaLayer with OpMoE in place of OpMLP.
func moeLayer(routerFP32 bool) *Layer {
	l := *llamaLayer
	l.Ops = make([]Op, len(llamaLayer.Ops))
	for i, op := range llamaLayer.Ops {
		if op == OpMLP {
			op = OpMoE
		}
		l.Ops[i] = op
	}
	l.RouterFP32 = routerFP32
	return &l
}

// HasOp says whether the layer computes op.
func (l *Layer) HasOp(op Op) bool {
	for _, o := range l.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// Family is one model family: a Hugging Face model_type (or "vanilla", the
// seed article's layer).
type Family struct {
	Name string

	// Structure as the modeling code builds it when the config does not say
	// otherwise (Normalize copies these into a bare Arch).
	Norm           Norm
	NormsPerLayer  int
	FinalNorm      bool
	EmbedNorm      bool
	ParallelBlock  bool
	QKVBias        bool
	OutBias        bool
	MLPBias        bool
	GatedMLP       bool
	TiedHead       bool
	HeadBias       bool
	NoHead         bool
	Pooler         bool
	Positions      Positions
	PositionOffset int
	TokenTypes     int
	FFN4H          bool   // FFN defaults to 4*Hidden
	Act            string // the MLP's activation
	Context        int    // the configuration class's default max_position_embeddings
	MoE            bool   // routed experts (Experts default 8, top-2, unless DefaultExperts/DefaultTopK say otherwise)
	DefaultExperts int    // the configuration class's number of experts (0: 8)
	DefaultTopK    int    // the configuration class's experts per token (0: 2)
	SharedGate     bool   // a shared expert with a sigmoid gate (Arch.SharedExpertGate)
	NormTopK       bool   // top-k routing weights renormalized (Arch.NormTopK) when the config does not say
	QKNorm         string // norms on q and k (Arch.QKNorm)
	FusedQKVModule bool   // q, k, v in one weight (GPT-2 c_attn, NeoX query_key_value): the largest module ZeRO-3 gathers
	EmbedProj      bool   // the embeddings may be projected (OPT's word_embed_proj_dim: project_in/out)
	// The configuration class's attention switches (Arch.SlidingWindow,
	// GlobalEvery, AttnSoftcap, LogitSoftcap; family_window.go).
	SlidingWindow, GlobalEvery int
	AttnSoftcap, LogitSoftcap  float64

	// Partial rotary when the config does not say: the part of each head
	// turned (0: all), or a width (GPT-J's rotary_dim), which comes first.
	RotaryFraction float64
	RotaryDim      int
	Vision         *Vision // an image model: patches instead of tokens (family_vision.go); nil for text

	// Layer is what one layer computes. Measured says that Layer is this
	// family's modeling code exactly, so that scenarios/train.py builds it
	// and the breakdown's saved tensors for it were checked against torch
	// (else its terms say "derived, not yet measured" and train.py refuses
	// it); where Layer.HandBuilt is false, train.py builds only the
	// transformers class (gemma, qwen3, qwen3_moe, phi3, olmo2).
	Layer    *Layer
	Measured bool

	// Config is how the family's config.json names its sizes and switches;
	// nil for a family without one (vanilla).
	Config *ConfigKeys
}

// ConfigKeys is how one family's config.json names things. Each list is
// the canonical key first, then its aliases.
type ConfigKeys struct {
	Hidden, Layers, Heads, FFN, Positions []string
	FFNOptional                           bool // the FFN size may be absent (then 4*hidden)
	KVHeads                               bool // num_key_value_heads is read (grouped-query attention)
	HeadDim                               bool // head_dim is read
	HeadDimDefault                        int  // the configuration class's head_dim when absent (0: hidden/heads)
	UseBias                               bool // one use_bias switch for every linear layer's bias (starcoder2)
	// Dropouts are the dropout probabilities the family's config holds,
	// each with its configuration class's default; Arch.Dropout is the
	// largest.
	Dropouts []ConfigDropout
	// PadToken is the configuration class's default pad_token_id, the
	// embedding's padding_idx (0 where it is None or 0); a config for a
	// vocabulary smaller than that must name another.
	PadToken int
	// Read reads the family's own switches (biases, norms, experts, ...)
	// into a, after the sizes; nil when there are none.
	Read func(c *config, a *Arch) error
}

// ConfigDropout is one dropout key of a config and its default.
type ConfigDropout struct {
	Key     string
	Default float64
}

// Keys most Hugging Face configs share.
var (
	stdHidden    = []string{"hidden_size"}
	stdLayers    = []string{"num_hidden_layers"}
	stdHeads     = []string{"num_attention_heads"}
	stdFFN       = []string{"intermediate_size"}
	stdPositions = []string{"max_position_embeddings"}
	attnDropout  = []ConfigDropout{{"attention_dropout", 0}}
)

// llamaKeys are the keys of a Llama-style config with grouped-query
// attention and an explicit head_dim.
func llamaKeys(read func(c *config, a *Arch) error) *ConfigKeys {
	return &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
		KVHeads: true, HeadDim: true, Dropouts: attnDropout, Read: read}
}

// families is the table. Every Arch field a family fixes is here.
var families = map[string]*Family{
	// The seed article's layer: 4*H^2 attention without biases, an MLP with
	// biases, two LayerNorms per layer, no final norm, output projection
	// left out (tied).
	"vanilla": {Name: "vanilla", Norm: LayerNorm, NormsPerLayer: 2, MLPBias: true, TiedHead: true, Positions: NoPositions,
		FFN4H: true, Act: "gelu", Layer: gpt2Layer},
	"gpt2": {Name: "gpt2", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, Positions: LearnedPositions, FFN4H: true, Act: "gelu_new", Context: 1024, FusedQKVModule: true,
		Layer: gpt2Layer, Measured: true,
		Config: &ConfigKeys{
			// GPT2Config's attribute_map makes hidden_size etc. aliases.
			Hidden: []string{"n_embd", "hidden_size"}, Layers: []string{"n_layer", "num_hidden_layers"},
			Heads: []string{"n_head", "num_attention_heads"}, FFN: []string{"n_inner"}, FFNOptional: true,
			Positions: []string{"n_positions", "max_position_embeddings"},
			Dropouts:  []ConfigDropout{{"resid_pdrop", 0.1}, {"embd_pdrop", 0.1}, {"attn_pdrop", 0.1}},
			Read:      readGPT2,
		}},
	"gpt_neox": {Name: "gpt_neox", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, ParallelBlock: true, QKVBias: true,
		OutBias: true, MLPBias: true, Positions: RotaryPositions, FFN4H: true, Act: "gelu", Context: 2048, FusedQKVModule: true,
		RotaryFraction: 0.25, Layer: neoxLayer, Measured: true,
		Config: &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
			Dropouts: []ConfigDropout{{"hidden_dropout", 0}, {"attention_dropout", 0}}, Read: readNeoX}},
	"opt": {Name: "opt", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, Positions: LearnedPositions, PositionOffset: 2, FFN4H: true, Act: "relu", Context: 2048, EmbedProj: true,
		Layer: optLayer, Measured: true,
		Config: &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: []string{"ffn_dim"}, Positions: stdPositions,
			Dropouts: []ConfigDropout{{"dropout", 0.1}, {"attention_dropout", 0}}, Read: readOPT}},
	"bert": {Name: "bert", Norm: LayerNorm, NormsPerLayer: 2, EmbedNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, NoHead: true, Pooler: true, Positions: LearnedPositions, TokenTypes: 2, FFN4H: true, Act: "gelu",
		Context: 512, Layer: bertLayer, Measured: true, Config: bertKeys()},
	"llama": {Name: "llama", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 2048, Layer: llamaLayer, Measured: true, Config: llamaKeys(readLlama)},
	"mistral": {Name: "mistral", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 4096 * 32, Layer: llamaLayer, Measured: true, Config: llamaKeys(nil)},
	"mixtral": {Name: "mixtral", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 4096 * 32, MoE: true, NormTopK: true, Layer: mixtralLayer, Measured: true,
		Config: llamaKeys(readMixtral)},
	"qwen2": {Name: "qwen2", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, GatedMLP: true,
		Positions: RotaryPositions, Act: "silu", Context: 32768, Layer: llamaLayer, Measured: true, Config: llamaKeys(nil)},
	"gemma": {Name: "gemma", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, TiedHead: true,
		Positions: RotaryPositions, Act: "gelu_pytorch_tanh", Context: 8192, Layer: gemmaLayer, Measured: true,
		Config: func() *ConfigKeys {
			k := llamaKeys(readAttentionBias)
			k.HeadDimDefault = 256 // GemmaConfig's default head_dim
			return k
		}()},
	"phi": {Name: "phi", Norm: LayerNorm, NormsPerLayer: 1, FinalNorm: true, ParallelBlock: true, QKVBias: true, OutBias: true,
		MLPBias: true, HeadBias: true, Positions: RotaryPositions, FFN4H: true, Act: "gelu_new", Context: 2048, RotaryFraction: 0.5,
		Layer: phiLayer, Measured: true,
		Config: &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
			KVHeads:  true,
			Dropouts: []ConfigDropout{{"resid_pdrop", 0}, {"embd_pdrop", 0}, {"attention_dropout", 0}}, Read: readPhi}},

	// Families added for issue 16. Each is counted as its Hugging Face
	// modeling code builds it (the *ForCausalLM class; for the encoders
	// the base model with its pooler where it has one) and mapped to the
	// nearer of the two eager programs, unmeasured, unless Measured says
	// otherwise (gpt_neo and gptj have their own measured programs,
	// family_gptstyle.go; the encoders theirs, family_enc.go).

	// Qwen3ForCausalLM: a Llama layer plus an RMSNorm of head_dim on each
	// head's q and k (q_norm, k_norm, one weight shared by the heads).
	"qwen3": {Name: "qwen3", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 32768, QKNorm: QKNormHead, Layer: qwen3Layer, Measured: true,
		Config: func() *ConfigKeys {
			k := llamaKeys(readAttentionBias)
			k.HeadDimDefault = 128 // Qwen3Config's head_dim
			return k
		}()},
	// Qwen3MoeForCausalLM: qwen3's attention, every layer a sparse block of
	// num_experts gated experts of moe_intermediate_size and a router
	// Linear(hidden, num_experts) without bias.
	"qwen3_moe": {Name: "qwen3_moe", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true,
		Positions: RotaryPositions, Act: "silu", Context: 32768, QKNorm: QKNormHead, MoE: true, DefaultExperts: 128,
		DefaultTopK: 8, Layer: qwen3MoELayer, Measured: true,
		Config: func() *ConfigKeys {
			k := llamaKeys(readQwenMoE(128, 8, false))
			k.FFN = []string{"moe_intermediate_size"}
			// Qwen3MoeConfig (transformers 5.24) has no head_dim default:
			// Qwen3MoeAttention takes hidden/heads when the config has none
			// (measured: TestFamilyTruthFamA)
			return k
		}()},
	// Qwen2MoeForCausalLM: qwen2's attention (q, k, v biases), routed
	// experts plus a shared expert of shared_expert_intermediate_size whose
	// output a Linear(hidden, 1) sigmoid gate scales.
	"qwen2_moe": {Name: "qwen2_moe", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, GatedMLP: true,
		Positions: RotaryPositions, Act: "silu", Context: 8192, MoE: true, DefaultExperts: 60, DefaultTopK: 4,
		SharedGate: true, Layer: qwenMoELayer, Measured: true,
		Config: func() *ConfigKeys {
			k := llamaKeys(readQwenMoE(60, 4, true))
			k.FFN = []string{"moe_intermediate_size"}
			k.HeadDim = false
			return k
		}()},
	// Phi3ForCausalLM: a Llama layer with fused qkv_proj and gate_up_proj
	// (the same parameter count), no biases.
	"phi3": {Name: "phi3", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 4096, FusedQKVModule: true, Layer: phi3Layer, Measured: true,
		Config: &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
			KVHeads: true, PadToken: 32000, // Phi3Config's pad_token_id
			Dropouts: []ConfigDropout{{"resid_pdrop", 0}, {"embd_pdrop", 0}, {"attention_dropout", 0}}}},
	// Gemma2ForCausalLM: Gemma's layer with four RMSNorms (input,
	// post-attention, pre- and post-feedforward), tied head; local and
	// global layers alternate; scores and logits soft-capped (measured
	// through transformers' class only: train.py's hand-built program
	// refuses its norms and soft-caps).
	"gemma2": {Name: "gemma2", Norm: RMSNorm, NormsPerLayer: 4, FinalNorm: true, GatedMLP: true, TiedHead: true,
		Positions: RotaryPositions, Act: "gelu_pytorch_tanh", Context: 8192, Layer: gemma2Layer, Measured: true,
		SlidingWindow: 4096, GlobalEvery: 2, AttnSoftcap: 50, LogitSoftcap: 30,
		Config: func() *ConfigKeys {
			k := llamaKeys(readGemmaWindow(false))
			k.HeadDimDefault = 256 // Gemma2Config's head_dim
			return k
		}()},
	// Gemma3ForCausalLM (model_type gemma3_text, the text-only models):
	// gemma2's four norms plus per-head q and k RMSNorms of head_dim;
	// every sixth layer global; measured as gemma2.
	"gemma3_text": {Name: "gemma3_text", Norm: RMSNorm, NormsPerLayer: 4, FinalNorm: true, GatedMLP: true, TiedHead: true,
		Positions: RotaryPositions, Act: "gelu_pytorch_tanh", Context: 131072, QKNorm: QKNormHead, Layer: gemma3Layer,
		Measured: true, SlidingWindow: 4096, GlobalEvery: 6,
		Config: func() *ConfigKeys {
			k := llamaKeys(readGemmaWindow(true))
			k.HeadDimDefault = 256 // Gemma3TextConfig's head_dim
			return k
		}()},
	// Olmo2ForCausalLM: norms after attention and after the MLP (two per
	// layer) and RMSNorms over the whole q and k projections.
	"olmo2": {Name: "olmo2", Norm: RMSNorm, NormsPerLayer: 2, FinalNorm: true, GatedMLP: true, Positions: RotaryPositions,
		Act: "silu", Context: 2048, QKNorm: QKNormFull, Layer: olmo2Layer, Measured: true,
		Config: func() *ConfigKeys {
			k := llamaKeys(readAttentionBias)
			k.HeadDim = false // Olmo2Config has no head_dim
			return k
		}()},
	// Starcoder2ForCausalLM: grouped-query attention and a plain
	// c_fc/c_proj MLP, all with biases (use_bias), LayerNorms, rotary;
	// an optional sliding window on every layer.
	"starcoder2": {Name: "starcoder2", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, OutBias: true,
		MLPBias: true, TiedHead: true, Positions: RotaryPositions, Act: "gelu_pytorch_tanh", Context: 4096,
		Layer: starcoder2Layer, Measured: true,
		Config: &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
			KVHeads: true, UseBias: true,
			Dropouts: []ConfigDropout{{"residual_dropout", 0}, {"embedding_dropout", 0}, {"attention_dropout", 0}},
			Read:     readStarcoder2Window}},
	// GPTNeoForCausalLM: GPT-2's block with q, k, v without biases, an
	// out_proj with one; learned positions; tied head.
	"gpt_neo": {Name: "gpt_neo", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, OutBias: true, MLPBias: true,
		TiedHead: true, Positions: LearnedPositions, FFN4H: true, Act: "gelu_new", Context: 2048, Layer: gptNeoLayer,
		Measured: true,
		Config: &ConfigKeys{
			// GPTNeoConfig's attribute_map: num_attention_heads, num_hidden_layers.
			Hidden: stdHidden, Layers: []string{"num_layers", "num_hidden_layers"},
			Heads: []string{"num_heads", "num_attention_heads"}, FFN: stdFFN, FFNOptional: true, Positions: stdPositions,
			Dropouts: []ConfigDropout{{"resid_dropout", 0}, {"embed_dropout", 0}, {"attention_dropout", 0}}}},
	// GPTJForCausalLM: attention and MLP in parallel on one LayerNorm;
	// q, k, v, out without biases, fc_in/fc_out with; untied lm_head with
	// a bias; rotary.
	"gptj": {Name: "gptj", Norm: LayerNorm, NormsPerLayer: 1, FinalNorm: true, ParallelBlock: true, MLPBias: true,
		HeadBias: true, Positions: RotaryPositions, FFN4H: true, Act: "gelu_new", Context: 2048, RotaryDim: 64, Layer: gptjLayer,
		Measured: true,
		Config: &ConfigKeys{
			Hidden: []string{"n_embd", "hidden_size"}, Layers: []string{"n_layer", "num_hidden_layers"},
			Heads: []string{"n_head", "num_attention_heads"}, FFN: []string{"n_inner"}, FFNOptional: true,
			Positions: []string{"n_positions", "max_position_embeddings"},
			Dropouts:  []ConfigDropout{{"resid_pdrop", 0}, {"embd_pdrop", 0}, {"attn_pdrop", 0}}, Read: readGPTJ}},
	// BloomForCausalLM: ALiBi (no position table), a LayerNorm after the
	// word embeddings, fused query_key_value, biases everywhere, tied.
	"bloom": {Name: "bloom", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, EmbedNorm: true, QKVBias: true,
		OutBias: true, MLPBias: true, TiedHead: true, Positions: AlibiPositions, FFN4H: true, Act: "gelu", Context: 2048,
		FusedQKVModule: true, Layer: bloomLayer, Measured: true,
		Config: &ConfigKeys{
			// BloomConfig's attribute_map: num_hidden_layers, num_attention_heads; n_embed is its old name for hidden_size.
			Hidden: []string{"hidden_size", "n_embed"}, Layers: []string{"n_layer", "num_hidden_layers"},
			Heads: []string{"n_head", "num_attention_heads"}, FFNOptional: true, Positions: []string{"seq_length"},
			Dropouts: []ConfigDropout{{"hidden_dropout", 0}, {"attention_dropout", 0}}}},
	// FalconForCausalLM: fused query_key_value with multi-query (7B) or
	// grouped (new_decoder_architecture) k and v, parallel attention,
	// no biases by default, tied head; rotary or ALiBi, neither with
	// parameters.
	"falcon": {Name: "falcon", Norm: LayerNorm, NormsPerLayer: 1, FinalNorm: true, ParallelBlock: true, TiedHead: true,
		Positions: RotaryPositions, FFN4H: true, Act: "gelu", Context: 2048, FusedQKVModule: true, Layer: falconLayer,
		Measured: true,
		Config: &ConfigKeys{
			// FalconConfig's attribute_map: n_layer, n_head.
			Hidden: stdHidden, Layers: []string{"num_hidden_layers", "n_layer"}, Heads: []string{"num_attention_heads", "n_head"},
			FFN: []string{"ffn_hidden_size"}, FFNOptional: true, Positions: stdPositions,
			Dropouts: []ConfigDropout{{"hidden_dropout", 0}, {"attention_dropout", 0}}, Read: readFalcon}},
	// RobertaModel and XLMRobertaModel: BERT's encoder and pooler; the
	// configs' max_position_embeddings (514) already holds the two rows
	// past padding_idx.
	"roberta": {Name: "roberta", Norm: LayerNorm, NormsPerLayer: 2, EmbedNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, NoHead: true, Pooler: true, Positions: LearnedPositions, TokenTypes: 2, FFN4H: true, Act: "gelu",
		Context: 512, Layer: robertaLayer, Measured: true, Config: bertKeys()},
	"xlm-roberta": {Name: "xlm-roberta", Norm: LayerNorm, NormsPerLayer: 2, EmbedNorm: true, QKVBias: true, OutBias: true,
		MLPBias: true, TiedHead: true, NoHead: true, Pooler: true, Positions: LearnedPositions, TokenTypes: 2, FFN4H: true,
		Act: "gelu", Context: 512, Layer: robertaLayer, Measured: true, Config: bertKeys()},
	// DistilBertModel: learned positions and an embedding LayerNorm, no
	// token types, no pooler, no head.
	"distilbert": {Name: "distilbert", Norm: LayerNorm, NormsPerLayer: 2, EmbedNorm: true, QKVBias: true, OutBias: true,
		MLPBias: true, TiedHead: true, NoHead: true, Positions: LearnedPositions, Act: "gelu", Context: 512, Layer: distilBertLayer, Measured: true,
		Config: &ConfigKeys{
			// DistilBertConfig's attribute_map: hidden_size, num_attention_heads, num_hidden_layers.
			Hidden: []string{"dim", "hidden_size"}, Layers: []string{"n_layers", "num_hidden_layers"},
			Heads: []string{"n_heads", "num_attention_heads"}, FFN: []string{"hidden_dim"}, Positions: stdPositions,
			Dropouts: []ConfigDropout{{"dropout", 0.1}, {"attention_dropout", 0.1}}, Read: readNoHead}},
	// Vision transformers (issues 16 and 20; family_vision.go): patches
	// instead of tokens, no vocabulary. ViTModel keeps a pooler (dense and
	// tanh on the class token) that ViTForImageClassification leaves out.
	"vit": {Name: "vit", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, NoHead: true, Pooler: true, Positions: LearnedPositions, FFN4H: true, Act: "gelu",
		Vision: &Vision{ImageSize: 224, PatchSize: 16}, Layer: vitLayer, Measured: true,
		Config: visionKeys(stdFFN, readViT)},
	// Dinov2Model: ViT's layer with a layer scale on both branches, a mask
	// token, no pooler; the MLP is mlp_ratio*hidden (or SwiGLU).
	"dinov2": {Name: "dinov2", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true, OutBias: true, MLPBias: true,
		TiedHead: true, NoHead: true, Positions: LearnedPositions, FFN4H: true, Act: "gelu",
		Vision: &Vision{ImageSize: 224, PatchSize: 14, MaskToken: true, LayerScale: true, ClsMeanPatch: true}, Layer: dinov2Layer, Measured: true,
		Config: visionKeys(nil, readDinov2)},
	// Dinov2WithRegistersModel: DINOv2 with num_register_tokens learned
	// tokens put after the class token (no position rows of their own),
	// 16-pixel patches by default, the mask token always.
	"dinov2_with_registers": {Name: "dinov2_with_registers", Norm: LayerNorm, NormsPerLayer: 2, FinalNorm: true, QKVBias: true,
		OutBias: true, MLPBias: true, TiedHead: true, NoHead: true, Positions: LearnedPositions, FFN4H: true, Act: "gelu",
		Vision: &Vision{ImageSize: 224, PatchSize: 16, MaskToken: true, LayerScale: true, ClsMeanPatch: true, Registers: 4},
		Layer:  dinov2Layer, Measured: true, Config: visionKeys(nil, readDinov2Registers)},
}

// bertKeys are the keys of a BERT-style encoder config.
func bertKeys() *ConfigKeys {
	return &ConfigKeys{Hidden: stdHidden, Layers: stdLayers, Heads: stdHeads, FFN: stdFFN, Positions: stdPositions,
		Dropouts: []ConfigDropout{{"hidden_dropout_prob", 0.1}, {"attention_probs_dropout_prob", 0.1}}, Read: readBERT}
}

// defaultExperts and defaultTopK are the MoE routing a bare Arch of the
// family gets.
func (f *Family) defaultExperts() int {
	if f.DefaultExperts > 0 {
		return f.DefaultExperts
	}
	return 8
}

func (f *Family) defaultTopK() int {
	if f.DefaultTopK > 0 {
		return f.DefaultTopK
	}
	return 2
}

// FamilyOf returns the family called name, and whether there is one.
func FamilyOf(name string) (*Family, bool) {
	f, ok := families[name]
	return f, ok
}

// Families lists the model families Normalize, Params and ParseConfig know,
// sorted.
func Families() []string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ConfigFamilies lists the Hugging Face model_type values ParseConfig reads,
// sorted.
func ConfigFamilies() []string {
	var names []string
	for n, f := range families {
		if f.Config != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// apply sets the structural fields of a bare Arch from the family.
func (f *Family) apply(a *Arch) {
	a.Norm = f.Norm
	if a.NormsPerLayer == 0 {
		a.NormsPerLayer = f.NormsPerLayer
	}
	a.FinalNorm = f.FinalNorm
	a.EmbedNorm = f.EmbedNorm
	a.ParallelBlock = f.ParallelBlock
	a.QKVBias = f.QKVBias
	a.OutBias = f.OutBias
	a.MLPBias = f.MLPBias
	a.GatedMLP = f.GatedMLP
	a.TiedHead = f.TiedHead
	a.HeadBias = f.HeadBias
	a.NoHead = f.NoHead
	a.Pooler = f.Pooler
	a.QKNorm = f.QKNorm
	a.SharedExpertGate = f.SharedGate
	a.NormTopK = f.NormTopK
	f.applyWindow(a)
	if f.Vision != nil {
		a.MaskToken, a.LayerScale = f.Vision.MaskToken, f.Vision.LayerScale
		if a.Registers == 0 {
			a.Registers = f.Vision.Registers
		}
	}
	if a.PositionOffset == 0 {
		a.PositionOffset = f.PositionOffset
	}
	if a.TokenTypes == 0 {
		a.TokenTypes = f.TokenTypes
	}
	if a.Act == "" {
		a.Act = f.Act
	}
}

// The families' own config switches.

func readGPT2(c *config, a *Arch) (err error) {
	a.TiedHead, err = c.bool("tie_word_embeddings", true)
	return err
}

func readNeoX(c *config, a *Arch) error {
	if err := readAttentionBiasDefault(c, a, true); err != nil {
		return err
	}
	// use_parallel_residual changes the data flow, not the parameters:
	// both norms are kept either way (with it, both read the layer's input).
	var err error
	if a.ParallelBlock, err = c.bool("use_parallel_residual", true); err != nil {
		return err
	}
	return readRotaryFraction(c, a, 0.25, "rotary_pct", "partial_rotary_factor")
}

func readOPT(c *config, a *Arch) error {
	var err error
	if a.EmbedProj, err = c.int("embed_proj", false, 0, "word_embed_proj_dim"); err != nil {
		return err
	}
	before, err := c.bool("do_layer_norm_before", true)
	if err != nil {
		return err
	}
	remove, err := c.bool("_remove_final_layer_norm", false)
	if err != nil {
		return err
	}
	a.FinalNorm = before && !remove
	bias, err := c.bool("enable_bias", true)
	if err != nil {
		return err
	}
	a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
	affine, err := c.bool("layer_norm_elementwise_affine", true)
	if err != nil {
		return err
	}
	if !affine {
		return &FieldError{Field: "layer_norm_elementwise_affine", Value: false,
			Reason: "layer norms without weights are not supported; remove the key to count them with weights"}
	}
	return nil
}

func readBERT(c *config, a *Arch) (err error) {
	if a.TokenTypes, err = c.int("token_types", false, 2, "type_vocab_size"); err != nil {
		return err
	}
	a.TiedHead = true // BertModel has no LM head to tie or not
	return nil
}

func readLlama(c *config, a *Arch) (err error) {
	if err := readAttentionBias(c, a); err != nil {
		return err
	}
	a.MLPBias, err = c.bool("mlp_bias", false)
	return err
}

func readMixtral(c *config, a *Arch) (err error) {
	if a.Experts, err = c.int("experts", false, 8, "num_local_experts"); err != nil {
		return err
	}
	if a.ExpertsPerToken, err = c.int("experts_per_token", false, 2, "num_experts_per_tok"); err != nil {
		return err
	}
	return readRouterAuxLoss(c, a)
}

// readRouterAuxLoss reads output_router_logits, which makes the causal-LM
// classes of the MoE families add the load-balancing loss.
func readRouterAuxLoss(c *config, a *Arch) (err error) {
	a.RouterAuxLoss, err = c.bool("output_router_logits", false)
	return err
}

func readPhi(c *config, a *Arch) error {
	qk, err := c.bool("qk_layernorm", false)
	if err != nil {
		return err
	}
	if qk {
		return &FieldError{Field: "qk_layernorm", Value: true, Reason: "per-head q/k layer norms are not supported"}
	}
	return readRotaryFraction(c, a, 0.5, "partial_rotary_factor")
}

func readNoHead(_ *config, a *Arch) error {
	a.TiedHead = true // an encoder without an LM head to tie or not
	return nil
}

func readStarcoder2(c *config, a *Arch) error {
	bias, err := c.bool("use_bias", true)
	if err != nil {
		return err
	}
	a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
	return nil
}

// readFalcon reads FalconConfig's switches: the k/v heads of
// new_decoder_architecture (num_kv_heads) or multi_query (one), the norms
// of a layer (ln_attn and ln_mlp, or input_layernorm and, without
// parallel_attn, post_attention_layernorm) and the linear layers' bias.
func readFalcon(c *config, a *Arch) error {
	newArch, err := c.bool("new_decoder_architecture", false)
	if err != nil {
		return err
	}
	multiQuery, err := c.bool("multi_query", true)
	if err != nil {
		return err
	}
	parallel, err := c.bool("parallel_attn", true)
	if err != nil {
		return err
	}
	switch {
	case newArch:
		if a.KVHeads, err = c.int("kv_heads", false, a.Heads, "num_kv_heads", "n_head_kv"); err != nil {
			return err
		}
	case multiQuery:
		a.KVHeads = 1
	default:
		a.KVHeads = a.Heads
	}
	lns := 1
	if newArch {
		if lns, err = c.int("norms_per_layer", false, 2, "num_ln_in_parallel_attn"); err != nil {
			return err
		}
		if lns > 2 {
			return &FieldError{Field: "num_ln_in_parallel_attn", Value: lns, Reason: "must be 1 or 2"}
		}
	}
	if lns == 1 && !parallel {
		lns = 2
	}
	a.NormsPerLayer = lns
	a.ParallelBlock = parallel || newArch
	bias, err := c.bool("bias", false)
	if err != nil {
		return err
	}
	a.QKVBias, a.OutBias, a.MLPBias = bias, bias, bias
	return readFalconPositions(c, a) // family_alibi_mqa.go
}

// readQwenMoE reads a Qwen MoE config's routing: num_experts and
// num_experts_per_tok (with the configuration class's defaults), the
// shared expert of qwen2_moe, and refuses layers with a dense MLP
// (decoder_sparse_step above 1, mlp_only_layers), which memval does not
// count.
func readQwenMoE(experts, topK int, shared bool) func(c *config, a *Arch) error {
	return func(c *config, a *Arch) (err error) {
		if shared {
			if err := readQwen2Bias(c, a); err != nil {
				return err
			}
			if a.SharedFFN, err = c.int("shared_ffn", false, 5632, "shared_expert_intermediate_size"); err != nil {
				return err
			}
		} else if err := readAttentionBias(c, a); err != nil {
			return err
		}
		if a.Experts, err = c.int("experts", false, experts, "num_experts"); err != nil {
			return err
		}
		if a.ExpertsPerToken, err = c.int("experts_per_token", false, topK, "num_experts_per_tok"); err != nil {
			return err
		}
		if a.NormTopK, err = c.bool("norm_topk_prob", false); err != nil {
			return err
		}
		if err := readRouterAuxLoss(c, a); err != nil {
			return err
		}
		if step, err := c.int("decoder_sparse_step", false, 1, "decoder_sparse_step"); err != nil {
			return err
		} else if step != 1 {
			return &FieldError{Field: "decoder_sparse_step", Value: step,
				Reason: "layers with a dense MLP between the sparse ones are not supported; only 1 (every layer sparse) is"}
		}
		if v, ok := c.m["mlp_only_layers"]; ok && v != nil {
			l, ok := v.([]any)
			if !ok {
				return &FieldError{Field: "mlp_only_layers", Value: v, Reason: "must be a list of layer indices"}
			}
			if len(l) > 0 {
				return &FieldError{Field: "mlp_only_layers", Value: v,
					Reason: "layers with a dense MLP are not supported; only an empty list is"}
			}
		}
		return nil
	}
}

// readQwen2Bias reads qkv_bias where a config has it (newer Qwen2-MoE
// configuration classes); q, k and v have biases, o_proj none.
func readQwen2Bias(c *config, a *Arch) (err error) {
	a.QKVBias, err = c.bool("qkv_bias", true)
	a.OutBias = false
	return err
}

// readAttentionBias reads attention_bias (default false) into the q, k, v
// and output biases.
func readAttentionBias(c *config, a *Arch) error { return readAttentionBiasDefault(c, a, false) }

func readAttentionBiasDefault(c *config, a *Arch, def bool) (err error) {
	if a.QKVBias, err = c.bool("attention_bias", def); err != nil {
		return err
	}
	a.OutBias = a.QKVBias
	return nil
}

// readDropouts sets a.Dropout to the largest of the family's dropout keys.
func (k *ConfigKeys) readDropouts(c *config, a *Arch) error {
	for _, d := range k.Dropouts {
		p, err := c.prob(d.Key, d.Default)
		if err != nil {
			return err
		}
		a.Dropout = math.Max(a.Dropout, p)
	}
	return nil
}

// familiesWith lists the families for which has is true, sorted.
func familiesWith(has func(*Family) bool) []string {
	var names []string
	for n, f := range families {
		if has(f) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
