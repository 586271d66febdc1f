"""Measure what transformers' generate() keeps for a tiny model on the CPU.

Reads a JSON list of cases on stdin, each {"family", "layers", "hidden",
"heads", "kv_heads", "ffn", "vocab", "dtype", "batch", "prompt_lengths",
"generate", "cache", "window"} (a Llama, or a Mistral with a window) or
{"hf_config", "dtype", "prompt_lengths", "generate", "cache"} (the class
of a config.json's model_type, sdpa where it has it); writes one JSON object per case:
cache_bytes (the storage the returned past_key_values' K and V tensors hold,
counted once per storage), cache_tokens (the length of layer 0's keys) and
prefill_logits (the elements of the LM head's output at the first forward).
"""
import json
import sys

import torch
import transformers


def build(c):
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[c["dtype"]]
    if c.get("hf_config"):  # a config.json as scenarios/hfconfig.go writes it
        cfg = dict(c["hf_config"], pad_token_id=0, eos_token_id=None, bos_token_id=None, use_cache=True)
        cfg = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        m = transformers.AutoModelForCausalLM.from_config(cfg)  # sdpa where the class has it, else eager
        return m.to(dt).eval()
    kw = dict(vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=c["ffn"],
              num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
              num_key_value_heads=c["kv_heads"], max_position_embeddings=256,
              pad_token_id=0, eos_token_id=None, bos_token_id=None)
    if c.get("window"):
        cfg = transformers.MistralConfig(sliding_window=c["window"], **kw)
        m = transformers.MistralForCausalLM(cfg)
    else:
        m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**kw))
    m.config._attn_implementation = "sdpa"
    return m.to(dt).eval()


def run(c):
    torch.manual_seed(0)
    m = build(c)
    lens = c["prompt_lengths"]
    P = max(lens)
    ids = torch.randint(1, m.config.vocab_size, (len(lens), P))
    mask = torch.ones_like(ids)
    for i, n in enumerate(lens):  # left padding, as generate() wants for decoder-only models
        ids[i, : P - n] = 0
        mask[i, : P - n] = 0
    seen = []
    h = m.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(out.numel()))
    kw = dict(max_new_tokens=c["generate"], min_new_tokens=c["generate"], do_sample=False,
              return_dict_in_generate=True, attention_mask=mask)
    if c["cache"] == "static":
        kw["cache_implementation"] = "static"
    with torch.no_grad():
        out = m.generate(ids, **kw)
    h.remove()
    pkv = out.past_key_values
    storages = {}
    for layer in pkv.layers:
        for t in (layer.keys, layer.values):
            s = t.untyped_storage()
            storages[s.data_ptr()] = s.nbytes()
    return {"cache_bytes": sum(storages.values()), "cache_tokens": pkv.layers[0].keys.shape[-2],
            "prefill_logits": seen[0]}


cases = json.load(sys.stdin)
json.dump([run(c) for c in cases], sys.stdout)
