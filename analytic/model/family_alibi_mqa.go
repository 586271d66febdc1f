package model

// The layers of the ALiBi and multi-query families (issue 16): BLOOM's
// BloomBlock (transformers/models/bloom/modeling_bloom.py) and Falcon's
// FalconDecoderLayer (transformers/models/falcon/modeling_falcon.py), as
// transformers 5.24 runs them. Their saved tensors are the breakdown's own
// programs (analytic/activations_alibi_mqa.go), measured against the
// classes on torch 2.11's CPU (scenarios/family_truth_famD_test.go); only
// transformers builds them (HFOnly), the hand-built path does not.

// Names of the two programs (Layer.Name).
const (
	BloomLayerName  = "bloom"
	FalconLayerName = "falcon"
)

var (
	// bloomLayer: fused query_key_value (nn.Linear), the scores from
	// alibi.baddbmm(q, k^T), softmax in fp32 cast back, dropout_add on
	// the attention and MLP outputs, bloom's GeLU as a custom autograd
	// function that saves its input.
	bloomLayer = &Layer{Name: BloomLayerName,
		Ops:         []Op{OpNorm, OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		SoftmaxFP32: true, Dropout: true, HFOnly: true}
	// falconLayer: one or two norms (Arch.NormsPerLayer) with attention
	// and MLP in parallel (Arch.ParallelBlock, a missing second norm
	// skipped as for phi) or one after the other, fused query_key_value
	// split into h query heads and Arch.KVHeads key and value heads,
	// rotary or (Arch.Alibi) ALiBi positions, softmax in the hidden
	// states' dtype.
	falconLayer = &Layer{Name: FalconLayerName,
		Ops:     []Op{OpNorm, OpQKV, OpRotary, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual},
		Dropout: true, HFOnly: true}
)

// FalconLayout is the FalconConfig layout that builds a: whether it is
// new_decoder_architecture (grouped k/v heads, or attention and MLP in
// parallel on two norms, ln_attn and ln_mlp) and, if not, multi_query
// (one k/v head). The configuration class has several layouts for one
// parameter count; this is the one HFConfig writes and the breakdown
// assumes (a new_decoder_architecture config with as many k/v heads as
// query heads saves two 8-byte index tensors a layer more than the
// multi-head layout of the same parameters).
func FalconLayout(a Arch) (newArch, multiQuery bool) {
	kv := a.KVHeads
	if kv == 0 {
		kv = a.Heads
	}
	newArch = a.ParallelBlock && a.NormsPerLayer == 2 || kv > 1 && kv < a.Heads
	return newArch, !newArch && kv == 1 && a.Heads > 1
}

// readFalconPositions reads FalconConfig's alibi switch and its name for
// the MLP's activation (activation).
func readFalconPositions(c *config, a *Arch) error {
	var err error
	if a.Alibi, err = c.bool("alibi", false); err != nil {
		return err
	}
	a.Act, err = c.firstString(a.Act, "activation")
	return err
}
