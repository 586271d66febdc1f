#!/usr/bin/env python3
"""memval scenario: train a transformer on random tokens and report memory.

Usage:
    python3 train.py --job job.json     one job (written by scenarios/trainjob.go)
    python3 train.py --jobs jobs.json   a JSON list of jobs, run one after the
                                        other in this process (tests use it)

A job is {"arch": <model.Arch JSON>, "layer": <model.Layer JSON>,
"workload": <model.Workload JSON>, "steps": N, "warmup": W, "seed": S,
"device": "auto|cuda|cpu", "measure_saved": true, "params_only": false,
"impl": "auto|transformers|hand", "hf_config": {...}, "config_path": "...",
"optim_impl": "default|foreach|fused|for-loop", "list_saved": false}.

Two ways to build the model (job "impl"):
  - transformers: the model class users train with, from_config of the
    Auto class for the task (AutoModelForCausalLM) on the job's "hf_config"
    (a config.json dict written from the arch by scenarios/hfconfig.go) or
    the config.json at "config_path"; attention workload.attn_impl (eager,
    sdpa, flash-attention-2), else eager (math) or sdpa (flash); the
    library's own activation checkpointing (re-entrant, as the hand-built
    path; layers:N as every_n_layers; ops:torchtitan non-reentrant with
    torchtitan's per-op policy, see SAC); the loss the model computes from labels.
  - hand: the model written out below from the family table's layer (the
    fallback for hosts without transformers, e.g. Debian's torch 1.13).
  - auto (the default): transformers when it is importable and can run the
    job (it has no attention-only checkpointing), else hand.

The model is built from the arch's fields and the layer, memval's family
table's description of what one layer computes: its ops in order (norm, qkv,
rotary, attention, out_proj, dropout, residual, mlp) and the flags that say
how (GPT-2's Conv1D as addmm and fused c_attn, a causal mask from a bool
buffer, gelu_new written out as HF's NewGELUActivation; or Llama's q/k/v/o
projections, RMSNorm in fp32, rotary positions, repeat_kv, an additive mask,
fp32 softmax and logits). Nothing here switches on a family's name: a job
without a layer (a family the table describes only approximately) and arch
fields the script does not build are refused with exit code 2.

Reports:
  - stdout: one JSON line per job: {"job", "params", "trainable",
    "saved_bytes": [per step], "attention", "device", "torch", "impl",
    "transformers", "optimizer_state_bytes", and with list_saved (or
    MEMVAL_SAVED_DEBUG=1) "saved_tensors": [[op, shape, dtype, bytes], ...]
    of the first step, op naming the autograd node that saved it}; a human
    line "params: N" goes to stderr.
  - the side channel (file named by MEMVAL_EVENTS; none when unset): JSON
    lines as profiler/events.go describes (info, phase, saved, error).

Saved-for-backward bytes are measured with saved_tensors_hooks during each
forward (and the loss): every saved tensor's storage counted once (by data
pointer), leaving out storages of parameters and buffers (weights, not
activations); autocast's 16-bit weight copies are not parameters and count.

Exit codes: 0 ok, 2 bad job or missing PyTorch, 3 out of memory, 1 other.
"""

import argparse
import json
import math
import os
import sys
import time

TORCH_MISSING = ("memval: scenarios/train.py needs PyTorch: install python3-torch "
                 "or set MEMVAL_PYTHON to an interpreter that has it")


class JobError(Exception):
    """A job the script cannot run as asked (exit code 2)."""


class Events:
    """Appends side-channel events to the MEMVAL_EVENTS file (if set)."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None

    def emit(self, kind, **fields):
        if self.f is None:
            return
        ev = {"v": 1, "t": time.monotonic_ns(), "kind": kind}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.f.write(json.dumps(ev, separators=(",", ":")) + "\n")
        self.f.flush()

    def close(self):
        if self.f is not None:
            self.f.close()


def build_classes(torch):
    """Defines the model classes once torch is imported; returns LM."""
    nn = torch.nn
    F = torch.nn.functional

    class Conv1D(nn.Module):
        """HF's Conv1D: y = x @ W + b with W of shape (in, out), via addmm."""

        def __init__(self, nin, nout, bias, device):
            super().__init__()
            self.nout = nout
            self.weight = nn.Parameter(torch.empty(nin, nout, device=device))
            self.bias = nn.Parameter(torch.zeros(nout, device=device)) if bias else None
            nn.init.normal_(self.weight, std=0.02)

        def forward(self, x):
            size_out = x.size()[:-1] + (self.nout,)
            x2 = x.view(-1, x.size(-1))
            if self.bias is not None:
                y = torch.addmm(self.bias, x2, self.weight)
            else:
                y = torch.mm(x2, self.weight)
            return y.view(size_out)

    def gelu_new(x):
        # HF NewGELUActivation, written out as HF does (eager autograd saves
        # the pieces of this expression).
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def activation(name):
        name = name or "gelu_new"
        if name == "gelu_new":
            return gelu_new
        if name in ("gelu_pytorch_tanh",):
            return lambda x: F.gelu(x, approximate="tanh")
        if name == "gelu":
            return F.gelu
        if name == "relu":
            return F.relu
        if name in ("silu", "swish"):
            return F.silu
        raise JobError("arch.activation %r is not supported by train.py (use gelu_new, gelu, "
                       "gelu_pytorch_tanh, relu or silu)" % name)

    def sdpa_available():
        return hasattr(F, "scaled_dot_product_attention")

    class RMSNorm(nn.Module):
        """LlamaRMSNorm: computed in fp32, cast back to the input dtype."""

        def __init__(self, H, device):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(H, device=device))
            self.eps = 1e-6

        def forward(self, x):
            dt = x.dtype
            x = x.to(torch.float32)
            var = x.pow(2).mean(-1, keepdim=True)
            x = x * torch.rsqrt(var + self.eps)
            return self.weight * x.to(dt)

    def make_norm(a, layer, device):
        if a.get("norm") == "rmsnorm":
            if not layer.get("fp32_norm"):
                raise JobError("arch.norm rmsnorm: train.py writes RMSNorm out in fp32 only (layer.fp32_norm)")
            return RMSNorm(a["hidden"], device)
        if a.get("norm") == "layernorm":
            return nn.LayerNorm(a["hidden"], eps=1e-5, device=device)
        raise JobError("arch.norm %r: use layernorm or rmsnorm" % a.get("norm"))

    def make_linear(layer, nin, nout, bias, device):
        if layer.get("conv1d"):
            return Conv1D(nin, nout, bias, device)
        return nn.Linear(nin, nout, bias=bias, device=device)

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    class Attention(nn.Module):
        """The q, k, v projections, the attention core and the output
        projection, as the layer's flags say (GPT-2's fused Conv1D c_attn or
        Llama's q/k/v/o_proj; torch.where or an additive causal mask; softmax
        in the scores' dtype or in fp32; a tensor or a Python float scale)."""

        def __init__(self, a, w, layer, device):
            super().__init__()
            H, self.h = a["hidden"], a["heads"]
            self.kv = a.get("kv_heads") or self.h
            self.hd = a.get("head_dim") or H // self.h
            self.layer = layer
            qb, ob = a.get("qkv_bias", False), a.get("out_bias", False)
            q, kv = self.h * self.hd, self.kv * self.hd
            if layer.get("split_qkv"):
                self.q_proj = make_linear(layer, H, q, qb, device)
                self.k_proj = make_linear(layer, H, kv, qb, device)
                self.v_proj = make_linear(layer, H, kv, qb, device)
            else:
                if q != H or kv != q:
                    raise JobError("arch: a fused c_attn needs heads*head_dim == hidden and kv_heads == heads "
                                   "(got %d*%d, hidden %d, kv_heads %d)" % (self.h, self.hd, H, self.kv))
                self.c_attn = make_linear(layer, H, 3 * H, qb, device)
            self.o_proj = make_linear(layer, q, H, ob, device)
            self.p = w["dropout"]
            self.attn_dropout = nn.Dropout(self.p)
            self.flash = w["attention"] == "flash" and sdpa_available()
            if not layer.get("additive_mask"):
                n = max(a.get("max_positions") or 0, w["seq"])
                self.register_buffer("bias", torch.tril(torch.ones((n, n), dtype=torch.bool, device=device))
                                     .view(1, 1, n, n), persistent=False)

        def heads(self, t, n):
            B, S, _ = t.shape
            return t.view(B, S, n, self.hd).transpose(1, 2)

        def qkv(self, x):
            if self.layer.get("split_qkv"):
                return (self.heads(self.q_proj(x), self.h), self.heads(self.k_proj(x), self.kv),
                        self.heads(self.v_proj(x), self.kv))
            q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
            return self.heads(q, self.h), self.heads(k, self.kv), self.heads(v, self.kv)

        def core(self, q, k, v):
            S = q.size(-2)
            w = torch.matmul(q, k.transpose(-1, -2))
            if self.layer.get("scale_float64"):
                w = w / math.sqrt(self.hd)
            else:
                w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype, device=w.device)
            if self.layer.get("additive_mask"):
                w = w + torch.full((S, S), torch.finfo(w.dtype).min, device=w.device, dtype=w.dtype).triu(1)
            else:
                mv = torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype, device=w.device)
                w = torch.where(self.bias[:, :, :S, :S], w.to(w.dtype), mv)
            if self.layer.get("softmax_fp32"):
                w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
            else:
                w = F.softmax(w, dim=-1)
                w = w.type(v.dtype)
            w = self.attn_dropout(w)
            return torch.matmul(w, v)

        def attend(self, q, k, v, selective):
            B, _, S, _ = q.shape
            if self.layer.get("repeat_kv") and self.kv != self.h:
                r = self.h // self.kv
                k = k[:, :, None].expand(B, self.kv, r, S, self.hd).reshape(B, self.h, S, self.hd)
                v = v[:, :, None].expand(B, self.kv, r, S, self.hd).reshape(B, self.h, S, self.hd)
            if self.flash:
                o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                                   is_causal=True)
            elif selective:
                o = torch.utils.checkpoint.checkpoint(self.core, q, k, v, use_reentrant=True)
            else:
                o = self.core(q, k, v)
            return o.transpose(1, 2).contiguous().reshape(B, S, self.h * self.hd)

    class MLP(nn.Module):
        """GPT-2's c_fc, activation, c_proj or a gated gate/up/down MLP."""

        def __init__(self, a, layer, device, ffn=None):
            super().__init__()
            H, b = a["hidden"], a.get("mlp_bias", False)
            ff = ffn or a.get("ffn") or 4 * H
            self.gated = a.get("gated_mlp", False)
            if self.gated:
                self.gate_proj = make_linear(layer, H, ff, b, device)
            self.up_proj = make_linear(layer, H, ff, b, device)
            self.down_proj = make_linear(layer, ff, H, b, device)
            self.act = activation(a.get("activation") or ("silu" if self.gated else "gelu_new"))

        def forward(self, x):
            if self.gated:
                return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
            return self.down_proj(self.act(self.up_proj(x)))

    class GroupedMM(torch.autograd.Function):
        """x @ w[e] for the rows of each expert e (offs: the cumulative row
        counts), saving what torch's grouped_mm saves (x, w, offs), for a
        torch without F.grouped_mm."""

        @staticmethod
        def forward(ctx, x, w, offs):
            out = x.new_zeros(x.size(0), w.size(2))
            start = 0
            for e, end in enumerate(offs.tolist()):
                if end > start:
                    out[start:end] = x[start:end] @ w[e]
                start = end
            ctx.save_for_backward(x, w, offs)
            return out

        @staticmethod
        def backward(ctx, g):
            x, w, offs = ctx.saved_tensors
            gx, gw = torch.zeros_like(x), torch.zeros_like(w)
            start = 0
            for e, end in enumerate(offs.tolist()):
                if end > start:
                    gx[start:end] = g[start:end] @ w[e].T
                    gw[e] = x[start:end].T @ g[start:end]
                start = end
            return gx, gw, None

    def grouped_mm(x, w, offs):
        x = x.to(w.dtype)  # grouped_mm is on no autocast list: the experts run in the weights' dtype
        fn = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)
        if fn is not None and (x.device.type != "cpu" or hasattr(F, "grouped_mm")):
            return fn(x, w, offs=offs)
        return GroupedMM.apply(x, w, offs)

    class MoE(nn.Module):
        """The sparse block as transformers 5.x's MixtralSparseMoeBlock and
        Qwen2MoeSparseMoeBlock run it with their default grouped experts: a
        router and its softmax, top-k (renormalized with norm_topk_prob),
        the k*B*S rows sorted by expert and gathered, grouped gate|up and
        down matmuls, the rows weighted, unsorted and summed per token, and
        a shared gated MLP with its sigmoid gate where the arch has one."""

        def __init__(self, a, layer, device):
            super().__init__()
            H, E = a["hidden"], a["experts"]
            F_ = a.get("ffn") or 4 * H
            self.E, self.k, self.H = E, a.get("experts_per_token") or 2, H
            self.fp32 = layer.get("router_fp32", False)
            self.norm_topk = a.get("norm_topk_prob", False)
            if a.get("mlp_bias"):
                raise JobError("arch.mlp_bias: train.py builds experts without biases")
            self.router = nn.Linear(H, E, bias=False, device=device)
            self.gate_up = nn.Parameter(torch.empty(E, 2 * F_, H, device=device))
            self.down = nn.Parameter(torch.empty(E, H, F_, device=device))
            nn.init.normal_(self.gate_up, std=0.02)
            nn.init.normal_(self.down, std=0.02)
            self.act = activation(a.get("activation") or "silu")
            self.shared = MLP(a, layer, device, a["shared_ffn"]) if a.get("shared_ffn") else None
            self.shared_gate = None
            if a.get("shared_expert_gate"):
                if self.shared is None:
                    raise JobError("arch.shared_expert_gate needs arch.shared_ffn")
                self.shared_gate = nn.Linear(H, 1, bias=False, device=device)

        def forward(self, x):
            B, S, H = x.shape
            h = x.view(-1, H)
            shared = self.shared(h) if self.shared is not None else None
            logits = self.router(h)
            if self.fp32:
                probs = F.softmax(logits.float(), dim=-1)
            else:
                probs = F.softmax(logits, dtype=torch.float32, dim=-1)
            top, idx = torch.topk(probs, self.k, dim=-1)
            if self.norm_topk:
                top /= top.sum(dim=-1, keepdim=True)
            if not self.fp32:
                top = top.to(logits.dtype)
            ids_g, perm = torch.sort(idx.reshape(-1))
            xg = h[perm // self.k]
            wg = top.reshape(-1)[perm]
            counts = torch.histc(ids_g.float(), bins=self.E, min=0, max=self.E - 1)
            offs = torch.cumsum(counts, dim=0, dtype=torch.int32)
            out = grouped_mm(xg, self.gate_up.transpose(-2, -1), offs)
            g, u = out.chunk(2, dim=-1)
            out = grouped_mm(self.act(g) * u, self.down.transpose(-2, -1), offs)
            out = out * wg.unsqueeze(-1)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(perm.size(0), device=perm.device)
            out = out[inv].view(B * S, self.k, H).sum(dim=1).to(h.dtype)
            if self.shared_gate is not None:
                out = out + torch.sigmoid(self.shared_gate(h)) * shared
            elif shared is not None:
                out = out + shared
            return out.view(B, S, H), logits

    def load_balancing_loss(logits, E, k):
        """The auxiliary loss of transformers' load_balancing_loss_func
        (no attention mask): assignment counts times mean probabilities."""
        tokens = torch.zeros(E, dtype=torch.float32, device=logits[0].device)
        probs = torch.zeros(E, dtype=torch.float32, device=logits[0].device)
        rows = 0.0
        for g in logits:
            w = F.softmax(g, dim=-1)
            _, sel = torch.topk(w, k, dim=-1)
            tokens = tokens + torch.histc(sel.reshape(-1).to(torch.float32), bins=E, min=0, max=E)
            probs = probs + w.float().sum(dim=0)
            rows = rows + w.shape[0]
        return torch.sum((tokens / rows) * (probs / rows).unsqueeze(0)) * E

    class Block(nn.Module):
        """One transformer layer, run op by op as the family table's layer
        lists them (job["layer"]["ops"])."""

        def __init__(self, a, w, layer, device):
            super().__init__()
            self.ops = list(layer["ops"])
            unknown = sorted(set(self.ops) - {"norm", "qkv", "rotary", "attention", "out_proj", "dropout",
                                              "residual", "mlp", "moe"})
            if unknown:
                raise JobError("layer.ops: train.py does not know %s" % ", ".join(unknown))
            self.norms = nn.ModuleList([make_norm(a, layer, device) for _ in range(self.ops.count("norm"))])
            self.attn = Attention(a, w, layer, device)
            if "moe" in self.ops:
                if not a.get("experts"):
                    raise JobError("layer.ops has moe but arch.experts is %r" % a.get("experts"))
                self.mlp = MoE(a, layer, device)
            else:
                self.mlp = MLP(a, layer, device)
            self.router_logits = []  # the moe op's logits of the last forward (for the aux loss)
            self.drop = nn.Dropout(w["dropout"])
            self.selective = w["checkpointing"] == "selective"

        def forward(self, x, cos=None, sin=None):
            h, n = x, 0
            for op in self.ops:
                if op == "norm":
                    h, n = self.norms[n](x), n + 1
                elif op == "qkv":
                    q, k, v = self.attn.qkv(h)
                elif op == "rotary":
                    q = (q * cos) + (rotate_half(q) * sin)
                    k = (k * cos) + (rotate_half(k) * sin)
                elif op == "attention":
                    h = self.attn.attend(q, k, v, self.selective)
                elif op == "out_proj":
                    h = self.attn.o_proj(h)
                elif op == "dropout":
                    h = self.drop(h)
                elif op == "residual":
                    x = h + x
                    h = x
                elif op == "mlp":
                    h = self.mlp(h)
                elif op == "moe":
                    h, logits = self.mlp(h)
                    self.router_logits.append(logits)
            return x

    class LM(nn.Module):
        """Token (and learned position) embeddings, the layers, the final
        norm and the LM head with the shifted cross-entropy loss, built from
        the arch's fields and the family's layer."""

        def __init__(self, a, w, layer, device):
            super().__init__()
            H, V = a["hidden"], a["vocab"]
            # Fields this script does not build are refused by name.
            if a.get("experts") and "moe" not in layer["ops"]:
                raise JobError("arch.experts %r: the layer has no moe op" % a["experts"])
            for field in ("token_types", "embed_proj", "pooler", "embed_norm", "no_head", "parallel_block",
                          "qk_norm", "sliding_window", "attn_softcap", "logit_softcap"):
                if a.get(field):
                    raise JobError("arch.%s: train.py does not build it (got %r); use impl transformers"
                                   % (field, a[field]))
            for flag in ("norm_plus_one", "softcap"):
                if layer.get(flag):
                    raise JobError("layer.%s: train.py's hand-built program does not build it; use impl transformers"
                                   % flag)
            norms = layer["ops"].count("norm")
            if (a.get("norms_per_layer") or norms) != norms:
                raise JobError("arch.norms_per_layer %r: the layer has %d norms" % (a.get("norms_per_layer"), norms))
            if w["dropout"] and not layer.get("dropout"):
                raise JobError("workload.dropout: this family's layers have no dropout layers "
                               "besides attention; set dropout 0")
            self.layer = layer
            self.rotary = "rotary" in layer["ops"]
            self.wte = nn.Embedding(V, H, device=device)
            self.offset = a.get("position_offset") or 0
            self.wpe = None
            if a.get("max_positions"):
                self.wpe = nn.Embedding(a["max_positions"] + self.offset, H, device=device)
                if w["seq"] > a["max_positions"]:
                    raise JobError("workload.seq %d exceeds arch.max_positions %d" % (w["seq"], a["max_positions"]))
            self.drop = nn.Dropout(w["dropout"]) if layer.get("dropout") else None
            self.h = nn.ModuleList([Block(a, w, layer, device) for _ in range(a["layers"])])
            self.ln_f = make_norm(a, layer, device) if a.get("final_norm") else None
            self.lm_head = None
            if not a.get("tied_head"):
                self.lm_head = nn.Linear(H, V, bias=a.get("head_bias", False), device=device)
            self.hd = a.get("head_dim") or H // a["heads"]
            self.full = w["checkpointing"] == "full"
            self.aux = a.get("router_aux_loss", False) and "moe" in layer["ops"]
            self.E, self.k = a.get("experts"), a.get("experts_per_token") or 2
            # layers:N, torchtitan's every-Nth-layer mode: layers whose number
            # (from 1) is a multiple of N are checkpointed whole
            n = every_nth(w["checkpointing"])
            self.ckpt_layers = {i for i in range(a["layers"]) if self.full or (n and (i + 1) % n == 0)}
            self.sac = ops_policy(w["checkpointing"])  # ops:POLICY: every layer, non-reentrant
            self.loss = w["loss"]
            self.offload = w["offload_activations"]

        def forward(self, ids):
            S = ids.size(1)
            x = self.wte(ids)
            if self.wpe is not None:
                pos = torch.arange(self.offset, S + self.offset, dtype=torch.long, device=ids.device).unsqueeze(0)
                x = x + self.wpe(pos)
            if self.drop is not None:
                x = self.drop(x)
            cos = sin = None
            if self.rotary:
                inv = 1.0 / (10000.0 ** (torch.arange(0, self.hd, 2, device=ids.device, dtype=torch.float32)
                                         / self.hd))
                t = torch.arange(S, device=ids.device, dtype=torch.float32)
                emb = torch.cat((torch.outer(t, inv),) * 2, dim=-1)
                cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
            for i, blk in enumerate(self.h):
                blk.router_logits = []
                if i in self.ckpt_layers and self.offload:
                    # activation offloading: the checkpointed layer's inputs in
                    # host memory (as transformers' offload=True)
                    with torch.autograd.graph.save_on_cpu(pin_memory=x.is_cuda):
                        x = torch.utils.checkpoint.checkpoint(blk, x, cos, sin, use_reentrant=True)
                elif i in self.ckpt_layers:
                    x = torch.utils.checkpoint.checkpoint(blk, x, cos, sin, use_reentrant=True)
                elif self.sac:
                    x = SAC.checkpoint(torch, blk, x, cos, sin)
                else:
                    x = blk(x, cos, sin)
            if self.ln_f is not None:
                x = self.ln_f(x)
            head = self.wte.weight if self.lm_head is None else self.lm_head.weight
            bias = None if self.lm_head is None else self.lm_head.bias
            loss, logits = lm_loss(self.loss, x, head, bias, ids, self.layer.get("logits_fp32"))
            if self.aux:
                # transformers' router_aux_loss_coef default; under full
                # (re-entrant) checkpointing the logits are the no-grad
                # forward's, as transformers' output recorder sees them
                loss = loss + 0.001 * load_balancing_loss([g for blk in self.h for g in blk.router_logits[:1]],
                                                          self.E, self.k)
            return loss, logits

    lm_loss = build_losses(torch)
    return LM


# The Auto classes train.py builds, by the job's task.
HF_TASKS = {"causal-lm": "AutoModelForCausalLM"}
# Task heads (arch.head) beyond the causal LM: their Auto classes
# (finetune.py's part of the script, below).
HF_TASKS.update({"seq-cls": "AutoModelForSequenceClassification", "token-cls": "AutoModelForTokenClassification",
                 "mlm": "AutoModelForMaskedLM"})
# Vision transformers (arch.image_size set): image classification on
# pixel_values, labels one per image.
HF_TASKS["image-cls"] = "AutoModelForImageClassification"


def transformers_module():
    """transformers, or None when it is not importable."""
    try:
        import transformers
    except ImportError:
        return None
    return transformers


def choose_impl(job, w):
    """The model's implementation for job: "transformers" or "hand", and
    why when auto picks hand."""
    want = job.get("impl") or "auto"
    if want not in ("auto", "transformers", "hand"):
        raise JobError("impl %r: use auto, transformers or hand" % want)
    if want == "hand":
        if (job.get("layer") or {}).get("hf_only"):
            raise JobError("impl hand: arch.family %r is built only through transformers (layer.hf_only); "
                           "use impl transformers" % ((job.get("arch") or {}).get("family"),))
        if w["attn_impl"] != "hand":
            raise JobError("impl hand runs memval's own attention; workload.attn_impl %s is transformers' "
                           "(use impl transformers or attn_impl hand)" % w["attn_impl"])
        return "hand", None
    why = None
    if transformers_module() is None:
        why = "transformers is not importable"
    elif w["checkpointing"] == "selective":
        why = "transformers has no attention-only (selective) checkpointing"
    elif every_nth(w["checkpointing"]) and not hasattr(transformers_module().PreTrainedModel,
                                                       "activation_checkpointing_enable"):
        why = "this transformers' gradient_checkpointing_enable checkpoints every layer, not layers:N"
    elif w["loss"][0] not in ("shift", "hf"):
        why = "transformers computes its own loss (ForCausalLMLoss, workload.loss hf), not %s" % w["loss"][0]
    elif not (job.get("hf_config") or job.get("config_path")):
        why = "the job has no hf_config or config_path (arch.family %r has no config.json mapping)" % (
            (job.get("arch") or {}).get("family"),)
    if why is None:
        return "transformers", None
    if want == "transformers":
        raise JobError("impl transformers: %s" % why)
    if (job.get("layer") or {}).get("hf_only"):
        # memval's family table writes this layer out for its breakdown only
        raise JobError("arch.family %r is built only through transformers (layer.hf_only), which cannot run "
                       "this job: %s" % ((job.get("arch") or {}).get("family"), why))
    return "hand", why


def hf_config_dict(job):
    if job.get("config_path"):
        path = job["config_path"]
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise JobError("config_path %s: %s" % (path, e))
    else:
        cfg = dict(job["hf_config"])
    if not isinstance(cfg, dict) or not cfg.get("model_type"):
        raise JobError("hf_config: want a config.json object with a model_type")
    cfg["use_cache"] = False  # training keeps no KV cache
    return cfg


class HFModel:
    """A transformers model called as the hand-built LM is: ids in, (loss,
    logits) out, the loss the model computes from labels=ids."""

    def __init__(self, torch, job, w, dev):
        tf = transformers_module()
        cfg = hf_config_dict(job)
        task = job.get("task") or head_task(job.get("arch") or {})
        if task not in HF_TASKS:
            raise JobError("task %r: train.py builds %s" % (task, ", ".join(sorted(HF_TASKS))))
        model_type = cfg.pop("model_type")
        for k in ("architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path"):
            cfg.pop(k, None)
        try:
            config = tf.AutoConfig.for_model(model_type, **cfg)
        except (ValueError, KeyError) as e:
            raise JobError("hf_config model_type %r: transformers %s: %s" % (model_type, tf.__version__, e))
        attn = HF_ATTN.get(w["attn_impl"]) or ("sdpa" if w["attention"] == "flash" else "eager")
        auto = getattr(tf, HF_TASKS[task])
        with torch.device(dev):
            try:
                self.model = auto.from_config(config, attn_implementation=attn, dtype=torch.float32)
            except TypeError:  # transformers before 4.56 names it torch_dtype
                self.model = auto.from_config(config, attn_implementation=attn, torch_dtype=torch.float32)
        self.attn = attn
        self.task, self.labels = task, (job.get("arch") or {}).get("labels") or 0
        n = 1 if w["checkpointing"] == "full" else every_nth(w["checkpointing"])
        if n:
            # re-entrant, as the hand-built path: dense layers save the same
            # bytes under transformers' default use_reentrant=False (measured),
            # but with a router aux loss its non-reentrant forward keeps the
            # router logits' graph (not modelled yet); every_n_layers n
            # (layer_index % n == 0, transformers 5.x)
            kw = {"use_reentrant": True}
            if hasattr(self.model, "activation_checkpointing_enable"):
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kw, every_n_layers=n,
                                                           offload=w["offload_activations"])
            elif w["offload_activations"]:
                raise JobError("workload.offload_activations: this transformers has no activation offloading")
            elif n == 1:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
            else:
                raise JobError("workload.checkpointing %s: this transformers has no every_n_layers" % w["checkpointing"])
        elif ops_policy(w["checkpointing"]):
            SAC.enable_transformers(torch, self.model)
        elif w["checkpointing"] != "none":
            raise JobError("workload.checkpointing %s: transformers has none such; use impl hand"
                           % w["checkpointing"])

    def __call__(self, ids):
        if self.task == "image-cls":  # ids are the images' pixel_values
            labels = torch_module().arange(ids.shape[0], device=ids.device).remainder(self.labels)
            out = self.model(pixel_values=ids, labels=labels)
            return out.loss, out.logits
        out = self.model(input_ids=ids, labels=task_labels(self.task, ids, self.labels), use_cache=False)
        return out.loss, out.logits

    def __getattr__(self, name):
        return getattr(self.model, name)


# workload.attn_impl (analytic/model/attention_impl.go) as transformers'
# attn_implementation names it; "hand" is the hand-built program, and the
# transformers path then takes eager or sdpa from workload.attention.
HF_ATTN = {"eager": "eager", "sdpa": "sdpa", "flash-attention-2": "flash_attention_2"}


def parse_attn_impl(w):
    """workload.attn_impl checked against workload.attention ("hand" when unset)."""
    v = w.get("attn_impl") or "hand"
    if v != "hand" and v not in HF_ATTN:
        raise JobError("workload.attn_impl %r: use hand, %s" % (v, ", ".join(HF_ATTN)))
    want = {"eager": "math", "sdpa": "flash", "flash-attention-2": "flash"}.get(v)
    if want and w["attention"] != want:
        raise JobError("workload.attn_impl %s runs %s attention, not attention %s" % (v, want, w["attention"]))
    return v


def ops_policy(ckpt):
    """POLICY of an "ops:POLICY" checkpointing (JobError for an unknown
    one), else ""."""
    if not (isinstance(ckpt, str) and ckpt.startswith("ops:")):
        return ""
    p = ckpt[len("ops:"):]
    if p != "torchtitan":
        raise JobError("workload.checkpointing %r: the per-op policy is ops:torchtitan" % ckpt)
    return p


def torchtitan_policy(torch):
    """A policy function for create_selective_checkpoint_contexts that
    decides as torchtitan v0.2.2's selective_ac_option "op" does
    (torchtitan/distributed/activation_checkpoint.py _apply_op_sac and the
    save list _op_sac_save_list of torchtitan/models/llama3/infra/
    parallelize.py; no per_op_sac_force_recompute_mm_shapes_by_fqns): save
    the outputs of the listed ops and of a CUDA tensor's copy to the CPU,
    except that of the layer's aten.mm calls only the odd-numbered (from 1)
    are saved; recompute everything else. The forward and the recompute
    count their mm calls apart. One policy per checkpointed call."""
    from torch.utils.checkpoint import CheckpointPolicy
    ops = torch.ops.aten
    names = ("mm", "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
             "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_attention_math",
             "_scaled_dot_product_fused_attention_overrideable", "max")
    save = {getattr(ops, n).default for n in names if hasattr(ops, n)}
    if hasattr(torch.ops, "_c10d_functional") and hasattr(torch.ops._c10d_functional, "reduce_scatter_tensor"):
        save.add(torch.ops._c10d_functional.reduce_scatter_tensor.default)
    for hop in ("flex_attention", "inductor_compiled_code"):
        if hasattr(torch._higher_order_ops, hop):
            save.add(getattr(torch._higher_order_ops, hop))
    count = {True: 0, False: 0}

    def policy(ctx, func, *args, **kwargs):
        if (func == ops._to_copy.default and "cuda" in str(args[0].device)
                and str(kwargs.get("device", "")) == "cpu"):
            return CheckpointPolicy.MUST_SAVE
        if func == ops.mm.default:
            count[ctx.is_recompute] += 1
            if count[ctx.is_recompute] % 2 == 0:
                return CheckpointPolicy.PREFER_RECOMPUTE
        return CheckpointPolicy.MUST_SAVE if func in save else CheckpointPolicy.PREFER_RECOMPUTE

    return policy


class SAC:
    """Per-op selective checkpointing (workload.checkpointing ops:POLICY)
    and its measurement. Under torch.utils.checkpoint's non-reentrant
    checkpoint autograd's saved tensors go to the checkpoint's own hooks,
    not to SavedCounter's: what the layer keeps is its positional tensor
    arguments (held by the recompute closure; the re-entrant checkpoint
    saves the same with save_for_backward) and the op outputs the policy
    caches (the caching mode's storage). Both are added to the counter of
    the measured forward (SAC.counter) right after each layer."""

    counter = None
    labels = {}  # data pointer -> "sac.<op>" / "sac.input" for list_saved

    @classmethod
    def context_fn(cls, torch, sink):
        def fn():
            from torch.utils.checkpoint import create_selective_checkpoint_contexts
            ctxs = create_selective_checkpoint_contexts(torchtitan_policy(torch))
            sink.append(ctxs[0])
            return ctxs
        return fn

    @classmethod
    def count(cls, torch, args, sink):
        c = cls.counter
        if c is None:
            return
        for t in args:
            if torch.is_tensor(t):
                cls.labels.setdefault(storage_key(t)[0], "sac.input")
                c.pack(t)
        for mode in sink:
            for func, outs in mode.storage.items():
                for out in outs:
                    for wr in out if isinstance(out, (tuple, list)) else (out,):
                        t = getattr(wr, "val", None)
                        if torch.is_tensor(t):
                            cls.labels.setdefault(storage_key(t)[0], "sac.%s" % func)
                            c.pack(t)
        del sink[:]

    @classmethod
    def checkpoint(cls, torch, fn, *args, **kwargs):
        sink = []
        out = torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False,
                                                context_fn=cls.context_fn(torch, sink), **kwargs)
        cls.count(torch, args, sink)
        return out

    @classmethod
    def enable_transformers(cls, torch, model):
        """transformers' activation checkpointing of every layer with the
        policy's context (gradient_checkpointing_kwargs go to
        torch.utils.checkpoint.checkpoint), each layer's checkpoint function
        wrapped to measure."""
        kw = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kw, every_n_layers=1)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
        n = 0
        for m in model.modules():
            if getattr(m, "gradient_checkpointing", False) and hasattr(m, "_gradient_checkpointing_func"):
                m._gradient_checkpointing_func = lambda fn, *a, **k: cls.checkpoint(torch, fn, *a, **k)
                n += 1
        if n == 0:
            raise JobError("workload.checkpointing ops: this transformers' layers have no _gradient_checkpointing_func")


def every_nth(ckpt):
    """N of a "layers:N" checkpointing, else 0."""
    if isinstance(ckpt, str) and ckpt.startswith("layers:") and ckpt[len("layers:"):].isdigit():
        return int(ckpt[len("layers:"):])
    return 0


# workload.loss: the loss conventions of analytic/model/conventions.go, each
# written out as the library named there computes it.
LOSSES = ("shift", "hf", "torchtitan", "nanogpt", "chunked", "fused")


def parse_loss(v):
    """workload.loss as (kind, chunks)."""
    v = v or "shift"
    kind, _, n = str(v).partition(":")
    if kind not in LOSSES:
        raise JobError("workload.loss %r: use %s (chunked also as chunked:N)" % (v, ", ".join(LOSSES)))
    chunks = 8 if kind == "chunked" else 1
    if n:
        if kind != "chunked":
            raise JobError("workload.loss %r: only chunked takes a number of chunks (chunked:N)" % v)
        chunks = int(n) if n.isdigit() else 0
        if chunks < 1:
            raise JobError("workload.loss %r: chunked:N needs N a positive integer" % v)
    return kind, chunks


def build_losses(torch):
    """Returns lm_loss(conv, x, weight, bias, ids, logits_fp32) -> (loss,
    logits): the LM head on the final hidden states x and the loss, by the
    convention conv = parse_loss(...)."""
    F = torch.nn.functional
    IGNORE = -100

    def shift(x, weight, bias, ids, fp32):
        # memval's program (transformers before 4.46).
        logits = F.linear(x, weight, bias)
        if fp32:
            logits = logits.float()
        shift_logits = logits[..., :-1, :].contiguous()
        shift_labels = ids[..., 1:].contiguous()
        return F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1)), logits

    def hf(x, weight, bias, ids, _):
        # transformers/loss/loss_utils.py ForCausalLMLoss (labels = input ids).
        logits = F.linear(x, weight, bias)
        up = logits.float()
        labels = F.pad(ids, (0, 1), value=IGNORE)
        shift_labels = labels[..., 1:].contiguous()
        loss = F.cross_entropy(up.view(-1, up.size(-1)), shift_labels.view(-1), ignore_index=IGNORE)
        return loss, logits

    def preshifted_labels(ids):
        # the data loader's labels: a tensor of their own, already shifted
        return torch.roll(ids, -1, dims=1)

    def torchtitan(x, weight, bias, ids, _):
        # torchtitan/components/loss.py cross_entropy_loss
        pred = F.linear(x, weight, bias)
        labels = preshifted_labels(ids)
        return F.cross_entropy(pred.flatten(0, 1).float(), labels.flatten(0, 1)), pred

    def nanogpt(x, weight, bias, ids, _):
        # nanoGPT model.py GPT.forward with targets
        logits = F.linear(x, weight, bias)
        targets = preshifted_labels(ids)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1), logits

    def chunked(x, weight, bias, ids, _, n):
        # torchtune: TransformerDecoder's num_output_chunks (the head applied
        # to each chunk of the sequence), the recipe's shifted labels, and
        # modules/loss/ce_chunked_output_loss.py CEWithChunkedOutputLoss.
        logits = [F.linear(c, weight, bias) for c in x.chunk(n, dim=1)]
        labels = torch.hstack((ids[..., 1:], torch.full_like(ids[..., :1], IGNORE)))
        label_chunks = [c.reshape(-1) for c in labels.chunk(n, dim=1)]
        logit_chunks = [c.reshape(-1, c.size(-1)) for c in logits]
        total = (labels != IGNORE).sum()
        loss = 0.0
        for lc, tc in zip(logit_chunks, label_chunks):
            loss = loss + F.cross_entropy(lc.float(), tc, ignore_index=IGNORE, reduction="sum")
        return loss / total, logits

    class FusedLinearCrossEntropy(torch.autograd.Function):
        """Liger Kernel's fused linear cross entropy
        (liger_kernel/ops/fused_linear_cross_entropy.py) in plain torch: the
        logits of a chunk of rows at a time, the input's and the weight's
        gradients computed in forward and saved for backward."""

        @staticmethod
        def forward(ctx, x, weight, bias, target):
            BT, H = x.shape
            V = weight.shape[0]
            inc = -(-V // H)
            chunk = 1 << max(0, (-(-BT // inc) - 1).bit_length())
            grad_input = torch.zeros_like(x)
            grad_weight = torch.zeros_like(weight)
            grad_bias = torch.zeros_like(bias) if bias is not None else None
            n = (target != IGNORE).sum()
            loss = torch.zeros((), dtype=torch.float32, device=x.device)
            for start in range(0, BT, chunk):
                xc, tc = x[start:start + chunk], target[start:start + chunk]
                lc = xc @ weight.t()
                if bias is not None:
                    lc = lc + bias
                lsm = torch.log_softmax(lc.float(), dim=-1)
                valid = tc != IGNORE
                safe = tc.clamp(min=0)
                loss = loss - (lsm.gather(1, safe[:, None])[:, 0] * valid).sum()
                g = lsm.exp_()
                g[torch.arange(g.size(0), device=g.device), safe] -= 1
                g = (g * valid[:, None] / n).to(lc.dtype)
                grad_input[start:start + chunk] = g @ weight.to(g.dtype)
                grad_weight += (g.t() @ xc.to(g.dtype)).to(grad_weight.dtype)
                if grad_bias is not None:
                    grad_bias += g.sum(0).to(grad_bias.dtype)
            if grad_bias is not None:
                ctx.save_for_backward(grad_input, grad_weight, grad_bias)
            else:
                ctx.save_for_backward(grad_input, grad_weight)
            return loss / n

        @staticmethod
        def backward(ctx, go):
            saved = ctx.saved_tensors
            gb = saved[2] * go if len(saved) > 2 else None
            return saved[0] * go, saved[1] * go, gb, None

    def fused(x, weight, bias, ids, _):
        labels = F.pad(ids, (0, 1), value=IGNORE)[..., 1:].contiguous()
        loss = FusedLinearCrossEntropy.apply(x.reshape(-1, x.size(-1)), weight, bias, labels.view(-1))
        return loss, None

    def lm_loss(conv, x, weight, bias, ids, logits_fp32):
        kind, n = conv
        if kind == "chunked":
            return chunked(x, weight, bias, ids, None, n)
        fn = {"shift": shift, "hf": hf, "torchtitan": torchtitan, "nanogpt": nanogpt, "fused": fused}[kind]
        return fn(x, weight, bias, ids, logits_fp32)

    return lm_loss


def normalize_workload(w):
    w = dict(w)
    w.setdefault("precision", "fp32")
    w["precision"] = w["precision"] or "fp32"
    w["optimizer"] = w.get("optimizer") or "adamw"
    w["dropout"] = float(w.get("dropout") or 0.0)
    w["attention"] = w.get("attention") or "math"
    w["checkpointing"] = w.get("checkpointing") or "none"
    w["loss"] = parse_loss(w.get("loss"))
    w["attn_impl"] = parse_attn_impl(w)
    w["offload_activations"] = bool(w.get("offload_activations"))
    if w["offload_activations"] and w["checkpointing"] != "full" and not every_nth(w["checkpointing"]):
        raise JobError("workload.offload_activations needs checkpointing full or layers:N (got %s)" % w["checkpointing"])
    for k in ("batch", "seq"):
        if not isinstance(w.get(k), int) or w[k] < 1:
            raise JobError("workload.%s must be a positive integer (got %r)" % (k, w.get(k)))
    if w["precision"] not in ("fp32", "fp16", "bf16", "bf16-pure"):
        raise JobError("workload.precision %r is not supported by train.py (use fp32, fp16, bf16 or bf16-pure)"
                       % w["precision"])
    if w["attention"] not in ("math", "flash"):
        raise JobError("workload.attention %r: use math or flash" % w["attention"])
    if w["checkpointing"] not in ("none", "full", "selective") and every_nth(w["checkpointing"]) < 1 \
            and not ops_policy(w["checkpointing"]):
        raise JobError("workload.checkpointing %r: use none, full, selective, layers:N or ops:torchtitan"
                       % w["checkpointing"])
    if not 0.0 <= w["dropout"] < 1.0:
        raise JobError("workload.dropout %r must be in [0, 1)" % w["dropout"])
    return normalize_finetune(w)


def storage_key(t):
    """(data pointer, bytes) of the storage under tensor t."""
    s = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
    return s.data_ptr(), s.nbytes()


class SavedCounter:
    """saved_tensors_hooks that add up the distinct storages autograd saves."""

    def __init__(self, torch, exclude, debug=False):
        self.torch = torch
        self.exclude = exclude
        self.seen = set()
        self.bytes = 0
        self.debug = debug
        self.tensors = []  # (data pointer, shape, dtype, bytes) with debug

    def pack(self, t):
        ptr, n = storage_key(t)
        if ptr not in self.exclude and ptr not in self.seen:
            self.seen.add(ptr)
            self.bytes += n
            if self.debug:
                self.tensors.append((ptr, list(t.shape), str(t.dtype).replace("torch.", ""), n))
        return t

    @staticmethod
    def unpack(t):
        return t

    def hooks(self):
        return self.torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)


def pick_device(torch, want):
    want = want or "auto"
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise JobError("device cuda asked for but torch.cuda.is_available() is false")
    if want not in ("cuda", "cpu"):
        raise JobError("device %r: use auto, cuda or cpu" % want)
    return want


def cuda_stats(torch, dev):
    if dev != "cuda":
        return {}
    st = {"allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
          "max_allocated": torch.cuda.max_memory_allocated(), "max_reserved": torch.cuda.max_memory_reserved()}
    torch.cuda.reset_peak_memory_stats()
    return st


def make_optimizer(torch, name, params, impl=None):
    """The workload's optimizer; impl picks torch.optim's implementation:
    default (torch's choice: foreach on CUDA), foreach, fused or for-loop."""
    impl = impl or "default"
    kw = {}
    if impl == "foreach":
        kw["foreach"] = True
    elif impl == "for-loop":
        kw["foreach"] = False
    elif impl == "fused":
        kw["fused"] = True
    elif impl != "default":
        raise JobError("optim_impl %r: use default, foreach, fused or for-loop" % impl)
    if kw and name == "adam8bit":
        raise JobError("optim_impl %s: adam8bit is bitsandbytes' own optimizer; use default" % impl)
    try:
        if name == "adamw":
            return torch.optim.AdamW(params, lr=1e-4, **kw)
        if name == "sgd":
            return torch.optim.SGD(params, lr=1e-3, **kw)
        if name == "sgd-momentum":
            return torch.optim.SGD(params, lr=1e-3, momentum=0.9, **kw)
    except (TypeError, RuntimeError, ValueError) as e:
        raise JobError("optim_impl %s with optimizer %s: torch %s says: %s" % (impl, name, torch.__version__, e))
    if name in ("adafactor", "lion", "paged-adamw8bit"):
        return make_finetune_optimizer(torch, name, params, kw)
    if name == "adam8bit":
        try:
            import bitsandbytes as bnb  # noqa: F401
        except ImportError:
            raise JobError("workload.optimizer adam8bit needs bitsandbytes, which is not installed "
                           "(pip install bitsandbytes, or pick adamw)")
        return bnb.optim.AdamW8bit(params, lr=1e-4)
    raise JobError("workload.optimizer %r: use adamw, sgd, sgd-momentum or adam8bit" % name)


def optimizer_state_bytes(torch, opt):
    """Bytes of the tensors in the optimizer's state (each storage once;
    AdamW's 0-dim step counters included)."""
    seen, n = set(), 0
    for st in opt.state.values():
        for v in st.values():
            if torch.is_tensor(v):
                ptr, nb = storage_key(v)
                if ptr not in seen:
                    seen.add(ptr)
                    n += nb
    return n


def saved_ops(loss):
    """Maps the data pointer of each tensor an autograd node saved, reachable
    from loss, to "Node._saved_name" (the first found)."""
    names, seen, stack = {}, set(), [loss.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        for attr in dir(fn):
            if not attr.startswith("_saved_"):
                continue
            try:
                v = getattr(fn, attr)
            except Exception:  # noqa: BLE001 - freed or unreadable: skip
                continue
            for t in v if isinstance(v, (tuple, list)) else (v,):
                if hasattr(t, "untyped_storage") or hasattr(t, "storage"):
                    try:
                        names.setdefault(storage_key(t)[0], "%s.%s" % (fn.name(), attr[len("_saved_"):]))
                    except Exception:  # noqa: BLE001
                        pass
        stack.extend(f for f, _ in fn.next_functions)
    return names


def run_job(torch, LM, job, index, ev):
    a, w = job.get("arch") or {}, normalize_workload(job.get("workload") or {})
    fam = a.get("family", "")
    layer = job.get("layer")
    for k in ("layers", "hidden", "heads", "vocab"):
        if k == "vocab" and a.get("image_size"):
            continue  # a vision model embeds image patches
        if not isinstance(a.get(k), int) or a[k] < 1:
            raise JobError("arch.%s must be a positive integer (got %r)" % (k, a.get(k)))
    impl, why = choose_impl(job, w)
    if impl == "hand" and not layer:
        raise JobError("arch.family %r is not supported by train.py: the job has no layer (memval's family "
                       "table describes that family's layers only approximately)%s"
                       % (fam, "; transformers could build it, but %s" % why if why else ""))
    if impl == "hand" and layer.get("name") not in ("gpt2", "llama"):
        # the encoders' and vision transformers' layers (analytic/model/family_enc.go,
        # family_vision.go) run only as transformers' own classes, with a task head
        raise JobError("arch.family %r is not supported by train.py's hand-built program (its %r layer runs "
                       "through transformers only: impl transformers with arch.head mlm, seq-cls, token-cls or "
                       "image-cls)%s" % (fam, layer.get("name"), "; transformers could not: %s" % why if why else ""))
    seed = int(job.get("seed") or 0)
    torch.manual_seed(seed)

    def build(dev):
        if impl == "transformers":
            return HFModel(torch, job, w, dev)
        return LM(a, w, layer, dev)

    if job.get("params_only"):
        model = build("meta")
        n = sum(p.numel() for p in model.parameters())
        sys.stderr.write("params: %d\n" % n)
        print(json.dumps({"job": index, "params": n, "saved_bytes": [], "impl": impl}), flush=True)
        return

    dev = pick_device(torch, job.get("device"))
    prec = w["precision"]
    if dev == "cpu" and prec == "fp16":
        raise JobError("workload.precision fp16: autocast on the CPU supports bf16 only; use bf16 or a GPU")
    attention = w["attention"]
    if attention == "flash" and not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        if impl == "transformers":
            raise JobError("workload.attention flash: torch %s has no scaled_dot_product_attention" % torch.__version__)
        attention = "math"
        msg = ("memval: torch %s has no scaled_dot_product_attention; flash attention falls back to math"
               % torch.__version__)
        sys.stderr.write(msg + "\n")
    ev.emit("phase", phase="start", data={"job": index})
    model = build(dev)
    if prec == "bf16-pure":
        model.to(torch.bfloat16)
    model = apply_lora(torch, model, job, w, impl)  # a no-op without workload.lora_rank
    model.train()
    n = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sys.stderr.write("params: %d\n" % n)
    tf = transformers_module() if impl == "transformers" else None
    info = {"job": index, "torch": torch.__version__, "cuda": torch.version.cuda, "params": n,
            "backend": dev, "attention": attention, "precision": prec, "family": fam, "impl": impl,
            "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu"}
    if tf is not None:
        info["transformers"] = tf.__version__
    if why:
        info["impl_reason"] = why
    if attention != w["attention"]:
        info["attention_fallback"] = "no scaled_dot_product_attention in this torch"
    ev.emit("info", data=info)
    ev.emit("phase", phase="model_on_device", data={"job": index}, **cuda_stats(torch, dev))

    opt = make_optimizer(torch, w["optimizer"], [p for p in model.parameters() if p.requires_grad],
                         job.get("optim_impl") or w.get("optimizer_impl"))
    exclude = {storage_key(t)[0] for t in list(model.parameters()) + list(model.buffers())}
    gen = torch.Generator().manual_seed(seed)
    ids = model_inputs(torch, a, w, gen).to(dev)
    if prec in ("fp16", "bf16"):
        dt = torch.float16 if prec == "fp16" else torch.bfloat16
        autocast = lambda: torch.autocast(dev, dtype=dt)  # noqa: E731
    else:
        autocast = None
    scaler = torch.cuda.amp.GradScaler() if prec == "fp16" else None
    debug = os.environ.get("MEMVAL_SAVED_DEBUG") == "1" or bool(job.get("list_saved"))
    saved_all, listed = [], None
    total = int(job.get("warmup") or 0) + int(job.get("steps") or 1)
    for step in range(total):
        warm = step < int(job.get("warmup") or 0)
        ev.emit("phase", phase="step_start", step=step, data={"job": index, "warmup": warm})
        counter = SavedCounter(torch, exclude, debug and step == 0)
        # Gradient accumulation: the micro-batches before the last run
        # forward and backward here; the last (measured) one below.
        for _ in range(w["grad_accum"] - 1):
            accumulate(model, ids, autocast, scaler)
        ctx = counter.hooks() if job.get("measure_saved", True) else None
        SAC.counter = counter if ctx is not None else None
        if ctx is not None:
            ctx.__enter__()
        try:
            if autocast is not None:
                with autocast():
                    loss, logits = model(ids)
            else:
                loss, logits = model(ids)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
            SAC.counter = None  # only the measured forward counts
        if w.get("free_logits"):
            logits = None  # the loop drops the logits before backward
        if counter.debug:
            # reading a node's saved tensors inside a non-reentrant
            # checkpoint recomputes the layer (and SAC's cache allows one)
            ops = {} if ops_policy(w["checkpointing"]) else saved_ops(loss)
            listed = [[ops.get(ptr) or SAC.labels.get(ptr, "?"), shape, dtype, nb]
                      for ptr, shape, dtype, nb in counter.tensors]
            if os.environ.get("MEMVAL_SAVED_DEBUG") == "1":
                for row in listed:
                    sys.stderr.write("saved %s %s %s %d\n" % tuple(row))
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=w["zero_grad"] != "zeros")
        del loss, logits
        if dev == "cuda":
            torch.cuda.synchronize()
        ev.emit("phase", phase="step_end", step=step, data={"job": index, "warmup": warm},
                **cuda_stats(torch, dev))
        if ctx is not None:
            saved_all.append(counter.bytes)
            ev.emit("saved", step=step, saved_bytes=counter.bytes, data={"job": index})
    ev.emit("phase", phase="done", data={"job": index})
    res = {"job": index, "params": n, "trainable": trainable, "saved_bytes": saved_all, "attention": attention,
           "device": dev, "torch": torch.__version__, "impl": impl,
           "optimizer_state_bytes": optimizer_state_bytes(torch, opt)}
    if tf is not None:
        res["transformers"] = tf.__version__
    if listed is not None:
        res["saved_tensors"] = listed
    print(json.dumps(res), flush=True)


# Fine-tuning (issue 15): LoRA adapters on a frozen base, task heads,
# gradient accumulation and the optimizers beyond torch's AdamW and SGD.

PEFT_TASKS = {"causal-lm": "CAUSAL_LM", "seq-cls": "SEQ_CLS", "token-cls": "TOKEN_CLS"}

# Where the hand-built model keeps the linear layer of each role
# (model.LinearModule.Role; the job's lora_roles).
HAND_LORA_MODULES = {"q": ("attn", "q_proj"), "k": ("attn", "k_proj"), "v": ("attn", "v_proj"),
                     "qkv": ("attn", "c_attn"), "out": ("attn", "o_proj"), "gate": ("mlp", "gate_proj"),
                     "up": ("mlp", "up_proj"), "down": ("mlp", "down_proj")}


def normalize_finetune(w):
    """Checks and fills the workload's fine-tuning fields."""
    w["lora_rank"] = int(w.get("lora_rank") or 0)
    w["lora_alpha"] = float(w.get("lora_alpha") or 0.0)
    w["lora_dropout"] = float(w.get("lora_dropout") or 0.0)
    w["lora_targets"] = w.get("lora_targets") or ""
    w["grad_accum"] = int(w.get("grad_accum") or 1)
    w["zero_grad"] = w.get("zero_grad") or "none"
    if w["lora_rank"] < 0:
        raise JobError("workload.lora_rank %r must be a positive integer (0: no LoRA)" % w["lora_rank"])
    if not 0.0 <= w["lora_dropout"] < 1.0:
        raise JobError("workload.lora_dropout %r must be in [0, 1)" % w["lora_dropout"])
    if w["grad_accum"] < 1:
        raise JobError("workload.grad_accum %r must be a positive integer" % w["grad_accum"])
    if w["zero_grad"] not in ("none", "zeros"):
        raise JobError("workload.zero_grad %r: use none or zeros" % w["zero_grad"])
    if w.get("weights") and w["weights"] not in ("fp32",):
        raise JobError("workload.weights %s: train.py keeps the weights in the precision's dtype; quantized "
                       "formats need bitsandbytes or GPTQ CUDA kernels (memval derives them, not measured)"
                       % w["weights"])
    return w


def torch_module():
    import torch
    return torch


def model_inputs(torch, a, w, gen):
    """The batch: token ids of (batch, seq), or for a vision model (arch
    image_size) fp32 pixel_values of (batch, channels, image, image), whose
    patches, class token and registers are the workload's seq."""
    if a.get("image_size"):
        size, patch, ch = int(a["image_size"]), int(a["patch_size"]), int(a.get("channels") or 3)
        tokens = (size // patch) ** 2 + 1 + int(a.get("registers") or 0)  # patches, class token, registers
        if tokens != w["seq"]:
            raise JobError("workload.seq %d: a vision model of image_size %d and patch_size %d sees %d tokens per image"
                           % (w["seq"], size, patch, tokens))
        return torch.randn((w["batch"], ch, size, size), generator=gen)
    return torch.randint(a["vocab"], (w["batch"], w["seq"]), generator=gen)


def head_task(arch):
    """The transformers task of arch.head."""
    head = arch.get("head") or "lm"
    if head == "lm":
        return "causal-lm"
    if head in HF_TASKS:
        return head
    raise JobError("arch.head %r: train.py trains lm, seq-cls, token-cls, mlm or image-cls heads (none has no loss)" % head)


def task_labels(task, ids, n):
    """Labels for the task's loss, from the token ids: the ids themselves
    for causal language modelling, ids modulo the labels for classifiers,
    and for masked LM a tensor of their own, as a masking collator makes it
    (-100 at the positions that are not predicted: here every other one)."""
    if task == "mlm":
        labels = ids.clone()
        labels[:, 1::2] = -100
        return labels
    if task == "seq-cls":
        return ids[:, 0].remainder(n)
    if task == "token-cls":
        return ids.remainder(n)
    return ids


def lora_class(torch):
    """LoRALinear: PEFT's lora.Linear forward written out (fp32 adapters,
    the input cast to their dtype, dropout, A, B, scaling, cast back)."""
    nn = torch.nn

    class LoRALinear(nn.Module):
        def __init__(self, base, r, alpha, p):
            super().__init__()
            self.base_layer = base
            wt = base.weight
            nin, nout = (wt.shape[1], wt.shape[0]) if isinstance(base, nn.Linear) else (wt.shape[0], wt.shape[1])
            if r > min(nin, nout):
                raise JobError("workload.lora_rank %d is larger than a %dx%d layer" % (r, nin, nout))
            self.lora_A = nn.Linear(nin, r, bias=False, device=wt.device, dtype=torch.float32)
            self.lora_B = nn.Linear(r, nout, bias=False, device=wt.device, dtype=torch.float32)
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)
            self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
            self.scaling = (alpha or r) / r

        def forward(self, x):
            result = self.base_layer(x)
            dt = result.dtype
            x = x.to(self.lora_A.weight.dtype)
            result = result + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling
            return result.to(dt)

    return LoRALinear


def apply_lora(torch, model, job, w, impl):
    """Freezes the model and adds LoRA adapters as workload.lora_* say: by
    hand on the modules of the job's lora_roles, or with PEFT's
    get_peft_model on the transformers model. The embeddings' output
    requires grad (PEFT's enable_input_require_grads)."""
    r = w["lora_rank"]
    if not r:
        return model
    if impl == "transformers":
        return apply_peft(model, w)
    roles = job.get("lora_roles") or []
    unknown = sorted(set(roles) - set(HAND_LORA_MODULES))
    if not roles or unknown:
        raise JobError("lora_roles %r: give the roles of the adapted layers (%s); memval fills them from "
                       "workload.lora_targets" % (roles, ", ".join(sorted(HAND_LORA_MODULES))))
    for p in model.parameters():
        p.requires_grad_(False)
    LoRALinear = lora_class(torch)
    for blk in model.h:
        for role in roles:
            parent = getattr(blk, HAND_LORA_MODULES[role][0])
            name = HAND_LORA_MODULES[role][1]
            if not hasattr(parent, name):
                raise JobError("lora_roles: this layer has no %s module (role %s)" % (name, role))
            setattr(parent, name, LoRALinear(getattr(parent, name), r, w["lora_alpha"], w["lora_dropout"]))
    model.wte.register_forward_hook(lambda m, i, out: out.requires_grad_(True))
    return model


def apply_peft(hf, w):
    try:
        import peft
    except ImportError:
        raise JobError("workload.lora_rank with impl transformers needs peft (pip install peft); or use impl hand")
    targets = w["lora_targets"] or None
    if targets and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    cfg = peft.LoraConfig(r=w["lora_rank"], lora_alpha=w["lora_alpha"] or w["lora_rank"],
                          lora_dropout=w["lora_dropout"], target_modules=targets,
                          task_type=PEFT_TASKS.get(hf.task))
    hf.model.enable_input_require_grads()
    try:
        hf.model = peft.get_peft_model(hf.model, cfg)
    except ValueError as e:
        raise JobError("workload.lora_targets %r: peft %s says: %s" % (w["lora_targets"], peft.__version__, e))
    return hf


def accumulate(model, ids, autocast, scaler):
    """One micro-batch of gradient accumulation: forward and backward, the
    gradients added to the ones held."""
    if autocast is not None:
        with autocast():
            loss, logits = model(ids)
    else:
        loss, logits = model(ids)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    del loss, logits


def make_finetune_optimizer(torch, name, params, kw):
    """Adafactor (torch.optim's, torch 2.5 and later), Lion and paged 8-bit
    AdamW (bitsandbytes, CUDA)."""
    if name == "adafactor":
        if not hasattr(torch.optim, "Adafactor"):
            raise JobError("workload.optimizer adafactor: torch %s has no torch.optim.Adafactor (2.5 and later "
                           "have); memval derives its state" % torch.__version__)
        try:
            return torch.optim.Adafactor(params, lr=1e-2, **kw)
        except (TypeError, RuntimeError, ValueError) as e:
            raise JobError("optimizer adafactor with %s: torch %s says: %s" % (kw, torch.__version__, e))
    if kw:
        raise JobError("optim_impl: optimizer %s has its own kernels; use default" % name)
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise JobError("workload.optimizer %s needs bitsandbytes (pip install bitsandbytes); memval derives "
                       "its state" % name)
    if name == "lion":
        return bnb.optim.Lion(params, lr=1e-4)
    return bnb.optim.PagedAdamW8bit(params, lr=1e-4)


def is_oom(torch, e):
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def main(argv=None):
    p = argparse.ArgumentParser(description="memval training scenario")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--job", help="job JSON file")
    g.add_argument("--jobs", help="JSON file with a list of jobs")
    args = p.parse_args(argv)
    try:
        import torch
        import torch.utils.checkpoint  # noqa: F401
    except ImportError:
        sys.stderr.write(TORCH_MISSING + "\n")
        return 2
    ev = Events(os.environ.get("MEMVAL_EVENTS"))
    try:
        path = args.job or args.jobs
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise JobError("reading job file %s: %s" % (path, e))
        jobs = [data] if args.job else data
        if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
            raise JobError("job file %s: want a JSON object (--job) or a list of objects (--jobs)" % path)
        LM = build_classes(torch)
        for i, job in enumerate(jobs):
            run_job(torch, LM, job, i, ev)
        return 0
    except JobError as e:
        sys.stderr.write("memval: %s\n" % e)
        ev.emit("error", message=str(e))
        return 2
    except Exception as e:  # noqa: BLE001 - OOM is reported, everything else re-raised
        if is_oom(torch, e):
            sys.stderr.write("memval: out of memory: %s\n" % e)
            ev.emit("error", message=str(e), oom=True)
            return 3
        raise
    finally:
        ev.close()


if __name__ == "__main__":
    sys.exit(main())
