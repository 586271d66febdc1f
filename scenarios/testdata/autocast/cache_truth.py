"""Measure autocast's cache of weight copies under gradient checkpointing.

Reads a JSON list of cases on stdin, each {"hf_config", "batch", "seq",
"reentrant", "lora_rank"}: the causal LM of a config.json's model_type (as
scenarios/hfconfig.go writes it) in train mode with transformers' gradient
checkpointing (use_reentrant as given), LoRA on every linear layer of the
decoder layers through peft when lora_rank > 0, run forward with labels
under torch.autocast("cpu", bfloat16). Writes one JSON object per case:
layer_weight_cache_bytes, the bytes of the 16-bit casts of the decoder
layers' 2-D parameters (their linear weights) still alive after the loss,
inside the autocast region; layer_bias_cache_bytes the same for their
1-D parameters (biases); after_exit_bytes what is left of both once the
region exits (autocast clears its cache there).
"""
import gc
import json
import sys
import weakref

import torch
import transformers
from torch.utils._python_dispatch import TorchDispatchMode


class Casts(TorchDispatchMode):
    """Tracks the live outputs of _to_copy whose input is one of params."""

    def __init__(self, params):
        super().__init__()
        self.params = params  # id -> ndim
        self.live = {}  # storage key -> (nbytes, ndim)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten._to_copy.default and id(args[0]) in self.params:
            st = out.untyped_storage()
            k = id(st)
            self.live[k] = (st.nbytes(), self.params[id(args[0])])
            weakref.finalize(st, self.live.pop, k, None)
        return out

    def bytes(self, ndim2):
        return sum(n for n, d in self.live.values() if (d >= 2) == ndim2)


def run(c):
    torch.manual_seed(0)
    cfg = dict(c["hf_config"], pad_token_id=0, eos_token_id=None, bos_token_id=None, use_cache=False)
    cfg = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": c["reentrant"]})
    if c.get("lora_rank"):
        import peft
        names = sorted({n.split(".")[-1] for n, mod in m.named_modules()
                        if isinstance(mod, torch.nn.Linear) and ".layers." in n})  # the causal LMs with LoRA here are Llamas
        m = peft.get_peft_model(m, peft.LoraConfig(r=c["lora_rank"], lora_alpha=16, lora_dropout=0.0,
                                                   target_modules=names))
        m.enable_input_require_grads()
    m.train()
    layers = [mod for n, mod in m.named_modules()  # Llama's model.layers, GPT-2's transformer.h
              if n.rsplit(".", 1)[-1] in ("layers", "h") and isinstance(mod, torch.nn.ModuleList)]
    params = {id(p): p.ndim for ml in layers for p in ml.parameters()}
    ids = torch.randint(1, cfg.vocab_size, (c["batch"], c["seq"]))
    mode = Casts(params)
    with mode:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(input_ids=ids, labels=ids).loss
            gc.collect()
            w, b = mode.bytes(True), mode.bytes(False)
        gc.collect()
        after = mode.bytes(True) + mode.bytes(False)
        loss.backward()
    return {"layer_weight_cache_bytes": w, "layer_bias_cache_bytes": b, "after_exit_bytes": after}


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
