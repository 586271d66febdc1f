package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// Notes carried by activation terms.
const (
	noteMeasured = "measured: torch 2.x CPU saved_tensors_hooks (scenarios/train.py, torch 2.11)"
	noteDerived  = "derived, not yet measured"
	// noteHeldLogits is the breakdown's note on logits.output.
	noteHeldLogits = "held by the training loop until the step ends (not saved for backward)"
)

// SavedActivations lists, tensor by tensor, the bytes PyTorch eager
// autograd saves for backward during one forward pass (and the loss) of
// model a under workload w: what saved_tensors_hooks see, each storage
// counted once, parameters and buffers left out. The sum of the Bytes of
// the returned terms is that figure; scenarios/train.py measures it.
//
// Every term is of group activations (logits for the loss tensors, input
// for the token ids), Peak true and Phase PhaseForward: live from the
// forward pass until backward frees it. Per-layer terms have Feature =
// elements summed over the L layers and Coef = bytes per element, with
// Unit naming the product, e.g. "B*S*H*L".
//
// The tensors of a GPT-2 layer (family gpt2, Hugging Face GPT2LMHeadModel,
// eager attention), with r the residual dtype (fp32, or 16-bit for pure
// bf16), a the matmul dtype (16-bit under autocast or pure bf16, else
// fp32), m the dropout mask dtype (one byte on CUDA, the input's dtype on
// torch 1.13's CPU):
//
//	ln1.in, ln2.in          r*B*S*H each   layer_norm input (the residual stream)
//	ln.stats                4*4*B*S        mean and rstd of both norms (2 bytes under pure bf16 on the CPU)
//	attn.qkv_in             a*B*S*H        c_attn's input (ln_1 output or its autocast copy)
//	attn.qkv_copies         a*3*B*S*H      q and k^T and v made contiguous by matmul
//	attn.scale              a per layer    the 0-dim sqrt(head_dim) divisor
//	attn.scores             s*B*h*S*S      softmax output (s = 4 bytes under CUDA autocast, where softmax runs in fp32; else a)
//	attn.probs              a*B*h*S*S      the probabilities matmul keeps when they differ from attn.scores (dropout, or CUDA autocast's cast back)
//	dropout.attn_mask       m*B*h*S*S      with dropout
//	attn.proj_in            a*B*S*H        merged heads, c_proj's input
//	dropout.resid_mask      m*2*B*S*H      with dropout (after attention and after the MLP)
//	mlp.fc_in               a*B*S*H        c_fc's input
//	mlp.act                 gelu_new (written out as HF does): its input, tanh, 0.5*x and 1+tanh, 4*a*B*S*F
//	                        (CUDA autocast runs pow in fp32: 4+4+2+4); gelu/silu: the input a*B*S*F; relu: none extra
//	mlp.act_scalars         3 float64 0-dim tensors per layer (gelu_new's Python constants)
//	mlp.proj_in             a*B*S*F        the MLP's second projection's input
//	autocast.weight_copy    2 bytes per weight of every linear layer and the LM head (autocast's 16-bit copies)
//
// and once: input.ids 8*B*S, embed.positions 8*S (learned positions),
// dropout.embed_mask m*B*S*H, lnf.in r*B*S*H, lnf.stats, head.in a*B*S*H,
// loss.log_softmax (fp32, bf16 when pure) *B*(S-1)*V, loss.targets
// 8*B*(S-1), loss.total_weight one 0-dim tensor.
//
// Llama-style families (llama, mistral, qwen2: RMSNorm written out
// in fp32, rotary, GQA, SwiGLU) save per norm its input, x^2, rsqrt and the
// normalized x (fp32 under autocast), rotary's cos and sin once, the
// rotated q and the (GQA-expanded) k and v, a float64 scale, fp32 softmax
// output plus a 16-bit copy under autocast or pure bf16, and in the MLP the
// gate output, its activation, the up output and their product; under
// autocast every linear saves its own 16-bit copy of its input (three for
// q, k, v, two for gate and up). BLOOM and Falcon run their own programs
// (ALiBi, multi-query attention; activations_alibi_mqa.go); gpt_neox, opt,
// phi, gpt_neo and gptj play their transformers classes' own programs
// (activations_gptstyle.go); gemma, qwen3, qwen3_moe, phi3 and olmo2 differ
// from Llama as activations_variants.go says, gemma2, gemma3 and
// starcoder2 as activations_window.go says; the encoders (bert, roberta,
// xlm-roberta, distilbert) run their own post-norm program
// (activations_enc.go) and the vision transformers theirs
// (activations_vision.go). Family vanilla is taken as a GPT-2 layer with
// its activation and flagged "derived, not yet measured"; so is everything on the CUDA backend, which differs from the CPU in dropout
// masks (1 byte), autocast's op lists (softmax, pow, layer_norm statistics
// in fp32) and flash attention.
//
// Checkpointing full keeps only each layer's input (ckpt.block_in, r*B*S*H
// per layer; the recompute of one layer during backward is in
// ActivationExtras); selective drops the attention core (scores, probs,
// masks, copies) and keeps the q, k, v storage (attn.qkv, a*3*B*S*H).
// Flash attention (CUDA; on the CPU torch 1.13 falls back to math, and so
// does this model) keeps q, k, v, the output and an fp32 logsumexp
// (attn.lse, 4*B*h*S) instead of the core.
//
// Preconditions: positive Layers, Hidden, Heads, Vocab, Batch and Seq;
// zero HeadDim, KVHeads and FFN take Hidden/Heads, Heads and 4*Hidden. The
// workload's zero fields take their documented defaults. A family whose
// layer has the sparse block (model.OpMoE: mixtral, qwen2_moe, qwen3_moe)
// saves the router's, the routed experts' and the shared expert's tensors
// instead of the MLP's (see moeShape). Errors: *model.FieldError for an
// expert-parallel degree or imbalance the model cannot have; ErrOverflow
// for sizes over MaxBytes.
func SavedActivations(a model.Arch, w model.Workload) ([]Term, error) {
	return appendSavedActivations(make([]Term, 0, 28), a, w)
}

// appendSavedActivations appends SavedActivations(a, w) to dst and returns
// the extended slice; it allocates only when dst lacks the capacity. On
// error it returns nil.
func appendSavedActivations(dst []Term, a model.Arch, w model.Workload) ([]Term, error) {
	var s actShape
	if err := s.init(a, w); err != nil {
		return nil, err
	}
	b := actBuilder{terms: dst, note: s.note}
	s.savedTerms(&b)
	if b.err != nil {
		return nil, b.err
	}
	return b.terms, nil
}

// savedTerms adds the terms of SavedActivations.
func (s *actShape) savedTerms(b *actBuilder) {
	b.lora, b.softmaxIn = s.lora, s.softmaxIn
	b.offload, b.offloadRope = s.offload, s.offloadsRope() // checkpoint_offload.go
	switch {
	case s.own != nil:
		s.ownTerms(b) // activations_alibi_mqa.go
	case s.gs != nil:
		s.gptStyleTerms(b) // activations_gptstyle.go
	case s.enc != nil:
		s.encTerms(b)
	case s.vis != nil:
		s.visTerms(b)
	case s.llama:
		s.llamaTerms(b)
	default:
		s.gpt2Terms(b)
	}
}

// ActivationExtras lists the transient tensors of a step that autograd does
// not save but that are live at the end of the forward pass or during
// backward: the LM head's logits output (held by the caller), its shifted
// copy for the loss and, under autocast, the fp32 copy cross entropy makes;
// with checkpointing, the saved tensors of the one layer (full) or
// attention core (selective) recomputed at a time during backward. All are
// Peak terms with Phase PhaseForward. Same preconditions as
// SavedActivations.
func ActivationExtras(a model.Arch, w model.Workload) ([]Term, error) {
	var s actShape
	if err := s.init(a, w); err != nil {
		return nil, err
	}
	b := actBuilder{terms: make([]Term, 0, 6), note: s.note}
	s.extraTerms(&b)
	if b.err != nil {
		return nil, b.err
	}
	return b.terms, nil
}

// extraTerms adds the terms of ActivationExtras.
//
// Under b.breakdown the extras take the phases of predictBreakdown's step:
// logits.output is held for the whole step (phase "", with its own note),
// the recomputed layer or attention core is PhaseRecompute and the rest
// (the loss's copies) PhaseLoss.
func (s *actShape) extraTerms(b *actBuilder) {
	held, loss, recompute, heldNote := slotForward, slotForward, slotForward, b.note
	if b.breakdown {
		held, loss, recompute, heldNote = slotAll, slotLoss, slotRecompute, noteHeldLogits
	}
	s.lossExtras(b, held, loss, heldNote)
	if s.moe != nil {
		s.moe.extraTerms(b, s, recompute)
	}
	s.everyNthRecompute(b, recompute)
	s.reloadTerm(b, recompute) // checkpoint_offload.go
	s.autocastCache(b, loss)
	switch s.ckpt {
	case model.FullCheckpointing:
		var one actShape = *s
		one.ckpt, one.L = model.NoCheckpointing, 1
		inner := actBuilder{sumOnly: true, lora: s.lora, softmaxIn: s.softmaxIn}
		one.layerTerms(&inner)
		b.put("ckpt.recompute_layer", GroupActivations, float64(inner.sum), "bytes", 1, recompute, b.note)
	case model.SelectiveCheckpointing:
		if !s.flash {
			var one actShape = *s
			one.ckpt, one.L = model.NoCheckpointing, 1
			inner := actBuilder{sumOnly: true, softmaxIn: s.softmaxIn}
			one.attnCore(&inner)
			b.put("ckpt.recompute_attn", GroupActivations, float64(inner.sum), "bytes", 1, recompute, b.note)
		}
	}
}

// autocastCache adds, under autocast, the 16-bit copies of the weights of
// the layers checkpointing recomputes: autocast caches the cast of every
// fp32 leaf that requires grad (aten/src/ATen/autocast_mode.cpp,
// cached_cast: no grad-mode condition, so a checkpointed forward under
// no_grad fills it too) until the outermost autocast region exits, after
// the loss and before backward (clear_autocast_cache). Without
// checkpointing the copies are saved for backward (autocast.weight_copy);
// with it nothing holds them but the cache, so they are a loss-phase
// transient. Frozen weights (LoRA's base) are not cached, the adapters'
// are. Measured on the CPU (torch 2.11, reentrant and non-reentrant
// checkpoint: TestAutocastCacheTruth); the linears' biases, cached too, are
// left out (a few KiB a layer).
func (s *actShape) autocastCache(b *actBuilder, slot int) {
	if !s.autocast {
		return
	}
	var layers float64
	switch {
	case s.ckptEvery > 0:
		layers = s.checkpointedLayers()
	case s.ckpt == model.FullCheckpointing && !s.sac:
		layers = s.L
	}
	w, unit := s.linearWeights, "L*linear params"
	if s.lora != nil {
		w, unit = s.lora.params, "L*adapter params"
	}
	b.put(autocastCacheName, GroupActivations, w*layers, unit, 2, slot, b.note)
}

// autocastCacheName is autocastCache's term, which the device play
// allocates layer by layer in the forward and frees before backward.
const autocastCacheName = "autocast.weight_cache"

// SavedBytes sums the Bytes of terms.
func SavedBytes(terms []Term) uint64 { return sumBytes(terms) }

func sumBytes(terms []Term) uint64 {
	var n uint64
	for i := range terms {
		n += terms[i].Bytes
	}
	return n
}

// actShape is the sizes (as float64, so products cannot overflow an int)
// and the dtypes (bytes per element) one prediction needs.
type actShape struct {
	L, H, h, kv, hd, F, V, B, S float64
	linearWeights               float64 // weights of one layer's linear layers
	headWeights                 float64 // the LM head's weight (tied or not)

	moe                      *moeShape // the sparse block in place of the MLP (nil: dense)
	llama, gelunew, actSaves bool      // family path; gelu_new written out; activation saves its input
	learnedPos, measured     bool
	autocast, cuda, flash    bool
	dropout                  bool
	ckpt                     model.Checkpointing
	loss                     model.Loss // loss convention (loss.go)
	ckptEvery                int        // N of a layers:N checkpointing (checkpointing.go)
	sac                      bool       // per-op selective checkpointing (checkpointing_ops.go)
	softmaxIn                bool       // torch before 1.11: softmax keeps its input (model/releases.go)
	sacElems                 float64    // its saved mm outputs' elements per token and layer
	sacNames                 string     // and their linear layers, for the formula
	freeLogits               bool
	impl                     model.AttnImpl // attention implementation (attention_impl.go)
	offload                  bool           // checkpointed layers' inputs in host memory (checkpoint_offload.go)
	wbytes                   float64        // bytes per weight element
	lora                     *loraShape     // LoRA's frozen base and adapters (activations_lora.go); nil without
	own                      *ownLayer      // BLOOM's or Falcon's own program (activations_alibi_mqa.go); nil for the others
	head                     *headShape     // a task head in place of the LM head (activations_heads.go); nil without
	variant                  *llamaVariant  // a family's departures from the Llama program (activations_window.go); nil without
	vr                       variantShape   // the Llama variants' details (activations_variants.go)
	enc                      *encShape      // the BERT-style encoders' program (activations_enc.go); nil for the others
	vis                      *visShape      // the vision transformers' program (activations_vision.go); nil for the others
	loraDropout              bool
	gs                       *gptStyle // an HFOnly family's program (activations_gptstyle.go); nil for the others

	r, a, stat, mask, score float64 // bytes per element
	note                    string
}

func (s *actShape) init(a model.Arch, w model.Workload) error {
	w, err := w.WithDefaults()
	if err != nil {
		return err
	}
	return s.initDefaulted(&a, &w)
}

// initDefaulted is init for a w whose defaults are already filled.
func (s *actShape) initDefaulted(a *model.Arch, w *model.Workload) error {
	if a.Layers <= 0 || a.Hidden <= 0 || a.Heads <= 0 || a.Vocab <= 0 && model.ImageTokens(*a) == 0 {
		return &model.FieldError{Field: "layers", Value: a.Layers,
			Reason: "layers, hidden, heads and vocab must be positive integers (normalize the arch first)"}
	}
	hd, kv, ffn := a.HeadDim, a.KVHeads, a.FFN
	if hd == 0 {
		hd = a.Hidden / a.Heads
	}
	if kv == 0 {
		kv = a.Heads
	}
	if ffn == 0 {
		ffn = 4 * a.Hidden
	}
	*s = actShape{
		L: float64(a.Layers), H: float64(a.Hidden), h: float64(a.Heads), kv: float64(kv), hd: float64(hd),
		F: float64(ffn), V: float64(a.Vocab), B: float64(w.Batch), S: float64(w.Seq),
		ckpt: w.Checkpointing, dropout: w.Dropout > 0, cuda: w.Backend == model.CUDA,
		loss: w.Loss, freeLogits: w.FreeLogits, wbytes: 4, ckptEvery: w.Checkpointing.EveryNth(),
		impl: w.AttnImpl, offload: w.OffloadActivations, softmaxIn: w.TorchBefore(1, 11),
	}
	if w.Precision == model.BF16Pure || w.Precision == model.BF16Master {
		s.wbytes = 2
	}
	// The family table says which eager program a layer runs, whether its
	// positions are a learned table and whether torch checked the terms.
	// An unknown family is taken as a GPT-2 layer with learned positions.
	fam, known := model.FamilyOf(a.Family)
	s.llama = known && fam.Layer.Name == model.LlamaLayerName
	s.measured = known && fam.Measured
	s.learnedPos = !known || fam.Positions == model.LearnedPositions
	if known && s.llama {
		s.initLlamaVariant(a, fam.Layer) // activations_variants.go
	}
	s.initEncoder(fam, known) // activations_enc.go
	act := a.Act
	if act == "" {
		act = "gelu_new"
		if s.llama {
			act = "silu"
		}
	}
	s.gelunew = act == "gelu_new"
	s.actSaves = act != "relu"
	// torch 2.x's CPU has a flash SDPA kernel, without dropout (with it,
	// SDPA falls back to its math path, taken here as eager attention).
	s.flash = w.Attention == model.FlashAttention && (s.cuda || !s.dropout)
	if err := s.initMoE(a, w, known && fam.Layer.HasOp(model.OpMoE)); err != nil {
		return err
	}

	H, qd, kvd := s.H, s.h*s.hd, s.kv*s.hd
	s.linearWeights = H*qd + 2*H*kvd + qd*H + 2*H*s.F
	if s.llama || a.GatedMLP {
		s.linearWeights += H * s.F
	}
	if s.moe != nil {
		s.linearWeights = s.moe.linearWeights(H, qd, kvd)
	}
	s.headWeights = H * s.V
	if known {
		if err := s.initVariant(a, fam); err != nil { // activations_window.go
			return err
		}
	}

	switch w.Precision {
	case model.FP32:
		s.r, s.a, s.stat = 4, 4, 4
	case model.FP16Mixed, model.BF16Mixed:
		s.r, s.a, s.stat, s.autocast = 4, 2, 4, true
	default: // pure 16-bit activations
		s.r, s.a, s.stat = 2, 2, 2
		if s.cuda {
			s.stat = 4 // CUDA layer_norm keeps fp32 statistics for 16-bit inputs
		}
	}
	s.score = s.a
	if s.autocast && s.cuda {
		s.score = 4 // softmax is on CUDA autocast's fp32 list
	}
	s.applyAttnImpl()
	s.mask = 1
	if !s.cuda {
		s.mask = 0 // the input's dtype: set per tensor
	}
	s.note = noteMeasured
	if s.cuda || !s.measured || s.ckpt == model.SelectiveCheckpointing && s.llama || s.moe != nil && s.moe.ep > 1 ||
		s.variant != nil && s.variant.unmeasured {
		s.note = noteDerived
	}
	if err := s.initLoRA(a, w); err != nil {
		return err
	}
	s.initOwn(a, fam)
	if known {
		s.initGPTStyle(a, w, fam) // activations_gptstyle.go
	}
	s.variantNote(w)
	s.initVision(a, fam, known)       // activations_vision.go
	if s.enc != nil && a.Head == "" { // the bare encoder (activations_enc.go): its loss is derived
		s.note = noteDerived
	}
	var layer *model.Layer
	if known {
		layer = fam.Layer
	}
	if w.Checkpointing.OpsPolicy() != "" && (s.own != nil || s.gs != nil || s.enc != nil || s.vis != nil || s.variant != nil || s.vr.variant()) {
		return &model.FieldError{Field: "checkpointing", Value: string(w.Checkpointing),
			Reason: "per-op checkpointing is modelled for the gpt2 and llama programs (gpt2, llama, mistral, qwen2), not family " + a.Family + "'s; use full or layers:N"}
	}
	return s.initOpsCkpt(a, w, layer) // checkpointing_ops.go
}

// maskBytes is the dropout mask's bytes per element for an input of dt.
func (s *actShape) maskBytes(dt float64) float64 {
	if s.mask == 0 {
		return dt
	}
	return s.mask
}

// actBuilder appends terms, computing Bytes and keeping the first error.
// With sumOnly it appends nothing and adds the Bytes of the terms up to the
// first error into sum instead. With noIDs it checks the input.ids term but
// leaves it out (the breakdown counts the batch itself).
//
// The breakdown (predictBreakdown) sets three more things so that it needs
// no second pass over the terms: breakdown, which gives the extras their
// phases of the step (see extraTerms); scaled, which multiplies each Coef by
// logitScale (group logits) or layerScale (the rest) after the unscaled
// term passed TermBytes's check; and sumFeatures, which adds each term's
// Feature*Coef (scaled) into features. Every term's Bytes and phase slot
// also go into tally.
type actBuilder struct {
	terms   []Term
	note    string
	err     error
	sum     uint64
	sumOnly bool
	noIDs   bool

	lora                           *loraShape
	softmaxIn                      bool // torch before 1.11: attn.scores brings attn.softmax_in
	breakdown, scaled, sumFeatures bool
	offload                        bool   // put ckpt.block_in and ckpt.mask into host (checkpoint_offload.go)
	offloadRope                    bool   // and rope.cos_sin
	host                           []Term // the offloaded terms
	layerScale, logitScale         float64
	features                       float64
	tally                          tally
}

// add adds a term of the forward window: Peak, PhaseForward, b.note.
func (b *actBuilder) add(name string, g Group, feature float64, unit string, coef float64) {
	b.put(name, g, feature, unit, coef, slotForward, b.note)
}

// put adds a peak-only term limited to the phase of slot, with note.
// Terms with a zero Feature or Coef are left out.
func (b *actBuilder) put(name string, g Group, feature float64, unit string, coef float64, slot int, note string) {
	if b.softmaxIn && name == "attn.scores" {
		// before torch 1.11 _softmax kept its input too, of the output's
		// size and dtype (model/releases.go)
		b.softmaxIn = false
		b.put("attn.softmax_in", g, feature, unit, coef, slot, noteDerived)
		b.softmaxIn = true
	}
	if b.lora != nil {
		feature *= b.lora.keep(name) // a frozen base (activations_lora.go)
	}
	if b.err != nil || feature == 0 || coef == 0 {
		return
	}
	p := feature * coef
	if !(p > -1 && p <= float64(MaxBytes)) { // TermBytes's check
		b.err = fmt.Errorf("saved activations %s: %w", name, ErrOverflow)
		return
	}
	if b.scaled {
		if g == GroupLogits {
			coef *= b.logitScale
		} else {
			coef *= b.layerScale
		}
		p = feature * coef
		if !(p > -1 && p <= float64(MaxBytes)) { // Recompute reports it
			b.tally.bad, p = true, 0
		}
	}
	n := checkedCeil(p)
	if b.offload && (name == "ckpt.block_in" || name == "ckpt.mask") || b.offloadRope && name == "rope.cos_sin" {
		b.host = append(b.host, Term{Name: name, Group: g, Feature: feature, Unit: unit, Coef: coef, Bytes: n})
		return
	}
	if b.sumOnly {
		b.sum += n
		return
	}
	if b.sumFeatures {
		b.features += p
	}
	b.tally.sums[slot] += n // tally.add for a peak-only term
	if b.tally.sums[slot] > MaxBytes {
		b.tally.bad = true
	}
	// Fill the next slot field by field: appending a Term literal copies the
	// whole struct through the runtime (typedmemmove), which was a quarter
	// of a breakdown estimate's time.
	t := b.next()
	t.Name, t.Group, t.Feature, t.Unit, t.Coef = name, g, feature, unit, coef
	t.Bytes, t.Peak, t.Phase, t.Note = n, true, slotPhases[slot], note
}

// next extends b.terms by one Term and returns it; the caller sets every
// field (a reused slice may hold an old Term there).
func (b *actBuilder) next() *Term {
	if len(b.terms) == cap(b.terms) {
		b.terms = append(b.terms, Term{})
	} else {
		b.terms = b.terms[:len(b.terms)+1] // add sets every field
	}
	return &b.terms[len(b.terms)-1]
}

// addIDs adds the input.ids term, 8*B*S bytes of int64 token ids.
func (b *actBuilder) addIDs(s *actShape) {
	if !b.noIDs {
		b.add("input.ids", GroupInput, s.B*s.S, "B*S", 8)
		return
	}
	if _, err := TermBytes(s.B*s.S, 8); err != nil && b.err == nil {
		b.err = fmt.Errorf("saved activations %s: %w", "input.ids", err)
	}
}

// gpt2Terms is the GPT-2 model: embeddings, L layers, final norm and loss.
func (s *actShape) gpt2Terms(b *actBuilder) {
	BS := s.B * s.S
	b.addIDs(s)
	if s.learnedPos {
		b.add("embed.positions", GroupInput, s.S, "S", 8)
	}
	if s.dropout {
		b.add("dropout.embed_mask", GroupActivations, BS*s.H, "B*S*H", s.maskBytes(s.r))
	}
	s.layerTerms(b)
	s.ckptMask(b) // attention_impl.go
	s.headTerms(b, false)
}

// layerTerms adds the per-layer terms of the model's family (GPT-2 path or
// Llama path), honouring checkpointing.
func (s *actShape) layerTerms(b *actBuilder) {
	if s.ckptEvery > 0 {
		s.everyNthLayer(b) // checkpointing.go
		return
	}
	BSH := s.B * s.S * s.H * s.L
	if s.ckpt == model.FullCheckpointing {
		b.add("ckpt.block_in", GroupActivations, BSH, "B*S*H*L", s.r)
		if s.sac {
			s.sacTerms(b) // checkpointing_ops.go
		}
		return
	}
	defer s.loraLayerTerms(b) // LoRA's adapters (activations_lora.go)
	if s.own != nil {
		s.ownLayerTerms(b)
		return
	}
	if s.gs != nil {
		s.gptStyleLayer(b)
		return
	}
	if s.enc != nil {
		s.encLayer(b)
		return
	}
	if s.vis != nil {
		s.visLayer(b)
		return
	}
	if s.llama {
		s.llamaLayer(b)
		return
	}
	BSF := s.B * s.S * s.F * s.L
	BSq := s.B * s.S * s.h * s.hd * s.L
	b.add("ln.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.r)
	b.add("ln.stats", GroupActivations, 4*s.B*s.S*s.L, "4*B*S*L", s.stat)
	b.add("attn.qkv_in", GroupActivations, BSH, "B*S*H*L", s.a)
	if s.flash || s.ckpt == model.SelectiveCheckpointing {
		b.add("attn.qkv", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
		if s.flash {
			s.sdpaOut(b, BSq)
			b.add("attn.lse", GroupActivations, s.B*s.h*s.S*s.L, "B*h*S*L", 4)
		}
	} else {
		s.attnCore(b)
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	if s.dropout {
		b.add("dropout.resid_mask", GroupActivations, 2*BSH, "2*B*S*H*L", s.maskBytes(s.a))
	}
	b.add("mlp.fc_in", GroupActivations, BSH, "B*S*H*L", s.a)
	switch {
	case s.gelunew && s.autocast && s.cuda:
		// pow is on CUDA autocast's fp32 list: its fp32 input copy, tanh and
		// 1+tanh in fp32, 0.5*x in 16 bits.
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", 4+4+2+4)
	case s.gelunew:
		b.add("mlp.act", GroupActivations, 4*BSF, "4*B*S*F*L", s.a)
	case s.actSaves:
		b.add("mlp.act", GroupActivations, BSF, "B*S*F*L", s.a)
	}
	// gelu_new's three Python float constants: torch 1.13 saved them as
	// float64 0-dim tensors (24 bytes a layer); torch 2.x saves none.
	b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*s.L, "linear params", 2)
	}
}

// sdpaOut adds flash SDPA's saved output. On torch 2.x's CPU it is laid out
// as (B, S, h, d), so the merge of the heads is a view and the output is
// the storage attn.proj_in counts already (measured); the CUDA term is
// derived.
func (s *actShape) sdpaOut(b *actBuilder, BSq float64) {
	if s.sdpaOutCopy() {
		b.add("attn.sdpa_out", GroupActivations, BSq, "B*S*h*d*L", s.a)
	}
}

// attnCore is eager attention between the q, k, v projections and the
// merge of the heads (GPT-2's _attn; for Llama see llamaLayer).
func (s *actShape) attnCore(b *actBuilder) {
	BSq := s.B * s.S * s.h * s.hd * s.L
	BhSS := s.B * s.h * s.S * s.S * s.L
	b.add("attn.qkv_copies", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
	if s.scaleTensor() {
		b.add("attn.scale", GroupActivations, s.L, "L", s.a)
	}
	b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", s.score)
	if s.dropout || s.score != s.a {
		b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
	}
	if s.dropout {
		b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(s.a)) // dropout after the cast to v's dtype
	}
}

// headTerms adds the final norm, the LM head's input and weight copy, and
// the loss.
func (s *actShape) headTerms(b *actBuilder, rms bool) {
	BS := s.B * s.S
	if s.finalNorm() { // activations_gptstyle.go
		switch {
		case rms && s.variant != nil:
			s.variantFinalNorm(b) // activations_window.go
		case rms:
			if s.r == 4 {
				b.add("lnf.in", GroupActivations, BS*s.H, "B*S*H", s.r)
			}
			b.add("lnf.fp32", GroupActivations, BS*s.H, "B*S*H", 4) // x*rsqrt or x.to(float32) (torch 1.13: and x^2)
			b.add("lnf.stats", GroupActivations, BS, "B*S", 4)
			s.normedTerm(b, "lnf", BS*s.H, "B*S*H") // activations_variants.go
			s.normPlusOneTerm(b, "lnf", 1, "H")
		default:
			b.add("lnf.in", GroupActivations, BS*s.H, "B*S*H", s.r)
			b.add("lnf.stats", GroupActivations, 2*BS, "2*B*S", s.stat)
		}
	}
	if s.head != nil {
		s.taskHeadTerms(b)
		return
	}
	if !s.fusedLoss() { // a fused head and loss saves its gradients instead
		b.add("head.in", GroupActivations, BS*s.H, "B*S*H", s.a)
		if s.autocast {
			b.add("autocast.head_weight_copy", GroupActivations, s.headWeights, "V*H", 2)
		}
		s.variantLogitCap(b)
	}
	s.lossSaved(b)
}

// llamaTerms is the Llama model: token embedding, rotary tables, L layers,
// final RMSNorm and loss.
func (s *actShape) llamaTerms(b *actBuilder) {
	b.addIDs(s)
	if s.savesRope() {
		pairs, unit := 1.0, "2*S*d"
		if s.variant != nil && s.variant.ropePairs != 1 { // gemma3's local and global tables
			pairs, unit = s.variant.ropePairs, "2*S*d*tables"
		}
		b.add("rope.cos_sin", GroupActivations, 2*pairs*s.S*s.hd, unit, s.ropeBytes())
	}
	s.variantEmbed(b) // activations_window.go
	s.layerTerms(b)
	s.headTerms(b, true)
	if s.moe != nil {
		s.moe.auxLossTerms(b, s)
	}
}

// llamaLayer is one eager LlamaDecoderLayer times L: two RMSNorms (input,
// x^2, rsqrt, normalized x in fp32; their 16-bit output where the linear
// layers read it), rotary q and k, GQA-expanded k and v, fp32 softmax, and
// the SwiGLU MLP.
func (s *actShape) llamaLayer(b *actBuilder) {
	L := s.L
	BSH := s.B * s.S * s.H * L
	BSq := s.B * s.S * s.h * s.hd * L
	BSF := s.B * s.S * s.F * L
	BhSS := s.B * s.h * s.S * s.S * L
	if s.variant != nil {
		s.variantNorms(b, BSH) // activations_window.go
	} else {
		s.llamaNorms(b, BSH)
	}
	s.qkNormTerms(b) // q_norm and k_norm (activations_variants.go)
	switch {
	case s.flash || s.ckpt == model.SelectiveCheckpointing:
		// q and k after rotary are fp32 under autocast (cos and sin are);
		// torch 2.x's CPU SDPA keeps its own 16-bit copies instead (measured).
		qk := s.a
		if s.autocast && (s.cuda || s.ckpt == model.SelectiveCheckpointing) {
			qk = 4
		}
		BSk := s.kvSaved(BSq) // k and v: every head, or the kv heads (attention_impl.go, activations_window.go)
		qkUnit, vUnit := "2*B*S*h*d*L", "B*S*h*d*L"
		if BSk != BSq {
			qkUnit, vUnit = "B*S*(h+kv)*d*L", "B*S*kv*d*L"
		}
		b.add("attn.qk", GroupActivations, BSq+BSk, qkUnit, qk)
		s.sdpaV(b, BSk, vUnit) // activations_variants.go
		s.variantAttn(b, true)
		if s.flash {
			s.sdpaOut(b, BSq)
			b.add("attn.lse", GroupActivations, s.B*s.h*s.S*L, "B*h*S*L", 4)
		}
	default:
		// q and k after rotary (autocast: promoted to fp32 by cos/sin, so
		// matmul keeps 16-bit copies), v expanded to h heads.
		b.add("attn.qkv_copies", GroupActivations, 3*BSq, "3*B*S*h*d*L", s.a)
		s.variantAttn(b, false)
		// the scale is a Python float: torch 2.x saves no tensor for it
		b.add("attn.scores", GroupActivations, BhSS, "B*h*S*S*L", 4) // softmax(dtype=float32)
		if s.a != 4 {
			b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
		}
		if s.dropout {
			b.add("dropout.attn_mask", GroupActivations, BhSS, "B*h*S*S*L", s.maskBytes(s.queryBytes()))
			if s.a == 4 {
				b.add("attn.probs", GroupActivations, BhSS, "B*h*S*S*L", s.a)
			}
		}
	}
	b.add("attn.proj_in", GroupActivations, BSq, "B*S*h*d*L", s.a)
	s.residDropoutTerm(b) // activations_variants.go
	switch {
	case s.moe != nil:
		s.moe.layerTerms(b, s)
	case s.variantMLP(b, BSF):
	default:
		b.add("mlp.act", GroupActivations, 3*BSF, "3*B*S*F*L", s.a) // gate out, act(gate), up out
		b.add("mlp.proj_in", GroupActivations, BSF, "B*S*F*L", s.a)
	}
	if s.autocast {
		b.add("autocast.weight_copy", GroupActivations, s.linearWeights*L, "linear params", 2)
	}
}

// llamaNorms is LlamaRMSNorm's saved tensors, two a layer, and the copies
// the linear layers keep of their outputs.
func (s *actShape) llamaNorms(b *actBuilder, BSH float64) {
	L := s.L
	if s.r == 4 { // a 16-bit input is kept only as its fp32 copy (ln.fp32)
		b.add("ln.in", GroupActivations, 2*BSH, "2*B*S*H*L", s.r)
	}
	// Per norm, x*rsqrt (fp32 residual) or x.to(float32) (16-bit). torch
	// 1.13's mean also saved x^2 (4*B*S*H*L in all); torch 2.x's saves none.
	b.add("ln.fp32", GroupActivations, 2*BSH, "2*B*S*H*L", 4)
	s.normedTerm(b, "ln", 2*BSH, "2*B*S*H*L") // (x*rsqrt).to(bf16), or fp32 (activations_variants.go)
	b.add("ln.stats", GroupActivations, 2*s.B*s.S*L, "2*B*S*L", 4)
	s.normPlusOneTerm(b, "ln", 2*L, "2*H*L")
	// The norms' outputs as the linear layers keep them: shared in fp32 or
	// pure bf16, one autocast copy per linear layer (q, k, v; gate, up).
	if s.autocast {
		if s.moe != nil {
			s.moe.normCopies(b, s, BSH)
		} else {
			n := s.normCopies() // q, k, v; gate, up (fewer where fused)
			b.add("ln.out_copies", GroupActivations, n*BSH, variantUnit(n), 2)
		}
	} else {
		b.add("ln.out", GroupActivations, 2*BSH, "2*B*S*H*L", s.a)
	}
}
