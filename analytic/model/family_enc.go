package model

// EncoderLayerName is the eager program of the BERT-style encoders
// (Layer.Name): bert, roberta, xlm-roberta and distilbert.
const EncoderLayerName = "bert"

// The encoders' layer as transformers 5.24 runs it
// (transformers/models/bert/modeling_bert.py BertLayer,
// models/roberta/modeling_roberta.py, models/distilbert/modeling_distilbert.py
// TransformerBlock): post-norm, the embeddings' LayerNorm before the
// first layer and none after the last; separate q, k, v nn.Linear with
// biases, eager attention scaled by a Python float with softmax in the
// scores' dtype and no mask (none is passed); the attention's output
// dense, dropout, the residual add and a LayerNorm; the intermediate
// dense, its activation, the output dense, dropout, the residual add and
// a LayerNorm. Measured on torch 2.11's CPU (scenarios/family_truth_enc_test.go).
var (
	bertLayer = &Layer{Name: EncoderLayerName,
		Ops:      []Op{OpQKV, OpAttention, OpOutProj, OpDropout, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual, OpNorm},
		SplitQKV: true, Dropout: true}
	// RoBERTa and XLM-RoBERTa: position ids counted from the input ids;
	// the classification head drops out the first token's features first.
	robertaLayer = func() *Layer {
		l := *bertLayer
		l.PositionIDsFromInput, l.HeadDropoutIn = true, true
		return &l
	}()
	// DistilBERT: no dropout after the attention's output projection
	// (TransformerBlock drops out only the FFN's output); no token types
	// (its Family has none).
	distilBertLayer = func() *Layer {
		l := *bertLayer
		l.Ops = []Op{OpQKV, OpAttention, OpOutProj, OpResidual, OpNorm, OpMLP, OpDropout, OpResidual, OpNorm}
		return &l
	}()
)

// Dropouts is the number of residual dropouts in the layer (OpDropout).
func (l *Layer) Dropouts() int {
	n := 0
	for _, o := range l.Ops {
		if o == OpDropout {
			n++
		}
	}
	return n
}
