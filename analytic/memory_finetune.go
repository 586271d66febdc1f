package analytic

import (
	"fmt"

	"github.com/memval/memval/analytic/model"
)

// This file is the breakdown's account of the fine-tuning setups of issue
// 15: LoRA (frozen base weights, adapters with their gradients and
// states), quantized base weights with the dequantization buffer of the
// layer being run, Adafactor, Lion and paged 8-bit AdamW, torch.optim's
// implementations and gradient accumulation. predictBreakdown and
// modelStateTerms call it through small hooks.

// noteQuantDerived marks what comes from documented storage formats of
// CUDA-only packages (bitsandbytes, GPTQ kernels).
const noteQuantDerived = "derived, not measured: from the documented storage format (CUDA-only kernels)"

// finetuneActive reports whether w uses a setting only the breakdown
// models.
func finetuneActive(w *model.Workload) bool {
	return w.LoRA() || w.Weights != "" || w.OptimizerImpl != "" || w.GradientsHeld() ||
		w.Optimizer == model.Adafactor || w.Optimizer == model.Lion || w.Optimizer == model.PagedAdamW8bit ||
		w.GradAccum > 1 || w.ZeroGrad != ""
}

// checkFinetune checks what the workload's fine-tuning settings need of
// the model (prepare calls it): LoRA targets that name modules of the
// model and a rank that fits them, and a model whose layers can be
// quantized.
func (in *inputs) checkFinetune() error {
	if in.w.LoRA() {
		if _, err := model.LoRATargets(in.a, in.w); err != nil {
			return err
		}
	}
	wf, err := model.ParseWeights(in.w.Weights)
	if err != nil {
		return err
	}
	if wf.Quantized() {
		if _, err := model.LinearModules(in.a); err != nil {
			return &model.FieldError{Field: "weights", Value: in.w.Weights, Reason: "the " + in.a.Family + " family's layers cannot be quantized here: mixture-of-experts layers are not modelled"}
		}
	}
	if (in.w.LoRA() || wf.Name != "") && (in.w.TP > 1 || in.par.active) {
		return &model.FieldError{Field: "lora_rank", Value: in.w.LoRARank, Reason: "LoRA and weight formats are modelled on one GPU or with ZeRO data parallelism only; drop tp, pp, cp, offload and engine"}
	}
	return nil
}

// finetuneCoefs adjusts the state coefficients of coefsFor for the
// optimizers and implementations of this file: per parameter, Lion keeps
// one momentum, paged 8-bit AdamW two 8-bit states (their blocks' fp32
// absmax are 4 bytes per 2048), Adafactor its factored second moments
// (adafactorFrac of a state per parameter, in the parameters' dtype). The
// temporaries: foreach (torch's default on CUDA) one of the gradients'
// size for AdamW and Adafactor; fused none; for-loop one of the largest
// parameter (optimizerTemporaries); Lion and the 8-bit optimizers none.
func (in *inputs) finetuneCoefs(c stateCoefs) stateCoefs {
	elem := 4.0
	if in.w.Precision == model.BF16Pure {
		elem = 2
	}
	switch in.w.Optimizer {
	case model.Lion:
		c.optim, c.temp = elem, 0
	case model.PagedAdamW8bit:
		c.optim, c.temp = 2+2*4.0/2048, 0
	case model.Adafactor:
		c.optim, c.temp = elem*in.adafactorFrac(), elem
	case model.Adam8bit:
		c.temp = 0
	}
	if in.w.OptimizerImpl == model.ImplFused || in.w.OptimizerImpl == model.ImplForLoop {
		c.temp = 0
	}
	return c
}

// adafactorFrac is Adafactor's state elements per parameter:
// torch.optim.Adafactor keeps a row and a column vector (R + C elements)
// for each matrix of R x C and a full variance for the vectors (biases,
// norms), plus a 0-dim fp32 step per tensor (counted as one element).
func (in *inputs) adafactorFrac() float64 {
	f, t := adafactorElems(&in.a)
	n := float64(in.n)
	if n == 0 {
		return 1
	}
	return (f + t) / n
}

// adafactorElems returns Adafactor's state elements for a and the number
// of parameter tensors (for the step counters).
func adafactorElems(a *model.Arch) (elems, tensors float64) {
	n, err := model.TotalParams(*a)
	if err != nil {
		return 0, 0
	}
	H, V := float64(a.Hidden), float64(a.Vocab)
	ew := H
	if a.EmbedProj > 0 {
		ew = float64(a.EmbedProj)
	}
	var mat, red float64 // matrix parameters, and their R + C
	addMat := func(r, c float64) { mat += r * c; red += r + c; tensors++ }
	addMat(V, ew)
	if a.MaxPositions > 0 {
		addMat(float64(a.MaxPositions+a.PositionOffset), H)
	}
	if a.TokenTypes > 0 {
		addMat(float64(a.TokenTypes), H)
	}
	if !a.NoHead && !a.TiedHead {
		addMat(H, V)
	}
	ms, err := model.LinearModules(*a)
	if err == nil {
		L := float64(a.Layers)
		for _, m := range ms {
			mat += L * float64(m.In) * float64(m.Out)
			red += L * float64(m.In+m.Out)
		}
		tensors += L * float64(len(ms))
	}
	norm := 1.0
	if a.Norm == model.LayerNorm {
		norm = 2
	}
	L := float64(a.Layers)
	vec := float64(a.NormsPerLayer) * norm
	if a.QKVBias {
		vec += 3
	}
	if a.OutBias {
		vec++
	}
	if a.MLPBias {
		vec += 2
	}
	if a.QKNorm != "" {
		vec += 2 * norm
	}
	tensors += L * vec
	if a.FinalNorm {
		tensors += norm
	}
	if a.EmbedNorm {
		tensors += norm
	}
	return float64(n) - mat + red, tensors
}

// gradPhase is the phase of the gradients: the whole step when they are
// held through the forward pass (gradient accumulation, zero_grad to
// zeros), else phase.
func (in *inputs) gradPhase(phase string) string {
	if in.w.GradientsHeld() {
		return ""
	}
	return phase
}

// loraStateTerms appends the model states of a LoRA (or quantized)
// workload: the frozen base weights (quantized linear layers apart), the
// adapters in fp32 (PEFT's default: autocast_adapter_dtype upcasts 16-bit
// adapters), their gradients and optimizer states (a classifier head's in
// the base's dtype), and the dequantization buffer. No gradients or states
// for the frozen weights. It returns the parameters whose states it
// counted.
func (in *inputs) loraStateTerms(e *Estimate, c stateCoefs, gradPhase string) float64 {
	op, err := in.loraStates(e, c, gradPhase)
	if err != nil { // checked by checkFinetune already
		panic(fmt.Sprintf("lora states: %v (a bug: prepare checks it)", err))
	}
	return op
}

func (in *inputs) loraStates(e *Estimate, c stateCoefs, gradPhase string) (float64, error) {
	a, w := &in.a, &in.w
	wf, err := model.ParseWeights(w.Weights)
	if err != nil {
		return 0, err
	}
	base := float64(in.n)
	baseBytes := c.weight
	if !wf.Quantized() && wf.Name != "" {
		baseBytes = wf.BytesPerParam(1, 1)
	}
	if wf.Quantized() {
		ms, err := model.LinearModules(*a)
		if err != nil {
			return 0, err
		}
		var qp, qb, largest float64
		for _, m := range ms {
			p := float64(m.In) * float64(m.Out)
			qp += p
			qb += p * wf.BytesPerParam(float64(m.In), float64(m.Out))
			largest = max(largest, p)
		}
		L := in.L
		base -= qp * L
		note := noteQuantDerived
		if wf.Name != model.WeightsInt4 {
			note = "storage measured: bitsandbytes 0.50's CPU backend (scenarios TestQuantStorageTruth)"
		}
		e.add("weights_quantized", GroupWeights, qp*L, "params", qb/qp).Note =
			fmt.Sprintf("the layers' linear weights in %s with their scales; %s", w.Weights, note)
		dq := c.act
		e.addPeak("dequant_buffer", GroupWeights, largest, "params", dq, PhaseForward).Note =
			"the 16-bit copy of the largest linear weight dequantized for the layer being run; " + noteQuantDerived
	}
	e.add("weights", GroupWeights, base, "params", baseBytes).Note = "frozen base weights (embeddings, norms, head and biases stay unquantized)"
	var adapters float64
	if w.LoRA() {
		n, err := model.LoRAParams(*a, *w)
		if err != nil {
			return 0, err
		}
		adapters = float64(n)
		e.add("lora_weights", GroupWeights, adapters, "params", 4).Note = "LoRA adapters A (r x in) and B (out x r), fp32"
	}
	if w.Inference {
		return 0, nil
	}
	head := float64(model.HeadTrainable(*a))
	ca := in.finetuneCoefsFor(model.FP32)
	op := adapters + head
	if z := w.ZeRO; z >= 1 {
		op /= in.dp
	}
	g := e.add("gradients", GroupGradients, adapters, "params", 4)
	g.Phase, g.Note = gradPhase, "the adapters' gradients only: the base is frozen"
	if head > 0 {
		hg := e.add("head_gradients", GroupGradients, head, "params", c.grad)
		hg.Phase = gradPhase
	}
	if op > 0 {
		per := (adapters*ca.optim + head*c.optim) / (adapters + head)
		e.add("optimizer_states", GroupOptimizer, op, "params", per).Note = "the trainable parameters' only"
		if w.Optimizer == model.AdamW || w.Optimizer == model.Adafactor {
			// torch.optim's 0-dim fp32 step per parameter tensor: A and B
			// per adapted module and layer, the classifier's weight and bias.
			ts, _ := model.LoRATargets(*a, *w)
			n := 2 * float64(len(ts)) * in.L
			if head > 0 {
				n += float64(model.HeadTensors(*a))
			}
			e.add("optimizer_step_counters", GroupOptimizer, n, "tensors", 4).Note = "torch.optim's step, a 0-dim fp32 tensor per trainable tensor"
		}
	}
	return op, nil
}

// finetuneCoefsFor is finetuneCoefs for parameters of precision p.
func (in *inputs) finetuneCoefsFor(p model.Precision) stateCoefs {
	saved := in.w.Precision
	in.w.Precision = p
	c := in.finetuneCoefs(coefsFor(p, in.w.Optimizer))
	in.w.Precision = saved
	return c
}

// optimizerTemporaries adds the optimizer step's temporaries: foreach's
// of the states' size (c.temp per parameter of op), or for-loop's one of
// the largest parameter.
func (in *inputs) optimizerTemporaries(e *Estimate, c stateCoefs, op float64) {
	if in.w.LoRA() {
		c = in.finetuneCoefsFor(model.FP32) // the adapters are fp32
	}
	if in.w.OptimizerImpl == model.ImplForLoop && in.w.Optimizer != model.SGD {
		elem := 4.0
		if in.w.Precision == model.BF16Pure && !in.w.LoRA() {
			elem = 2
		}
		big := in.largestModuleParams()
		if in.w.LoRA() {
			big = 0
			if ms, err := model.LoRATargets(in.a, in.w); err == nil {
				for _, m := range ms {
					big = max(big, float64(in.w.LoRARank*max(m.In, m.Out)))
				}
			}
		}
		e.addPeak("optimizer_step_temporaries", GroupOptimizer, big, "params", elem, PhaseOptimizer).Note =
			"for-loop: one temporary of the largest parameter at a time"
		return
	}
	if c.temp > 0 {
		note := "foreach AdamW: sqrt(exp_avg_sq) for every parameter at once"
		if in.w.Optimizer == model.Adafactor {
			note = "foreach Adafactor: one tensor of the gradients' size (derived, not yet measured)"
		}
		e.addPeak("optimizer_step_temporaries", GroupOptimizer, op, "params", c.temp, PhaseOptimizer).Note = note
	}
}

// finetuneNotes adds the notes of a LoRA or weight-format estimate.
func (in *inputs) finetuneNotes(e *Estimate) {
	var ns []string
	if in.w.LoRA() {
		ns = append(ns, "lora: base frozen (no gradients, no optimizer states, no head gradient); fp32 adapters with fp32 gradients and states; saved activations without the frozen weights' inputs, with each adapter's input copy and rank-r intermediate (measured on the CPU against PEFT: TestFinetuneTruth)")
	}
	if wf, _ := model.ParseWeights(in.w.Weights); wf.Quantized() {
		ns = append(ns, "quantized weights: the layers' linear weights only; the dequantization buffer is derived, not measured (CUDA-only kernels)")
	}
	if len(ns) > 0 {
		e.Notes = append(e.Notes, ns...)
	}
}
