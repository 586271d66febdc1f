"""Record every storage a training step allocates and frees, in order.

Reads a JSON list of cases on stdin, each {"hf_config", "head", "batch",
"seq", "steps", "optimizer_impl", "zero_grad"}: the class of a config.json's
model_type (as scenarios/hfconfig.go writes it; head "seq-cls" is
*ForSequenceClassification, else *ForCausalLM) with eager attention, built
and trained under FakeTensorMode (the sizes are real, nothing is computed),
fp32, for `steps` steps of: forward with labels, backward, AdamW
(optimizer_impl "for-loop": one parameter at a time, as transformers' own
AdamW stepped; "foreach": torch.optim.AdamW(foreach=True)), zero_grad
(zero_grad "zeros": kept and zeroed; "none": set to None). Dropout saves a
1-byte mask as it does on CUDA (torch.native_dropout; on the CPU
F.dropout keeps a noise tensor of the input's dtype instead).

Writes one JSON list per case of events: ["a", key, bytes] when a storage
is created by an operator (its nbytes), ["f", key] when it is freed, and
["p", phase] at "loaded" and at the start of each step's "forward",
"backward" (the loss computed), "optimizer" and "zero_grad".
"""
import gc
import json
import sys
import weakref

import torch
import transformers
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode


class Storages(TorchDispatchMode):
    def __init__(self, events):
        super().__init__()
        self.events, self.live, self.next = events, set(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            if id(st) in self.live or st.nbytes() == 0:
                continue
            k, self.next = self.next, self.next + 1
            self.live.add(id(st))
            self.events.append(["a", k, st.nbytes()])
            weakref.finalize(st, self.freed, id(st), k)
        return out

    def freed(self, sid, k):
        self.live.discard(sid)
        self.events.append(["f", k])


def cuda_dropout(x, p=0.5, training=True, inplace=False):
    if not training or p == 0:
        return x
    return torch.native_dropout(x, p, True)[0]


def run(c):
    events = []
    cfg = dict(c["hf_config"], pad_token_id=0)
    cfg = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    cfg._attn_implementation = "eager"
    auto = transformers.AutoModelForSequenceClassification if c["head"] == "seq-cls" else transformers.AutoModelForCausalLM
    with FakeTensorMode(), Storages(events):
        m = auto.from_config(cfg)
        m.train()
        params = list(m.parameters())
        opt = torch.optim.AdamW(params, lr=1e-5, foreach=True) if c["optimizer_impl"] == "foreach" else None
        state = {}
        events.append(["p", "loaded"])
        for _ in range(c["steps"]):
            events.append(["p", "forward"])
            ids = torch.randint(1, cfg.vocab_size, (c["batch"], c["seq"]))
            labels = torch.zeros(c["batch"], dtype=torch.long) if c["head"] == "seq-cls" else ids
            out = m(input_ids=ids, labels=labels)
            events.append(["p", "backward"])
            out.loss.backward()
            del out, labels, ids
            events.append(["p", "optimizer"])
            if opt is not None:
                opt.step()
            else:
                with torch.no_grad():
                    for p in params:  # transformers' AdamW before 4.x's torch.optim default
                        if p not in state:
                            state[p] = (torch.zeros_like(p), torch.zeros_like(p))
                        ea, eas = state[p]
                        ea.mul_(0.9).add_(p.grad, alpha=0.1)
                        eas.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                        denom = eas.sqrt().add_(1e-8)
                        p.addcdiv_(ea, denom, value=-1e-5)
                        del denom
            events.append(["p", "zero_grad"])
            for p in params:
                if c["zero_grad"] == "zeros":
                    p.grad.zero_()
                else:
                    p.grad = None
            gc.collect()
    return events


def main():
    torch.nn.functional.dropout = cuda_dropout
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
