package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Loss is the convention by which a training loop turns the LM head's
// logits into the loss (Workload.Loss). Each value follows one library's
// code; "" is ShiftLoss.
type Loss string

const (
	// ShiftLoss is memval's hand-built program (scenarios/train.py) and
	// transformers before 4.46: logits[..., :-1, :].contiguous() and
	// labels[..., 1:], cross_entropy over B*(S-1) rows in the logits'
	// dtype (Llama's hand-built model upcasts its logits with .float()).
	ShiftLoss Loss = "shift"
	// HFLoss is transformers' ForCausalLMLoss (transformers/loss/loss_utils.py,
	// 4.46 and later): logits.float(), labels padded by one ignore_index
	// and shifted, cross_entropy over B*S rows in fp32.
	HFLoss Loss = "hf"
	// TorchtitanLoss is torchtitan's cross_entropy_loss
	// (torchtitan/components/loss.py): labels shifted by the data loader,
	// cross_entropy(pred.flatten(0, 1).float(), labels.flatten(0, 1)) over
	// B*S rows in fp32.
	TorchtitanLoss Loss = "torchtitan"
	// NanoGPTLoss is nanoGPT's model.py: labels shifted by the data loader,
	// cross_entropy(logits.view(-1, V), targets.view(-1)) in the logits'
	// dtype (fp32 under autocast, whose log_softmax runs in fp32).
	NanoGPTLoss Loss = "nanogpt"
	// ChunkedLoss is torchtune's CEWithChunkedOutputLoss
	// (torchtune/modules/loss/ce_chunked_output_loss.py): the model
	// returns its logits in N chunks along the sequence (num_output_chunks,
	// 8 by default; "chunked:N" for another N) and each chunk is upcast to
	// fp32 on its own for cross_entropy over B*S rows in all.
	ChunkedLoss Loss = "chunked"
	// FusedLoss is Liger Kernel's LigerFusedLinearCrossEntropyLoss
	// (liger_kernel/ops/fused_linear_cross_entropy.py): the LM head and the
	// loss in one, logits computed a chunk of rows at a time and never
	// whole; the input's and the head weight's gradients are computed in
	// the forward pass and kept for backward.
	FusedLoss Loss = "fused"
)

// DefaultLossChunks is torchtune's num_output_chunks.
const DefaultLossChunks = 8

// Losses lists the Loss values a Workload accepts ("chunked" also as
// "chunked:N").
func Losses() []string {
	return []string{string(ShiftLoss), string(HFLoss), string(TorchtitanLoss), string(NanoGPTLoss), string(ChunkedLoss), string(FusedLoss)}
}

// Kind is l without its ":N" ("" read as ShiftLoss).
func (l Loss) Kind() Loss {
	if l == "" {
		return ShiftLoss
	}
	if k, _, ok := strings.Cut(string(l), ":"); ok {
		return Loss(k)
	}
	return l
}

// Chunks is the number of logits chunks of a chunked loss (1 for the
// others).
func (l Loss) Chunks() int {
	if l.Kind() != ChunkedLoss {
		return 1
	}
	if _, n, ok := strings.Cut(string(l), ":"); ok {
		v, err := strconv.Atoi(n)
		if err == nil && v > 0 {
			return v
		}
	}
	return DefaultLossChunks
}

// CheckLoss returns a *FieldError naming field unless l is "" or one of
// Losses (chunked with an optional ":N", N a positive integer).
func CheckLoss(field string, l Loss) error {
	if l == "" {
		return nil
	}
	k, n, hasN := strings.Cut(string(l), ":")
	if err := CheckEnum(field, k, Losses()); err != nil {
		return err
	}
	if !hasN {
		return nil
	}
	if Loss(k) != ChunkedLoss {
		return &FieldError{Field: field, Value: fmt.Sprintf("%q", l), Reason: "only chunked takes a number of chunks (chunked:N)"}
	}
	if v, err := strconv.Atoi(n); err != nil || v < 1 || v > MaxDim {
		return &FieldError{Field: field, Value: fmt.Sprintf("%q", l), Reason: fmt.Sprintf("chunked:N needs N a positive integer up to %d, e.g. chunked:8", MaxDim)}
	}
	return nil
}

// checkConventions checks the convention fields of w (WithDefaults' hook).
func (w *Workload) checkConventions() error {
	if w.OffloadActivations && w.Checkpointing != FullCheckpointing && w.Checkpointing.EveryNth() == 0 {
		return &FieldError{Field: "offload_activations", Value: true,
			Reason: fmt.Sprintf("offloads the checkpointed layers' inputs: needs checkpointing full or layers:N (got %s)", w.Checkpointing)}
	}
	return CheckLoss("loss", w.Loss)
}

// LayersCheckpointingPrefix starts torchtitan's every-Nth-layer activation
// checkpointing, "layers:N" (torchtitan/models/llama3/infra/parallelize.py
// _apply_ac_to_transformer_block, selective_ac_option N): counting the
// layers from 1, each whose number is a multiple of N is checkpointed whole
// (only its input kept, recomputed in backward), the others keep all their
// saved tensors.
const LayersCheckpointingPrefix = "layers:"

// EveryNth is N of a "layers:N" checkpointing, 0 for the others.
func (c Checkpointing) EveryNth() int {
	n, ok := strings.CutPrefix(string(c), LayersCheckpointingPrefix)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 1 {
		return 0
	}
	return v
}

// CheckpointingChoices is Checkpointings plus the parameterised forms, for
// flag help and error messages.
func CheckpointingChoices() []string {
	return append(Checkpointings(), LayersCheckpointingPrefix+"N", OpsCheckpointingPrefix+TorchtitanOpsPolicy)
}

// CheckCheckpointing returns a *FieldError naming field unless c is one of
// Checkpointings, "layers:N" with N a positive integer or "ops:POLICY"
// with POLICY one of OpsPolicies.
func CheckCheckpointing(field string, c Checkpointing) error {
	if strings.HasPrefix(string(c), OpsCheckpointingPrefix) {
		return checkOpsCheckpointing(field, c) // checkpointing_ops.go
	}
	if strings.HasPrefix(string(c), LayersCheckpointingPrefix) {
		if c.EveryNth() < 1 || c.EveryNth() > MaxDim {
			return &FieldError{Field: field, Value: fmt.Sprintf("%q", c), Reason: "layers:N needs N a positive integer (checkpoint every N-th layer), e.g. layers:2"}
		}
		return nil
	}
	return CheckEnum(field, string(c), Checkpointings())
}

// checkpointingOrDefault is c, or NoCheckpointing when empty, checked.
func checkpointingOrDefault(c Checkpointing) (Checkpointing, error) {
	if c == "" {
		return NoCheckpointing, nil
	}
	return c, CheckCheckpointing("checkpointing", c)
}
