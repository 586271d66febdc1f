package analytic

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
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
)

// ErrNotApplicable is returned (wrapped) by Predict when a formula does not
// cover the workload, e.g. a training-only formula asked about inference.
var ErrNotApplicable = errors.New("formula does not apply")

// formula is one named model of memory.
type formula struct {
	name string
	doc  string
	fn   func(e *Estimate, in *inputs) error
}

// formulas lists every model Predict knows, in the order Formulas returns.
var formulas = []formula{
	{"seed", "the seed article as written: 16N + 8BD steady, L(14E+4BSS) + 6BSV activations, +4BSV at backward", predictSeed},
	{"breakdown", "per-tensor account of a PyTorch step: states by precision and optimizer, saved activations, logits, optimizer temporaries, CUDA context", predictBreakdown},
	{"korthikanti", "Korthikanti et al. 2022: sbh(34 + 5as/h) per layer with TP/SP/recomputation, plus model states", predictKorthikanti},
	{"megatron", "Megatron-LM theoretical_memory_usage.py: 18 B/param (6 + 12/DP distributed), Table 2 activations, x1.05", predictMegatron},
	{"deepspeed", "DeepSpeed model-state estimators: ZeRO-2 4N + 16N/G, ZeRO-3 4*largest_layer + 18N/G (no activations)", predictDeepSpeed},
	{"eleuther", "EleutherAI Transformer Math 101: weights + optimizer + gradients + Korthikanti activations; inference 1.2x weights", predictEleuther},
	{"accelerate", "Hugging Face accelerate estimate-memory: weights, 4x weights for Adam training (batch 1, no activations)", predictAccelerate},
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
	a Arch
	w Workload
	n int64

	L, H, h, kv, hd, ffn, V float64 // layers, hidden, heads, kv heads, head dim, d_ff, vocab
	B, S                    float64 // micro-batch, sequence
	t, dp                   float64 // tensor- and data-parallel degrees
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
func Predict(name string, a Arch, w Workload) (Estimate, error) {
	var f *formula
	for i := range formulas {
		if formulas[i].name == name {
			f = &formulas[i]
			break
		}
	}
	if f == nil {
		return Estimate{}, fmt.Errorf("unknown formula %q; use one of %s", name, strings.Join(Formulas(), ", "))
	}
	var in inputs
	if err := in.prepare(a, w); err != nil {
		return Estimate{}, err
	}
	e := Estimate{Formula: name, Params: in.n}
	if name != "breakdown" || in.w.Inference { // breakdown sizes its own, once it knows the activations
		e.Terms = make([]Term, 0, 12)
	}
	if err := f.fn(&e, &in); err != nil {
		return Estimate{}, err
	}
	if err := e.Recompute(); err != nil {
		return Estimate{}, fmt.Errorf("%s: %w", name, err)
	}
	return e, nil
}

// prepare normalizes a, fills w's defaults, checks both and counts the
// parameters.
func (in *inputs) prepare(a Arch, w Workload) error {
	a, n, err := normalizedParams(a)
	if err != nil {
		return err
	}
	w, err = w.withDefaults()
	if err != nil {
		return err
	}
	if a.MaxPositions > 0 && w.Seq > a.MaxPositions {
		return &FieldError{Field: "seq", Value: w.Seq,
			Reason: fmt.Sprintf("is longer than the model's learned position table of %d rows; use at most %d", a.MaxPositions, a.MaxPositions)}
	}
	if a.Heads%w.TP != 0 {
		return &FieldError{Field: "tp", Value: w.TP,
			Reason: fmt.Sprintf("does not divide the %d attention heads; choose a divisor of %d", a.Heads, a.Heads)}
	}
	if a.KVHeads >= w.TP && a.KVHeads%w.TP != 0 || a.KVHeads < w.TP && w.TP%a.KVHeads != 0 {
		return &FieldError{Field: "tp", Value: w.TP,
			Reason: fmt.Sprintf("neither divides nor is a multiple of the %d key/value heads", a.KVHeads)}
	}
	in.a, in.w, in.n = a, w, n
	in.L, in.H, in.h = float64(a.Layers), float64(a.Hidden), float64(a.Heads)
	in.kv, in.hd, in.ffn, in.V = float64(a.KVHeads), float64(a.HeadDim), float64(a.FFN), float64(a.Vocab)
	in.B, in.S = float64(w.Batch), float64(w.Seq)
	in.t, in.dp = float64(w.TP), float64(w.DP)
	return nil
}

// archCache remembers the last Arch normalized and counted, since Normalize
// and Params cost far more than a formula and a solver or a sweep asks
// about the same model many times. Both are pure functions of the Arch.
type archCache struct {
	in, out Arch
	n       int64
}

var lastArch atomic.Pointer[archCache]

// normalizedParams returns a normalized and its parameter count.
func normalizedParams(a Arch) (Arch, int64, error) {
	if c := lastArch.Load(); c != nil && c.in == a {
		return c.out, c.n, nil
	}
	in := a
	if err := a.Normalize(); err != nil {
		return a, 0, err
	}
	p, err := Params(a)
	if err != nil {
		return a, 0, err
	}
	lastArch.Store(&archCache{in: in, out: a, n: p.Total})
	return a, p.Total, nil
}

// withDefaults returns w with its zero fields set to their documented
// defaults, or a *FieldError naming the first bad field.
func (w Workload) withDefaults() (Workload, error) {
	if w.Batch <= 0 {
		return w, &FieldError{Field: "batch", Value: w.Batch, Reason: "must be a positive integer"}
	}
	if w.Seq <= 0 {
		return w, &FieldError{Field: "seq", Value: w.Seq, Reason: "must be a positive integer"}
	}
	if w.Batch > MaxDim || w.Seq > MaxDim {
		return w, &FieldError{Field: "batch", Value: w.Batch, Reason: fmt.Sprintf("batch and seq must be at most %d", MaxDim)}
	}
	switch w.Precision {
	case "":
		w.Precision = FP32
	case FP32, FP16Mixed, BF16Mixed, BF16Pure, BF16Master:
	default:
		return w, enumError("precision", string(w.Precision), Precisions())
	}
	switch w.Optimizer {
	case "":
		w.Optimizer = AdamW
	case AdamW, Adam8bit, SGD, SGDMomentum:
	default:
		return w, enumError("optimizer", string(w.Optimizer), Optimizers())
	}
	switch w.Attention {
	case "":
		w.Attention = MathAttention
	case MathAttention, FlashAttention:
	default:
		return w, enumError("attention", string(w.Attention), []string{string(MathAttention), string(FlashAttention)})
	}
	switch w.Checkpointing {
	case "":
		w.Checkpointing = NoCheckpointing
	case NoCheckpointing, FullCheckpointing, SelectiveCheckpointing:
	default:
		return w, enumError("checkpointing", string(w.Checkpointing),
			[]string{string(NoCheckpointing), string(FullCheckpointing), string(SelectiveCheckpointing)})
	}
	switch w.Backend {
	case "":
		w.Backend = CUDA
	case CUDA, CPU:
	default:
		return w, enumError("backend", string(w.Backend), []string{string(CUDA), string(CPU)})
	}
	if w.ZeRO < 0 || w.ZeRO > 3 {
		return w, &FieldError{Field: "zero", Value: w.ZeRO, Reason: "must be 0, 1, 2 or 3"}
	}
	if w.DP < 0 || w.DP > MaxDim {
		return w, &FieldError{Field: "dp", Value: w.DP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.TP < 0 || w.TP > MaxDim {
		return w, &FieldError{Field: "tp", Value: w.TP, Reason: "must be a positive integer (0 means 1)"}
	}
	if w.DP == 0 {
		w.DP = 1
	}
	if w.TP == 0 {
		w.TP = 1
	}
	if !(w.Dropout >= 0 && w.Dropout < 1) {
		return w, &FieldError{Field: "dropout", Value: w.Dropout, Reason: "must be a probability in [0, 1)"}
	}
	return w, nil
}

// Precisions lists the Precision values a Workload accepts.
func Precisions() []string {
	return []string{string(FP32), string(FP16Mixed), string(BF16Mixed), string(BF16Pure), string(BF16Master)}
}

// Optimizers lists the Optimizer values a Workload accepts.
func Optimizers() []string {
	return []string{string(AdamW), string(SGD), string(SGDMomentum), string(Adam8bit)}
}

func enumError(field, value string, choices []string) error {
	return &FieldError{Field: field, Value: fmt.Sprintf("%q", value), Reason: "unknown value; use one of " + strings.Join(choices, ", ")}
}

// add appends a term; Bytes is filled by Recompute.
func (e *Estimate) add(name string, g Group, feature float64, unit string, coef float64) *Term {
	e.Terms = append(e.Terms, Term{Name: name, Group: g, Feature: feature, Unit: unit, Coef: coef})
	return &e.Terms[len(e.Terms)-1]
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
	x := math.Ceil(feature * coef)
	if !(x >= 0) || x > float64(MaxBytes) {
		return 0, ErrOverflow
	}
	return uint64(x), nil
}

// Recompute sets every Term's Bytes from its Feature and Coef and then
// Steady and Peak from the terms (Totals). A calibration that changes
// coefficients calls it to refresh the totals.
func (e *Estimate) Recompute() error {
	for i := range e.Terms {
		t := &e.Terms[i]
		b, err := TermBytes(t.Feature, t.Coef)
		if err != nil {
			return fmt.Errorf("term %s: %w", t.Name, err)
		}
		t.Bytes = b
	}
	s, p, err := e.Totals()
	if err != nil {
		return err
	}
	e.Steady, e.Peak = s, p
	return nil
}

// Totals adds the terms' Bytes up:
//
//	Steady = Σ Bytes of the terms that are not peak-only
//	Peak   = max over phases P of Σ Bytes of the terms live in P
//
// where a term is live in P when its Phase is empty or P. When no term
// names a phase, Peak is the sum of all terms. Peak is never below Steady.
// Sums above MaxBytes are ErrOverflow.
func (e *Estimate) Totals() (steady, peak uint64, err error) {
	var all, fwd, opt uint64
	phased := false
	for i := range e.Terms {
		t := &e.Terms[i]
		if t.Bytes > MaxBytes {
			return 0, 0, fmt.Errorf("term %s: %w", t.Name, ErrOverflow)
		}
		if !t.Peak {
			steady += t.Bytes
		}
		switch t.Phase {
		case "":
			all += t.Bytes
		case PhaseForward:
			fwd += t.Bytes
			phased = true
		case PhaseOptimizer:
			opt += t.Bytes
			phased = true
		default:
			return 0, 0, fmt.Errorf("term %s: unknown phase %q", t.Name, t.Phase)
		}
		if steady > MaxBytes || all > MaxBytes || fwd > MaxBytes || opt > MaxBytes {
			return 0, 0, ErrOverflow
		}
	}
	peak = all + fwd + opt
	if phased {
		peak = all + max(fwd, opt)
	}
	peak = max(peak, steady)
	if peak > MaxBytes {
		return 0, 0, ErrOverflow
	}
	return steady, peak, nil
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
