package model

// Norm is the kind of normalisation layer a model uses.
type Norm string

const (
	LayerNorm Norm = "layernorm" // weight and bias: 2*H parameters
	RMSNorm   Norm = "rmsnorm"   // weight only: H parameters
)

// Arch is the shape of a transformer model, as far as parameter counts and
// memory care. It is filled from a Hugging Face config.json (ParseConfig), a
// built-in preset (Preset) or explicit dimensions. Zero values of optional
// fields mean "as the family defines it" once Normalize has run.
type Arch struct {
	Name   string `json:"name,omitempty"`
	Family string `json:"family"` // Hugging Face model_type (see Families), or "vanilla" (the seed's layer)

	Layers  int `json:"layers"`   // L
	Hidden  int `json:"hidden"`   // H = d_model
	Heads   int `json:"heads"`    // h (query heads)
	KVHeads int `json:"kv_heads"` // key/value heads (GQA); equals Heads for multi-head attention
	HeadDim int `json:"head_dim"` // per-head width; Hidden/Heads unless the config says otherwise
	FFN     int `json:"ffn"`      // d_ff (intermediate size of the MLP, per expert for MoE)
	Vocab   int `json:"vocab"`    // V

	ContextLength  int `json:"context_length,omitempty"`  // longest sequence the model was built for (max_position_embeddings); 0: unknown
	MaxPositions   int `json:"max_positions,omitempty"`   // rows of a learned position table (0: none, e.g. rotary)
	PositionOffset int `json:"position_offset,omitempty"` // extra rows in the position table (OPT: 2)
	TokenTypes     int `json:"token_types,omitempty"`     // BERT token-type embedding rows
	EmbedProj      int `json:"embed_proj,omitempty"`      // OPT word_embed_proj_dim when it differs from Hidden (project_in/out)
	RotaryDim      int `json:"rotary_dim,omitempty"`      // width of each head rotary turns (partial rotary); 0: the family's default (RotaryDims)

	Norm          Norm `json:"norm"`
	EmbedNorm     bool `json:"embed_norm,omitempty"`     // a norm right after the embeddings (BERT)
	FinalNorm     bool `json:"final_norm"`               // a norm after the last layer
	ParallelBlock bool `json:"parallel_block,omitempty"` // attention and MLP read the same norm (phi, neox with use_parallel_residual shares none: see NormsPerLayer)
	NormsPerLayer int  `json:"norms_per_layer"`          // 2 for most, 1 for phi

	// Alibi: ALiBi biases on the attention scores instead of the family's
	// rotary positions (falcon's alibi switch; bloom always has them).
	Alibi bool `json:"alibi,omitempty"`

	QKVBias  bool   `json:"qkv_bias"`             // biases on the Q, K, V projections
	OutBias  bool   `json:"out_bias"`             // bias on the attention output projection
	MLPBias  bool   `json:"mlp_bias"`             // biases on the MLP projections
	GatedMLP bool   `json:"gated_mlp"`            // gate, up and down projections (SwiGLU/GeGLU): 3*H*d_ff
	Act      string `json:"activation,omitempty"` // gelu, gelu_new, relu, silu, ...

	TiedHead bool `json:"tied_head"`           // LM head shares the token embedding
	HeadBias bool `json:"head_bias,omitempty"` // LM head has a bias (phi)
	NoHead   bool `json:"no_head,omitempty"`   // encoder without an LM head (BertModel)
	Pooler   bool `json:"pooler,omitempty"`    // BERT pooler: H*H + H

	Experts         int `json:"experts,omitempty"`           // MoE experts per layer (mixtral); 0 for dense
	ExpertsPerToken int `json:"experts_per_token,omitempty"` // top-k routing
	// SharedFFN is the intermediate size of a shared expert every token
	// passes through besides its routed ones (qwen2_moe); 0: none.
	SharedFFN int `json:"shared_ffn,omitempty"`
	// SharedExpertGate: the shared expert's output is scaled by a
	// sigmoid gate, a Linear(hidden, 1) without bias (qwen2_moe).
	SharedExpertGate bool `json:"shared_expert_gate,omitempty"`
	// NormTopK: the top-k routing weights are divided by their sum
	// (mixtral always; qwen2_moe and qwen3_moe when norm_topk_prob).
	NormTopK bool `json:"norm_topk_prob,omitempty"`
	// RouterAuxLoss: training adds the auxiliary load-balancing loss over
	// every layer's router logits (config output_router_logits).
	RouterAuxLoss bool `json:"router_aux_loss,omitempty"`

	// QKNorm is a norm (of kind Norm) on the queries and keys before
	// rotary: QKNormHead normalizes each head over HeadDim with one weight
	// shared by the heads (qwen3, gemma3), QKNormFull the whole projection
	// over Heads*HeadDim and KVHeads*HeadDim (olmo2); "" for none.
	QKNorm string `json:"qk_norm,omitempty"`

	Dropout float64 `json:"dropout,omitempty"` // the config's dropout probability (hidden/attention); 0 means none

	// Head is the task head on top of the layers (see heads.go): lm,
	// seq-cls, token-cls, mlm or none; "" is the family's own (an LM head,
	// or none for the encoders). Labels is the classifiers' output size.
	Head   string `json:"head,omitempty"`
	Labels int    `json:"labels,omitempty"`
	// AttnImpl is the config.json's attn_implementation (or
	// _attn_implementation), the workload's default AttnImpl; "" when the
	// config names none or one memval does not model.
	AttnImpl AttnImpl `json:"attn_impl,omitempty"`

	// Attention switches of the families that have them (family_window.go):
	// SlidingWindow is the window of the local-attention layers (0: none);
	// GlobalEvery N makes every Nth layer (layer_idx+1 a multiple of N)
	// full attention and the others local (gemma2 2, gemma3_text 6; 0:
	// every layer local, starcoder2); AttnSoftcap and LogitSoftcap are the
	// tanh soft-capping of the attention scores and of the final logits
	// (gemma2's attn_logit_softcapping and final_logit_softcapping; 0: none).
	SlidingWindow int     `json:"sliding_window,omitempty"`
	GlobalEvery   int     `json:"global_every,omitempty"`
	AttnSoftcap   float64 `json:"attn_softcap,omitempty"`
	LogitSoftcap  float64 `json:"logit_softcap,omitempty"`
	// Vision transformers (families vit, dinov2; family_vision.go): square
	// images of ImageSize pixels cut into (ImageSize/PatchSize)^2 patches
	// of Channels channels, plus a class token: the tokens per image. 0 for
	// text models.
	ImageSize  int  `json:"image_size,omitempty"`
	PatchSize  int  `json:"patch_size,omitempty"`
	Channels   int  `json:"channels,omitempty"`
	MaskToken  bool `json:"mask_token,omitempty"`  // a learned mask token of H (DINOv2's use_mask_token)
	LayerScale bool `json:"layer_scale,omitempty"` // a learned per-channel scale after attention and after the MLP (DINOv2)
	Registers  int  `json:"registers,omitempty"`   // learned register tokens after the class token (dinov2_with_registers' num_register_tokens)
}

// Values of Arch.QKNorm.
const (
	QKNormHead = "head" // one norm of HeadDim for q and one for k, shared by the heads
	QKNormFull = "full" // a norm of Heads*HeadDim for q and one of KVHeads*HeadDim for k
)
