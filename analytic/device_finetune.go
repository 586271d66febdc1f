package analytic

// finetuneBlocks allocates the model states of memory_finetune.go that
// the step holds throughout: the quantized linear weights, the LoRA
// adapters and, when gradients are held through the forward pass
// (gradient accumulation, zero_grad to zeros), the gradients, one block
// per parameter tensor's share.
func (p *player) finetuneBlocks(e *Estimate, in *inputs) {
	if in.w.Inference {
		return // the inference pass allocates every term but the weights
	}
	for _, name := range []string{"weights_quantized", "lora_weights"} {
		if b := stateBytes(e, name); b > 0 {
			p.malloc(uint64(b))
		}
	}
	if in.w.GradientsHeld() {
		if gb := stateBytes(e, "gradients") + stateBytes(e, "head_gradients"); gb > 0 {
			for _, f := range p.params {
				p.malloc(uint64(gb * f))
			}
		}
	}
}
