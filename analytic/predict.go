package analytic

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/memval/memval/analytic/model"
)

// Phases of a training step that a Term may be limited to (Term.Phase).
const (
	// PhaseForward is the end of the forward pass and the start of the
	// backward pass: every saved activation, the logits and the logits'
	// gradient are live; with zero_grad(set_to_none=True), the default since
	// PyTorch 2.0, the gradients of the previous step are not.
	PhaseForward = "forward"
	// PhaseOptimizer is the end of the backward pass and the optimizer step:
	// activations are freed, every gradient is live, and the optimizer's
	// temporaries are allocated.
	PhaseOptimizer = "optimizer"

	// PhaseLoss, PhaseBackward and PhaseRecompute are moments inside the
	// PhaseForward window that never overlap: a term limited to one of them
	// is live on top of the PhaseForward terms at that moment only, and
	// Totals counts the largest of the three (see Totals).
	//
	// PhaseLoss is the end of the forward pass, while the loss is computed:
	// the logits' shifted and fp32 copies exist, freed before backward.
	PhaseLoss = "loss"
	// PhaseBackward is the start of the backward pass: the loss's and the
	// logits' gradients and the LM head's first gradient.
	PhaseBackward = "backward"
	// PhaseRecompute is later in the backward pass, under activation
	// checkpointing: the one layer (or attention core) recomputed at a time.
	PhaseRecompute = "recompute"

	// PhasePrefill and PhaseDecode are the two moments of a generation
	// (memory_generation.go): the forward over the prompt, and the last
	// token's forward with the cache at its longest. They never overlap
	// each other or a training step's phases; Totals counts the larger.
	PhasePrefill = "prefill"
	PhaseDecode  = "decode"
)

// ErrNotApplicable is returned (wrapped) by Predict when a formula does not
// cover the workload, e.g. a training-only formula asked about inference.
var ErrNotApplicable = errors.New("formula does not apply")

// formula is one named model of memory; run dispatches to its function.
type formula struct {
	name string
	doc  string
}

// formulas lists every model Predict knows, in the order Formulas returns.
var formulas = []formula{
	{"seed", "the seed article as written: 16N + 8BD steady, L(14E+4BSS) + 6BSV activations, +4BSV at backward"},
	{"breakdown", "per-tensor account of a PyTorch step: states by precision and optimizer, saved activations, logits, optimizer temporaries, CUDA context"},
	{"korthikanti", "Korthikanti et al. 2022: sbh(34 + 5as/h) per layer with TP/SP/recomputation, plus model states"},
	{"megatron", "Megatron-LM theoretical_memory_usage.py: 18 B/param (6 + 12/DP distributed), Table 2 activations, x1.05"},
	{"deepspeed", "DeepSpeed model-state estimators: ZeRO-2 4N + 16N/G, ZeRO-3 4*largest_layer + 18N/G (no activations)"},
	{"eleuther", "EleutherAI Transformer Math 101: weights + optimizer + gradients + Korthikanti activations; inference 1.2x weights"},
	{"accelerate", "Hugging Face accelerate estimate-memory: weights, 4x weights for Adam training (batch 1, no activations)"},
}

// Formulas returns the names Predict accepts, the primary three first.
func Formulas() []string {
	names := make([]string, len(formulas))
	for i, f := range formulas {
		names[i] = f.name
	}
	return names
}

// FormulaDoc returns a one-line description of the named formula, or "" if
// there is none.
func FormulaDoc(name string) string {
	for _, f := range formulas {
		if f.name == name {
			return f.doc
		}
	}
	return ""
}

// inputs is what every formula reads: the normalized Arch, the Workload
// with its defaults filled, the parameter count and the sizes as float64
// (so that products such as B*S*S*h*L cannot overflow an int).
type inputs struct {
	a model.Arch
	w model.Workload
	n int64

	L, H, h, kv, hd, ffn, V float64 // layers, hidden, heads, kv heads, head dim, d_ff, vocab
	B, S                    float64 // micro-batch, sequence
	t, dp                   float64 // tensor- and data-parallel degrees (dp: ZeRO's sharding group, times cp)

	par parallel // pipeline stage, context parallelism, offload, engine (memory_parallel.go)

	// totalled is set by a formula that has filled in every term's Bytes
	// and e.Steady and e.Peak exactly as Recompute would (see tally), so
	// that PredictInto skips Recompute.
	totalled bool
}

// Predict returns formula's memory prediction for model a running workload
// w, per GPU. a is normalized first (see Arch.Normalize) and w's zero
// fields take their documented defaults. Each Term has Bytes =
// ceil(Feature*Coef); Steady and Peak follow Totals.
//
// Errors: an unknown formula (the message lists Formulas), an invalid Arch
// (*FieldError from Normalize), an invalid workload (*FieldError naming the
// Workload JSON field: batch, seq, precision, optimizer, attention,
// checkpointing, backend, zero, dp, tp, dropout), a formula that does not
// cover the workload (ErrNotApplicable) and sizes over MaxBytes
// (ErrOverflow).
func Predict(name string, a model.Arch, w model.Workload) (Estimate, error) {
	var e Estimate
	if err := PredictInto(&e, name, a, w); err != nil {
		return Estimate{}, err
	}
	return e, nil
}

// PredictInto is Predict writing into *e, reusing the capacity of e.Terms:
// a caller that predicts many times (a solver, a sweep) allocates nothing
// once e.Terms is large enough. Every field of *e is overwritten; on error
// *e is left zero except for the capacity of e.Terms. The terms of a
// previous result are overwritten, so copy them first if they are still
// needed.
func PredictInto(e *Estimate, name string, a model.Arch, w model.Workload) error {
	var f *formula
	for i := range formulas {
		if formulas[i].name == name {
			f = &formulas[i]
			break
		}
	}
	terms := e.Terms[:0]
	*e = Estimate{Terms: terms}
	if f == nil {
		return fmt.Errorf("unknown formula %q; use one of %s", name, strings.Join(Formulas(), ", "))
	}
	var in inputs
	if err := in.prepare(a, w); err != nil {
		return err
	}
	if in.par.active && f.name != "breakdown" {
		return fmt.Errorf("%s: %w: pp, cp, offload and engine are modelled by the breakdown formula only", name, ErrNotApplicable)
	}
	if (in.w.Checkpointing.EveryNth() > 0 || in.w.Checkpointing.OpsPolicy() != "") && f.name != "breakdown" {
		return fmt.Errorf("%s: %w: checkpointing %s is modelled by the breakdown formula only", name, ErrNotApplicable, in.w.Checkpointing)
	}
	if finetuneActive(&in.w) && f.name != "breakdown" {
		return fmt.Errorf("%s: %w: lora, weights, grad_accum, zero_grad, optimizer_impl and the adafactor, lion and paged-adamw8bit optimizers are modelled by the breakdown formula only", name, ErrNotApplicable)
	}
	if n := f.maxTerms(); cap(terms) < n {
		terms = make([]Term, 0, n)
	}
	*e = Estimate{Formula: name, Params: in.n, Terms: terms}
	if err := f.run(e, &in); err != nil {
		*e = Estimate{Terms: terms[:0]}
		return err
	}
	if in.totalled {
		return nil // the formula set Steady and Peak as Recompute would
	}
	if err := e.Recompute(); err != nil {
		*e = Estimate{Terms: terms[:0]}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// run computes formula f, calling its function directly (not through a
// func value, so that the compiler sees where e and in go and keeps them
// on the caller's stack).
func (f *formula) run(e *Estimate, in *inputs) error {
	switch f.name {
	case "seed":
		return predictSeed(e, in)
	case "breakdown":
		return predictBreakdown(e, in)
	case "korthikanti":
		return predictKorthikanti(e, in)
	case "megatron":
		return predictMegatron(e, in)
	case "deepspeed":
		return predictDeepSpeed(e, in)
	case "eleuther":
		return predictEleuther(e, in)
	case "accelerate":
		return predictAccelerate(e, in)
	}
	return fmt.Errorf("formula %q has no function (a bug)", f.name)
}

// maxTerms is the capacity PredictInto gives a new Estimate.Terms: more
// than the formula ever writes (the breakdown: at most 29 saved
// activations, 5 extras and 11 terms of its own; the others at most 12), so
// that this allocation is the only one.
func (f *formula) maxTerms() int {
	if f.name == "breakdown" {
		return 48
	}
	return 12
}

// prepare normalizes a, fills w's defaults, checks both and counts the
// parameters.
func (in *inputs) prepare(a model.Arch, w model.Workload) error {
	a, n, err := normalizedParams(a)
	if err != nil {
		return err
	}
	w, err = w.WithDefaults()
	if err != nil {
		return err
	}
	if err := checkImageSeq(a, w.Seq); err != nil { // activations_vision.go
		return err
	}
	if a.MaxPositions > 0 && w.Seq > a.MaxPositions && model.ImageTokens(a) == 0 {
		return &model.FieldError{Field: "seq", Value: w.Seq,
			Reason: fmt.Sprintf("is longer than the model's learned position table of %d rows; use at most %d", a.MaxPositions, a.MaxPositions)}
	}
	if a.Heads%w.TP != 0 {
		return &model.FieldError{Field: "tp", Value: w.TP,
			Reason: fmt.Sprintf("does not divide the %d attention heads; choose a divisor of %d", a.Heads, a.Heads)}
	}
	if a.KVHeads >= w.TP && a.KVHeads%w.TP != 0 || a.KVHeads < w.TP && w.TP%a.KVHeads != 0 {
		return &model.FieldError{Field: "tp", Value: w.TP,
			Reason: fmt.Sprintf("neither divides nor is a multiple of the %d key/value heads", a.KVHeads)}
	}
	if err := checkEP(&a, &w); err != nil {
		return err
	}
	in.a, in.w, in.n = a, w, n
	in.L, in.H, in.h = float64(a.Layers), float64(a.Hidden), float64(a.Heads)
	in.kv, in.hd, in.ffn, in.V = float64(a.KVHeads), float64(a.HeadDim), float64(a.FFN), float64(a.Vocab)
	in.B, in.S = float64(w.Batch), float64(w.Seq)
	in.t, in.dp = float64(w.TP), float64(w.DP)
	if err := in.prepareParallel(); err != nil {
		return err
	}
	return in.checkFinetune()
}

// archCache remembers the last Arch normalized and counted, since Normalize
// and Params cost far more than a formula and a solver or a sweep asks
// about the same model many times. Both are pure functions of the Arch.
type archCache struct {
	in, out model.Arch
	n       int64
}

var lastArch atomic.Pointer[archCache]

// normalizedParams returns a normalized and its parameter count.
func normalizedParams(a model.Arch) (model.Arch, int64, error) {
	if c := lastArch.Load(); c != nil && c.in == a {
		return c.out, c.n, nil
	}
	in := a
	if err := a.Normalize(); err != nil {
		return a, 0, err
	}
	n, err := model.TotalParams(a) // Params(a).Total without the components
	if err != nil {
		return a, 0, err
	}
	lastArch.Store(&archCache{in: in, out: a, n: n})
	return a, n, nil
}

// add appends a term; Bytes is filled by Recompute.
func (e *Estimate) add(name string, g Group, feature float64, unit string, coef float64) *Term {
	// Field by field into the next slot, setting every field (a reused slice
	// may hold an old Term there): appending a Term literal goes through the
	// runtime's typed copy, a large part of an estimate's time.
	if len(e.Terms) == cap(e.Terms) {
		e.Terms = append(e.Terms, Term{})
	} else {
		e.Terms = e.Terms[:len(e.Terms)+1]
	}
	t := &e.Terms[len(e.Terms)-1]
	t.Name, t.Group, t.Feature, t.Unit, t.Coef = name, g, feature, unit, coef
	t.Bytes, t.Peak, t.Phase, t.Note = 0, false, "", ""
	return t
}

// addPeak appends a term counted in Peak only, limited to phase ("" for
// the whole step).
func (e *Estimate) addPeak(name string, g Group, feature float64, unit string, coef float64, phase string) *Term {
	t := e.add(name, g, feature, unit, coef)
	t.Peak, t.Phase = true, phase
	return t
}

// TermBytes is ceil(feature*coef) in bytes, the rule every Term follows.
// It is an error (ErrOverflow) when the product is negative, not a number
// or above MaxBytes.
func TermBytes(feature, coef float64) (uint64, error) {
	// ceil(p) >= 0 exactly when p > -1, and ceil(p) <= MaxBytes (an integer)
	// exactly when p <= MaxBytes; NaN fails both.
	p := feature * coef
	if !(p > -1 && p <= float64(MaxBytes)) {
		return 0, ErrOverflow
	}
	if p <= 0 {
		return 0, nil
	}
	// math.Ceil without the call: p <= 2^62, so the conversion truncates
	// exactly, and at 2^52 and above p is already an integer.
	n := int64(p)
	if float64(n) < p {
		n++
	}
	return uint64(n), nil
}

// Recompute sets every Term's Bytes from its Feature and Coef and then
// Steady and Peak from the terms (Totals). A calibration that changes
// coefficients calls it to refresh the totals.
func (e *Estimate) Recompute() error {
	s, p, err := e.totals(true)
	if err != nil {
		return err
	}
	e.Steady, e.Peak = s, p
	return nil
}

// Totals adds the terms' Bytes up:
//
//	Steady = Σ Bytes of the terms that are not peak-only
//	Peak   = Σ whole-step terms + max(forward window, optimizer phase, prefill, decode)
//	forward window = Σ PhaseForward terms
//	                 + max(Σ PhaseLoss, Σ PhaseBackward, Σ PhaseRecompute terms)
//
// where the whole-step terms are those whose Phase is empty and the
// optimizer phase sums the PhaseOptimizer terms. When no term names a
// phase, Peak is the sum of all terms. Peak is never below Steady. Sums
// above MaxBytes are ErrOverflow, an unknown Phase an error.
func (e *Estimate) Totals() (steady, peak uint64, err error) {
	return e.totals(false)
}

// totals is Totals, first setting each term's Bytes from its Feature and
// Coef when recompute is true (one pass over the terms for Recompute).
//
// It is the one pass over the terms of most predictions, so it is kept
// tight: TermBytes's check is written out (and checkedCeil), each term's
// phase is looked up once, and Peak is always the phased formula, which
// equals the plain sum when no term names a phase (every phase sum but
// slotAll is then 0).
func (e *Estimate) totals(recompute bool) (steady, peak uint64, err error) {
	// sums[phaseSlot(phase)]; every sum stays at most MaxBytes = 2^62, so
	// adding one more term's Bytes cannot wrap, and only the sums just
	// changed can pass it.
	var sums [slotCount]uint64
	terms := e.Terms
	for i := range terms {
		t := &terms[i]
		b := t.Bytes
		if recompute {
			p := t.Feature * t.Coef
			if !(p > -1 && p <= float64(MaxBytes)) { // TermBytes
				return 0, 0, fmt.Errorf("term %s: %w", t.Name, ErrOverflow)
			}
			b = checkedCeil(p)
			t.Bytes = b
		} else if b > MaxBytes {
			return 0, 0, fmt.Errorf("term %s: %w", t.Name, ErrOverflow)
		}
		k := phaseSlot(t.Phase)
		if uint(k) >= uint(len(sums)) {
			return 0, 0, fmt.Errorf("term %s: unknown phase %q", t.Name, t.Phase)
		}
		if !t.Peak {
			steady += b
		}
		sums[k] += b
		if steady > MaxBytes || sums[k] > MaxBytes {
			return 0, 0, ErrOverflow
		}
	}
	// Each sum is at most 2^62, so neither addition wraps.
	moment := max(sums[slotLoss], sums[slotBackward], sums[slotRecompute])
	peak = sums[slotAll] + max(sums[slotForward]+moment, sums[slotOptimizer], sums[slotPrefill], sums[slotDecode])
	peak = max(peak, steady)
	if peak > MaxBytes {
		return 0, 0, ErrOverflow
	}
	return steady, peak, nil
}

// checkedCeil is ceil(p) for a p that passed TermBytes's check
// (-1 < p <= MaxBytes): p <= 2^62, so the conversion truncates exactly, at
// 2^52 and above p is already an integer, and (-1, 0] truncates to 0.
func checkedCeil(p float64) uint64 {
	n := int64(p)
	if float64(n) < p {
		n++
	}
	return uint64(n)
}

// tally is Totals's sums kept while terms are built, so that a formula
// that fills in every term's Bytes as it adds it (predictBreakdown) can set
// Steady and Peak without a second pass over the terms. The sums do not
// depend on the order the terms are added in; the errors of Totals do, so
// a tally that meets anything Totals would report (a term or a sum over
// MaxBytes, an unknown phase) only marks itself bad, and the caller falls
// back to Recompute, which reports it exactly as before.
type tally struct {
	steady uint64
	sums   [slotCount]uint64
	bad    bool
}

// add counts b bytes of a term in phase slot k (counted in steady unless
// peak). b must be at most MaxBytes and k a valid slot.
func (s *tally) add(b uint64, peak bool, k int) {
	if !peak {
		s.steady += b
	}
	s.sums[k] += b // at most 2^62 + 2^62: cannot wrap
	if s.steady > MaxBytes || s.sums[k] > MaxBytes {
		s.bad = true
	}
}

// terms sets the Bytes of ts from their Feature and Coef, as Recompute
// does, and counts them.
func (s *tally) terms(ts []Term) {
	for i := range ts {
		t := &ts[i]
		p := t.Feature * t.Coef
		k := phaseSlot(t.Phase)
		if !(p > -1 && p <= float64(MaxBytes)) || uint(k) >= slotCount {
			s.bad = true
			return
		}
		t.Bytes = checkedCeil(p)
		s.add(t.Bytes, t.Peak, k)
	}
}

// totals returns Steady and Peak as Totals computes them from the same
// terms, and false where the caller must call Recompute instead.
func (s *tally) totals() (steady, peak uint64, ok bool) {
	if s.bad {
		return 0, 0, false
	}
	moment := max(s.sums[slotLoss], s.sums[slotBackward], s.sums[slotRecompute])
	peak = max(s.sums[slotAll]+max(s.sums[slotForward]+moment, s.sums[slotOptimizer], s.sums[slotPrefill], s.sums[slotDecode]), s.steady)
	if peak > MaxBytes {
		return 0, 0, false
	}
	return s.steady, peak, true
}

// slotPhases is the Phase of each slot of Totals's sums.
var slotPhases = [slotCount]string{
	slotAll: "", slotForward: PhaseForward, slotOptimizer: PhaseOptimizer,
	slotLoss: PhaseLoss, slotBackward: PhaseBackward, slotRecompute: PhaseRecompute,
	slotPrefill: PhasePrefill, slotDecode: PhaseDecode,
}

// Slots of Totals's sums, one per phase.
const (
	slotAll = iota
	slotForward
	slotOptimizer
	slotLoss
	slotBackward
	slotRecompute
	slotPrefill
	slotDecode
	slotCount
)

// phaseSlot returns the slot of phase p, or -1 for an unknown phase. It
// tells the phases apart by length first, which costs less than a string
// switch.
func phaseSlot(p string) int {
	switch len(p) {
	case 0:
		return slotAll
	case len(PhaseForward): // and PhasePrefill
		if p == PhaseForward {
			return slotForward
		}
		if p == PhasePrefill {
			return slotPrefill
		}
	case len(PhaseDecode):
		if p == PhaseDecode {
			return slotDecode
		}
	case len(PhaseOptimizer): // and PhaseRecompute
		if p == PhaseOptimizer {
			return slotOptimizer
		}
		if p == PhaseRecompute {
			return slotRecompute
		}
	case len(PhaseLoss):
		if p == PhaseLoss {
			return slotLoss
		}
	case len(PhaseBackward):
		if p == PhaseBackward {
			return slotBackward
		}
	}
	return -1
}

// Group returns the sum of the Bytes of e's terms in group g (peak-only
// terms included).
func (e *Estimate) Group(g Group) uint64 {
	var s uint64
	for i := range e.Terms {
		if e.Terms[i].Group == g {
			s += e.Terms[i].Bytes
		}
	}
	return s
}

// Term returns the first term named name, and whether there is one.
func (e *Estimate) Term(name string) (Term, bool) {
	for _, t := range e.Terms {
		if t.Name == name {
			return t, true
		}
	}
	return Term{}, false
}

// notes sets e.Notes to a shared, read-only list of static notes; the
// capacity is clipped so that a caller's append copies.
func (e *Estimate) notes(ns []string) {
	e.Notes = ns[:len(ns):len(ns)]
}
