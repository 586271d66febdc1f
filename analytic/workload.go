package analytic

// Precision says how weights, gradients and activations are stored.
type Precision string

const (
	FP32       Precision = "fp32"        // everything fp32
	FP16Mixed  Precision = "fp16"        // torch.autocast(fp16): fp32 weights, grads and states; 16-bit activations where autocast casts
	BF16Mixed  Precision = "bf16"        // torch.autocast(bf16): as fp16
	BF16Pure   Precision = "bf16-pure"   // model.to(bfloat16): bf16 weights, grads, states, activations
	BF16Master Precision = "bf16-master" // bf16 weights and grads with fp32 master weights in the optimizer (Megatron / DeepSpeed style)
)

// Optimizer names the optimizer whose state is kept per parameter.
type Optimizer string

const (
	AdamW       Optimizer = "adamw"        // exp_avg + exp_avg_sq
	Adam8bit    Optimizer = "adam8bit"     // bitsandbytes 8-bit states
	SGD         Optimizer = "sgd"          // no state
	SGDMomentum Optimizer = "sgd-momentum" // momentum buffer
)

// Attention is how attention scores are computed.
type Attention string

const (
	MathAttention  Attention = "math"  // eager: softmax(QK^T) kept per head
	FlashAttention Attention = "flash" // SDPA/flash: no S*S matrix kept, a logsumexp per row instead
)

// Checkpointing is the activation recomputation strategy.
type Checkpointing string

const (
	NoCheckpointing        Checkpointing = "none"
	FullCheckpointing      Checkpointing = "full"      // only each layer's input is kept
	SelectiveCheckpointing Checkpointing = "selective" // attention core (scores, softmax, dropout) recomputed
)

// Backend is where the framework runs; it changes how some tensors are kept
// (torch's CPU dropout keeps a mask in the input's dtype, CUDA a 1-byte mask).
type Backend string

const (
	CUDA Backend = "cuda"
	CPU  Backend = "cpu"
)

// Workload is one training (or inference) step's shape and settings. The
// zero value of every optional field is documented on the field.
type Workload struct {
	Batch int `json:"batch"` // B, micro-batch per GPU
	Seq   int `json:"seq"`   // S, tokens per sample

	Precision     Precision     `json:"precision"`     // default fp32
	Optimizer     Optimizer     `json:"optimizer"`     // default adamw
	Dropout       float64       `json:"dropout"`       // probability; 0 means no dropout layers run
	Attention     Attention     `json:"attention"`     // default math
	Checkpointing Checkpointing `json:"checkpointing"` // default none
	Backend       Backend       `json:"backend"`       // default cuda

	ZeRO int  `json:"zero"` // 0 (plain DDP), 1, 2 or 3 (FSDP full shard)
	DP   int  `json:"dp"`   // data-parallel degree; 0 means 1
	TP   int  `json:"tp"`   // tensor-parallel degree; 0 means 1
	SP   bool `json:"sp"`   // sequence parallelism (with TP)

	Inference bool `json:"inference,omitempty"` // weights + KV cache only
}
