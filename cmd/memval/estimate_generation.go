package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/memval/memval/analytic/model"
)

// genOptions are the generation flags of memval estimate (model.Workload's
// Prompt, Generate, KVCache, PromptLengths and Logits; inference only).
type genOptions struct {
	prompt, generate int
	kvCache          string
	promptLengths    string
	logits           string
}

func (g *genOptions) bind(f *pflag.FlagSet) {
	f.IntVar(&g.prompt, "prompt", 0, "generation (with --inference): prompt tokens (default: --seq, or the longest of --prompt-lengths)")
	f.IntVar(&g.generate, "generate", 0, "generation (with --inference): tokens generated after the prompt (transformers' max_new_tokens)")
	f.StringVar(&g.kvCache, "kv-cache", "", "generation: the KV cache, "+orList(model.KVCaches())+
		" (default dynamic, as transformers' generate(); static: StaticCache at prompt+generate-1 tokens; sliding:W: a W-token window; quantized:BITS: QuantizedCache)")
	f.StringVar(&g.promptLengths, "prompt-lengths", "", "generation: a ragged batch's prompt lengths, e.g. 512,300,17, padded to the longest (sets --batch when it is not given)")
	f.StringVar(&g.logits, "logits", "", "generation: the prefill's logits, "+orList(model.LogitsChoices())+" (default last: generate()'s logits_to_keep=1)")
}

// into sets w's generation fields from the flags given, so that an
// inference estimate without them is as before; with --prompt-lengths and
// no --batch the batch is the number of prompts.
func (g *genOptions) into(w *model.Workload, changed func(string) bool) error {
	w.Prompt, w.Generate, w.KVCache, w.PromptLengths, w.Logits = g.prompt, g.generate, g.kvCache, g.promptLengths, g.logits
	if changed("kv-cache") && g.kvCache == "" {
		w.KVCache = model.DynamicCache
	}
	if g.promptLengths != "" && !changed("batch") {
		ls, err := model.ParsePromptLengths(g.promptLengths)
		if err != nil {
			return usagef("--prompt-lengths: %v", err)
		}
		w.Batch = len(ls)
	}
	return nil
}

// generationHeader is the estimate header's part for a generation: ""
// without one.
func generationHeader(w model.Workload) string {
	if !w.Generating() {
		return ""
	}
	kv, logits := w.KVCache, w.Logits
	if kv == "" {
		kv = model.DynamicCache
	}
	if logits == "" {
		logits = model.LastLogits
	}
	s := fmt.Sprintf(", prompt %d, generate %d, %s kv cache, logits %s", w.GenPrompt(), w.Generate, kv, logits)
	if w.PromptLengths != "" {
		s += ", prompts " + w.PromptLengths + " padded"
	}
	return s
}
