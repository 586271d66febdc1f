#!/usr/bin/env python3
"""The peer estimators memval is compared with, run on memval's cases.

    python peers.py --cases cases.json --out peers.json [--peers a,b] [--min-time S]

cases.json is what `memval-peers` (cmd/memval-peers) writes: a list of
{"name", "set": "truth"|"published", "arch": <model.Arch>, "workload":
<model.Workload>, "config_dir": folder with a config.json}. For each case and
each peer this prints one result to peers.json:

    {"case", "peer", "version", "quantities": {...}, "cannot": "...",
     "ns_per_estimate", "reps", "notes": [...]}

quantities holds what the peer predicts, in bytes, under memval's names:
weights, gradients, optimizer (optimizer states), activations (bytes kept
for backward), model_states (weights + gradients + optimizer states) and
peak (the peer's figure for the whole step's or the inference's memory per
GPU). A quantity the peer has no figure for is absent; "cannot" says why a
peer gives nothing at all for a case. Nothing here reaches the Hugging Face
Hub: configs are read from local folders with HF_HUB_OFFLINE=1.

Each peer is called the way its documentation shows, with the options it
offers chosen to match the workload as closely as it allows (see PEERS in
the README and the notes each result carries):

- llm-analysis (LLMAnalysis.training / .inference on a ModelConfig built
  from the arch; a GPU config with room enough that no fit check trims a
  figure: memory_left only changes messages).
- accelerate: what `accelerate estimate-memory` computes, without its Hub
  look-up (create_empty_model calls huggingface_hub.model_info first):
  AutoConfig.from_pretrained(local folder), init_empty_weights,
  AutoModel.from_config(torch_dtype=float32) as create_empty_model does,
  calculate_maximum_sizes and estimate_training_usage, for the CLI's dtype
  (float32, or float16 for any 16-bit precision).
- deepspeed: estimate_zero2_model_states_mem_needs /
  estimate_zero3_model_states_mem_needs (the functions behind the _all_cold
  and _all_live helpers; total and largest-layer parameter counts as
  model_to_params counts them), cpu_offload off.
- memtracker: torch.distributed._tools.mem_tracker.MemTracker around one
  training step (or one forward under no_grad for inference) of the
  transformers model under FakeTensorMode on the CPU (its backward on fake
  CUDA tensors needs a GPU); a ZeRO 2/3 run over dp GPUs is the model under
  FSDP2's fully_shard over torch's fake process group of dp ranks, tracked
  by torch.distributed._tools.fsdp2_mem_tracker.FSDPMemTracker (rank 0).
- eleuther: EleutherAI's "Transformer Math 101" (Anthony, Biderman,
  Schoelkopf, 2023) rules, written here from the article.
"""

import argparse
import json
import os
import sys
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import logging  # noqa: E402

logging.disable(logging.WARNING)

PEERS = ["llm-analysis", "accelerate", "deepspeed", "memtracker", "eleuther"]


class Cannot(Exception):
    """The peer has no figure for this case; the message says why."""


def unexpressed(case):
    """Raises Cannot for what no peer here is asked: LoRA adapters (none of
    them takes a rank or target modules, so each would count a full
    fine-tune) and quantized base weights (llm-analysis' and accelerate's
    4- and 8-bit weight settings are not wired into this harness)."""
    w = case["workload"]
    if w.get("lora_rank"):
        raise Cannot("LoRA (rank %d): no adapters in this peer as asked here; it would count a full fine-tune" % w["lora_rank"])
    if w.get("weights") not in (None, "", "fp32", "fp16", "bf16"):
        raise Cannot("%s base weights: quantized weights are not passed to this peer here" % w["weights"])


class NoConfig(Exception):
    """The harness has no config.json for the case (a preset of a family
    scenarios.HFConfig does not write): the peer was not run. Reported as
    an error of the harness, not as something the peer cannot express."""


def need_config(case):
    if not case.get("config_dir"):
        raise NoConfig("no config.json for this case (memval preset of family %s); not run" % case["arch"].get("family"))


def sixteen(prec):
    return prec in ("bf16-pure", "bf16-master")


def training(w):
    return not w.get("inference")


def zero_of(w):
    return w.get("zero", 0) or 0


def dp_of(w):
    return max(w.get("dp", 0) or 0, 1)


def tp_of(w):
    return max(w.get("tp", 0) or 0, 1)


# ---- the model as the transformers config describes it (for the peers that
# need a module: accelerate, deepspeed's parameter counts, memtracker) ----

_counts = {}


def hf_config(case):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(case["config_dir"])


def param_counts(case):
    """Total and largest-layer parameter counts of the causal-LM model the
    config names, built on the meta device, as deepspeed's model_to_params
    counts them (shared parameters once). Not timed: a peer's user passes
    these numbers."""
    key = case.get("config_dir")
    if not key:
        # No config.json for this case: the parameter count memval states
        # (model.Params), the figure a user would pass.
        return case["params"], 0
    if key not in _counts:
        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            m = AutoModelForCausalLM.from_config(hf_config(case))
        total = sum(dict((id(p), p.numel()) for p in m.parameters()).values())
        largest = 0
        for mod in m.modules():
            largest = max(largest, sum(p.numel() for p in mod.parameters(recurse=False)))
        _counts[key] = (total, largest)
    return _counts[key]


# ---- llm-analysis ----

def llm_analysis(case):
    from llm_analysis.analysis import ActivationRecomputation, DSZeRO, LLMAnalysis
    from llm_analysis.config import DtypeConfig, GPUConfig, ModelConfig, ParallelismConfig

    a, w = case["arch"], case["workload"]
    if a.get("experts"):
        # llm-analysis has moe_num_experts; memval's MoE arch fields are
        # mapped below, but no case of this harness has one yet.
        pass
    # ModelConfig asserts hidden_dim divides ffn_embed_dim unless
    # expansion_ratio is given too (Llama 3's 14336 / 4096 = 3.5).
    ffn = a.get("ffn") or 4 * a["hidden"]
    notes = []
    mc = ModelConfig(
        name=case["name"], num_layers=a["layers"], n_head=a["heads"], hidden_dim=a["hidden"],
        vocab_size=a["vocab"], max_seq_len=max(w["seq"], a.get("context_length") or 0, a.get("max_positions") or 0),
        num_key_value_heads=a.get("kv_heads") or a["heads"], ffn_embed_dim=ffn, expansion_ratio=ffn / a["hidden"],
        model_type=a.get("family"), moe_num_experts=max(a.get("experts") or 1, 1), moe_top_k=max(a.get("experts_per_token") or 1, 1))
    prec = (w.get("precision") or "fp32")
    if prec not in ("bf16-pure", "bf16-master"):
        # torch keeps fp32 weights in fp32 training and under autocast.
        raise Cannot("32-bit weights (precision %s): DtypeConfig takes weight bits 4, 8 or 16 only" % prec)
    dt = DtypeConfig(name="w16a16e16", weight_bits=16, activation_bits=16, embedding_bits=16)
    # Room enough that no fit check trims a figure (memory_left only changes messages).
    gpu = GPUConfig(name="any", mem_per_GPU_in_GB=1e6, hbm_bandwidth_in_GB_per_sec=2000,
                    intra_node_bandwidth_in_GB_per_sec=300, intra_node_min_message_latency=8e-06,
                    peak_fp16_TFLOPS=1000)
    par = ParallelismConfig(tp_size=tp_of(w), dp_size=dp_of(w), sp_size=tp_of(w) if w.get("sp") else 1)
    an = LLMAnalysis(mc, gpu, dt, par, flops_efficiency=0.5, hbm_memory_efficiency=0.9)
    if not training(w):
        s = an.inference(batch_size_per_gpu=w["batch"], seq_len=w["seq"], num_tokens_to_generate=1,
                         use_kv_cache=True)
        kv = s["kv_cache_memory_per_gpu"]
        act = max(s["prefill_activation_memory_per_gpu"], kv + s["decode_activation_memory_per_gpu"])
        notes.append("inference: weights + the larger of prefill activations and kv cache + decode activations")
        return {"weights": s["weight_memory_per_gpu"], "peak": s["weight_memory_per_gpu"] + act}, notes
    if (w.get("optimizer") or "adamw") != "adamw":
        raise Cannot("optimizer %s: llm-analysis assumes Adam unless given other_op_bytes; not mapped" % w.get("optimizer"))
    rc = {"none": ActivationRecomputation.NONE, "selective": ActivationRecomputation.SELECTIVE,
          "full": ActivationRecomputation.FULL}[w.get("checkpointing") or "none"]
    z = [DSZeRO.NONE, DSZeRO.STAGE_1, DSZeRO.STAGE_2, DSZeRO.STAGE_3][zero_of(w)]
    notes.append("Adam with its default fp32 master weights and fp32 gradients whatever the precision")
    s = an.training(batch_size_per_gpu=w["batch"], gradient_accumulation_steps=1,
                    global_batch_size=w["batch"] * dp_of(w), seq_len=w["seq"], activation_recomputation=rc,
                    ds_zero=z, flash_attn=w.get("attention") == "flash", softmax_dropout=(w.get("dropout") or 0) > 0,
                    mlp_gated_linear_units=bool(a.get("gated_mlp")))
    q = {"weights": s["weight_memory_per_gpu"], "gradients": s["gradient_memory_per_gpu"],
         "optimizer": s["optimizer_state_memory_per_gpu"], "activations": s["activation_memory_per_gpu"],
         "model_states": s["(weight+op_state+grad)_memory_per_gpu"],
         "peak": s["(weight+op_state+grad+act)_memory_per_gpu"]}
    return q, notes


# ---- accelerate estimate-memory ----

def accelerate_estimate(case):
    import torch
    import transformers
    from accelerate import init_empty_weights
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes
    from transformers import AutoConfig, AutoModel

    a, w = case["arch"], case["workload"]
    if training(w) and zero_of(w) > 0 and dp_of(w) > 1:
        raise Cannot("sharding (ZeRO %d over %d GPUs): estimate-memory has no parallelism" % (zero_of(w), dp_of(w)))
    if tp_of(w) > 1:
        raise Cannot("tensor parallelism: estimate-memory has no parallelism")
    need_config(case)
    # create_empty_model without verify_on_hub (a Hub request).
    config = AutoConfig.from_pretrained(case["config_dir"])
    auto_map = getattr(config, "auto_map", None)
    with init_empty_weights():
        constructor = AutoModel
        if isinstance(auto_map, dict):
            for key in auto_map:
                if key.startswith("AutoModelFor"):
                    constructor = getattr(transformers, key)
                    break
        model = constructor.from_config(config, torch_dtype=torch.float32)
    total_size, largest = calculate_maximum_sizes(model)
    dtype = "float32" if (w.get("precision") or "fp32") == "fp32" else "float16"
    usage = estimate_training_usage(total_size, dtype)
    weights = total_size if dtype == "float32" else total_size / 2
    notes = ["CLI dtype %s; AutoModel (no LM head unless the config's auto_map names one)" % dtype]
    if not training(w):
        notes.append("inference: the Total Size column (weights) is its figure")
        return {"weights": weights, "peak": weights}, notes
    train = max(usage.values())
    notes.append("Training using Adam = max(model, gradients, optimizer, step) of estimate_training_usage, batch size 1")
    q = {"weights": weights, "model_states": train, "peak": train}
    if dtype == "float32":
        q.update(gradients=usage["gradients"], optimizer=usage["optimizer"])
    return q, notes


# ---- deepspeed ZeRO estimators ----

def deepspeed_estimate(case):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    w = case["workload"]
    if not training(w):
        raise Cannot("inference: the ZeRO estimators count training model states only")
    if (w.get("optimizer") or "adamw") != "adamw":
        raise Cannot("optimizer %s: the estimators assume Adam" % w.get("optimizer"))
    total, largest = param_counts(case)
    g = dp_of(w)
    if zero_of(w) == 3:
        need_config(case)
        _, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=g, num_nodes=1,
                                                          cpu_offload=False, cpu_offload_params=False, zero_init=True)
        notes = ["ZeRO-3 estimator, %d GPUs, no offload: 4 x largest layer + 18 N / G" % g]
    else:
        _, gpu = estimate_zero2_model_states_mem_needs(total, num_gpus_per_node=g, num_nodes=1, cpu_offload=False)
        notes = ["ZeRO-2 estimator (DeepSpeed's for stages 0-2), %d GPUs, no offload: 2 N + 18 N / G" % g]
    notes.append("model states only (16-bit weights, fp32 master, Adam, 16-bit and fp32 gradients) whatever the precision")
    return {"model_states": gpu}, notes


# ---- torch's MemTracker ----

def memtracker(case):
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType, _ModState
    from transformers import AutoModelForCausalLM

    a, w = case["arch"], case["workload"]
    if tp_of(w) > 1:
        raise Cannot("tensor parallelism needs a device mesh; not set up here")
    if (w.get("optimizer") or "adamw") != "adamw":
        raise Cannot("optimizer %s not mapped" % w.get("optimizer"))
    if training(w) and dp_of(w) > 1 and zero_of(w) > 0:
        return fsdp_memtracker(case)
    prec = (w.get("precision") or "fp32")
    if prec == "bf16-master":
        raise Cannot("bf16 weights with fp32 master weights: no torch.optim equivalent to trace")
    need_config(case)
    config = hf_config(case)
    config.use_cache = not training(w)
    attn = "sdpa" if w.get("attention") == "flash" else "eager"
    dtype = torch.bfloat16 if prec == "bf16-pure" else torch.float32
    dev = torch.device("cpu")
    with FakeTensorMode():
        with dev:
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=dtype)
        if training(w):
            model.train()
            if w.get("checkpointing") == "full":
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
            elif w.get("checkpointing") not in (None, "", "none"):
                raise Cannot("checkpointing %s not mapped" % w.get("checkpointing"))
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        else:
            model.eval()
            opt = None
        ids = torch.randint(0, a["vocab"], (w["batch"], w["seq"]), device=dev)
        mt = MemTracker()
        mt.track_external(*([model, opt] if opt is not None else [model]))
        with mt:
            # Training: two steps, the module stats reset after the first,
            # as torch's own MemTracker tests run it: the second step is the
            # steady state, with the AdamW states allocated through it. The
            # quantities are the first step's (the step the truth measures).
            for step in range(2 if training(w) else 0):
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if prec in ("bf16", "fp16") else _null()
                with ctx:
                    loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                del loss
                if step == 0:
                    grads = mt.get_tracker_snapshot()[dev]
                    pre_bw = mt.memory_tracking[model].snapshots[_ModState.PRE_BW][-1][dev]
                opt.step()
                opt.zero_grad(set_to_none=True)
                if step == 0:
                    after = mt.get_tracker_snapshot()[dev]
                    mt.reset_mod_stats()
            if not training(w):
                with torch.no_grad():
                    model(input_ids=ids)
        peak = mt.get_tracker_snapshot("peak")[dev]["Total"]
        if not training(w):
            return {"peak": peak}, ["one forward under no_grad with the KV cache on (use_cache)"]
        q = {"weights": after[_MemRefType.PARAM], "gradients": grads[_MemRefType.GRAD],
             "optimizer": after[_MemRefType.OPT], "activations": pre_bw[_MemRefType.ACT], "peak": peak}
        q["model_states"] = q["weights"] + q["gradients"] + q["optimizer"]
        return q, ["two steps on fake CPU tensors (FakeTensorMode), the peak over both; the other quantities from the "
                   "first: activations: ACT at the model's PRE_BW",
                   "optimizer: OPT after the step (states; the step's temporaries are in peak only)"]


# ---- torch's FSDPMemTracker on FSDP2 under a fake process group ----

_world = {}


def fake_world(size):
    """A device mesh of size ranks over torch's fake process group (one
    process, rank 0, collectives that move nothing), as torch's own
    FSDPMemTracker tests set it up. Made outside FakeTensorMode: the mesh
    reads its ranks from a real tensor."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.testing._internal.distributed.fake_pg import FakeStore

    if _world.get("size") != size:
        if dist.is_initialized():
            dist.destroy_process_group()
        dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=size)
        _world.update(size=size, mesh=init_device_mesh("cpu", (size,)))
    return _world["mesh"]


def fsdp_memtracker(case):
    """Two training steps of the transformers model sharded with FSDP2's
    fully_shard over a fake world of dp ranks (rank 0's memory), tracked by
    FSDPMemTracker on fake CPU tensors. ZeRO 3 is reshard_after_forward=True
    (FULL_SHARD), ZeRO 2 is False (SHARD_GRAD_OP: unsharded parameters kept
    from forward to backward); each module class the model names in
    _no_split_modules (its decoder layer) is one FSDP unit, the root another,
    as accelerate's transformer auto-wrap policy groups them."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker, _FSDPRefType
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from transformers import AutoModelForCausalLM

    a, w = case["arch"], case["workload"]
    z, g = zero_of(w), dp_of(w)
    if z == 1:
        raise Cannot("ZeRO 1 over %d GPUs: fully_shard always shards the parameters (no optimizer-only sharding)" % g)
    ck = w.get("checkpointing") or "none"
    if ck not in ("none", "full"):
        raise Cannot("checkpointing %s not mapped" % ck)
    need_config(case)
    prec = (w.get("precision") or "fp32")
    notes = ["FSDP2 fully_shard over a fake process group of %d ranks (rank 0), reshard_after_forward=%s (ZeRO %d); "
             "two steps on fake CPU tensors (FakeTensorMode) under FSDPMemTracker, the peak over both" % (g, z == 3, z)]
    if prec == "bf16-master":
        # FSDP's form of bf16 compute over fp32 master weights: fp32
        # sharded parameters (the optimizer's), bf16 unsharded ones.
        dtype, mp = torch.float32, MixedPrecisionPolicy(param_dtype=torch.bfloat16)
        notes.append("bf16 with fp32 master weights as FSDP2 mixed precision: fp32 sharded parameters, gradients and "
                     "AdamW states, bf16 unsharded parameters and reduction")
        if z == 2:
            notes.append("DeepSpeed's ZeRO 2 keeps every bf16 weight all step; "
                         "FSDP2 frees the unsharded ones after backward")
    else:
        dtype, mp = (torch.bfloat16 if prec == "bf16-pure" else torch.float32), MixedPrecisionPolicy()
    mesh = fake_world(g)
    config = hf_config(case)
    config.use_cache = False
    attn = "sdpa" if w.get("attention") == "flash" else "eager"
    dev = torch.device("cpu")
    with FakeTensorMode():
        with dev:
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=dtype)
        model.train()
        if ck == "full":
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        units = set(getattr(model, "_no_split_modules", None) or [])
        n = 0
        for mod in model.modules():
            if type(mod).__name__ in units:
                fully_shard(mod, mesh=mesh, reshard_after_forward=z == 3, mp_policy=mp)
                n += 1
        fully_shard(model, mesh=mesh, reshard_after_forward=z == 3, mp_policy=mp)
        notes.append("%d FSDP units (%s) and the root" % (n, ", ".join(sorted(units)) or "none"))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(0, a["vocab"], (w["batch"], w["seq"]), device=dev)
        mt = FSDPMemTracker(model, opt)
        mt.track_inputs((ids,))
        with mt:
            # Two steps, the module stats reset after the first, as torch's
            # own FSDPMemTracker tests run it: the second step is the steady
            # state, with the AdamW states allocated through it. The other
            # quantities are the first step's, as for MemTracker.
            for step in range(2):
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if prec in ("bf16", "fp16") else _null()
                with ctx:
                    loss = model(input_ids=ids, labels=ids).loss
                if step == 0:
                    fwd = mt.get_tracker_snapshot()[dev]
                loss.backward()
                del loss
                if step == 0:
                    grads = mt.get_tracker_snapshot()[dev]
                opt.step()
                opt.zero_grad(set_to_none=True)
                if step == 0:
                    after = mt.get_tracker_snapshot()[dev]
                    mt.reset_mod_stats()
        peak = mt.get_tracker_snapshot("peak")[dev]["Total"]
    q = {"weights": after[_FSDPRefType.SHARDED_PARAM], "gradients": grads[_FSDPRefType.SHARDED_GRAD],
         "optimizer": after[_FSDPRefType.OPT], "activations": fwd[_FSDPRefType.ACT], "peak": peak}
    q["model_states"] = q["weights"] + q["gradients"] + q["optimizer"]
    notes.append("weights, gradients, optimizer: rank 0's shards after the first step; activations: ACT between its "
                 "forward and backward; peak: FSDPMemTracker's Total over both steps (all-gather and reduce-scatter "
                 "buffers in, no allocator rounding)")
    return q, notes


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


# ---- EleutherAI Transformer Math 101 ----

def eleuther(case):
    """The rules as the article states them. Model: 4 bytes/param in fp32,
    2 in fp16/bf16 (mixed precision keeps its fp32 copy in the optimizer).
    Optimizer: AdamW 12 bytes/param (fp32 copy, momentum, variance).
    Gradients: 4 bytes/param in fp32, 2 in 16 bits. Activations (16-bit,
    from Korthikanti et al.): no recomputation s*b*h*L*(10 + 24/t + 5*a*s/(h*t)),
    selective s*b*h*L*(10 + 24/t), full 2*s*b*h*L. ZeRO-1 divides the
    optimizer, ZeRO-2 also the gradients, ZeRO-3 also the model by the
    number of GPUs. Inference: 1.2 x the model's memory."""
    a, w = case["arch"], case["workload"]
    n, _ = param_counts(case)
    prec = (w.get("precision") or "fp32")
    # torch.autocast keeps fp32 weights and gradients; the article's
    # 16-bit rows are for 16-bit weights.
    wb = 2 if sixteen(prec) else 4
    notes = []
    if not training(w):
        return {"weights": wb * n, "peak": 1.2 * wb * n}, ["inference: 1.2 x the model's memory"]
    if (w.get("optimizer") or "adamw") != "adamw":
        raise Cannot("optimizer %s not mapped" % w.get("optimizer"))
    model, opt, grad = wb * n, 12 * n, wb * n
    s, b, h, L, heads, t = w["seq"], w["batch"], a["hidden"], a["layers"], a["heads"], tp_of(w)
    ck = w.get("checkpointing") or "none"
    if ck == "full":
        act = 2 * s * b * h * L
    elif ck == "selective" or w.get("attention") == "flash":
        act = s * b * h * L * (10 + 24 / t)
        if ck != "selective":
            notes.append("flash attention keeps no score matrix: the selective-recomputation row (no 5as/h term)")
    else:
        act = s * b * h * L * (10 + 24 / t + 5 * heads * s / (h * t))
    z, g = zero_of(w), dp_of(w)
    if z >= 1:
        opt /= g
    if z >= 2:
        grad /= g
    if z >= 3:
        model /= g
    q = {"weights": model, "gradients": grad, "optimizer": opt, "activations": act,
         "model_states": model + grad + opt, "peak": model + grad + opt + act}
    return q, notes


FUNCS = {"llm-analysis": llm_analysis, "accelerate": accelerate_estimate, "deepspeed": deepspeed_estimate,
         "memtracker": memtracker, "eleuther": eleuther}


def version(peer):
    from importlib.metadata import PackageNotFoundError, version as v

    pkg = {"llm-analysis": "llm-analysis", "accelerate": "accelerate", "deepspeed": "deepspeed",
           "memtracker": "torch", "eleuther": None}[peer]
    if pkg is None:
        return "Transformer Math 101 (2023)"
    try:
        return v(pkg)
    except PackageNotFoundError:
        return ""


def timed(fn, case, min_time, max_reps):
    """Calls fn(case) until min_time seconds have passed (at least once, at
    most max_reps times); returns its last answer and nanoseconds per call."""
    if max_reps > 1:
        fn(case)  # warm-up: first imports and caches are not the estimate's cost
    reps, t0 = 0, time.perf_counter_ns()
    while True:
        out = fn(case)
        reps += 1
        el = time.perf_counter_ns() - t0
        if el >= min_time * 1e9 or reps >= max_reps:
            return out, el / reps, reps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of: " + ", ".join(PEERS))
    p.add_argument("--min-time", type=float, default=0.2, help="seconds each (case, peer) is timed for")
    p.add_argument("--max-reps", type=int, default=2000)
    args = p.parse_args(argv)
    peers = [x for x in args.peers.split(",") if x]
    for x in peers:
        if x not in FUNCS:
            sys.exit("peers.py: --peers: unknown peer %r (known: %s)" % (x, ", ".join(PEERS)))
    try:
        with open(args.cases) as f:
            cases = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("peers.py: --cases %s: %s" % (args.cases, e))
    if not isinstance(cases, list):
        sys.exit("peers.py: --cases %s: want a JSON list of cases" % args.cases)
    out = []
    # Import what the peers asked for need once, before anything is timed.
    mods = {"llm-analysis": ["llm_analysis.analysis"], "accelerate": ["accelerate"],
            "deepspeed": ["deepspeed.runtime.zero.stage3"],
            "memtracker": ["torch.distributed._tools.mem_tracker", "torch.distributed._tools.fsdp2_mem_tracker",
                           "torch.distributed.fsdp", "torch.testing._internal.distributed.fake_pg"]}
    for mod in ["transformers"] + [m for x in peers for m in mods.get(x, [])]:
        try:
            __import__(mod)
        except Exception:  # noqa: BLE001 - the peer's own call reports it
            pass
    for peer in peers:
        try:
            ver = version(peer)
            FUNCS[peer]  # noqa: B018
        except Exception as e:  # noqa: BLE001
            ver = "unavailable: %s" % e
        for case in cases:
            r = {"case": case["name"], "peer": peer, "version": ver}
            max_reps = args.max_reps if peer != "memtracker" else 1
            try:
                unexpressed(case)
                if case.get("config_dir"):
                    param_counts(case)  # not timed: the counts a user passes in
                (q, notes), ns, reps = timed(FUNCS[peer], case, args.min_time, max_reps)
                r.update(quantities={k: int(round(v)) for k, v in q.items()}, notes=notes,
                         ns_per_estimate=ns, reps=reps)
            except Cannot as e:
                r["cannot"] = str(e)
            except Exception as e:  # noqa: BLE001
                r["error"] = "%s: %s" % (type(e).__name__, e)
                r["trace"] = traceback.format_exc(limit=3)
            out.append(r)
            print("%-13s %-48s %s" % (peer, case["name"], r.get("cannot") or r.get("error") or
                                      "%.0f ns x %d" % (r["ns_per_estimate"], r["reps"])), file=sys.stderr, flush=True)
    if _world:
        import torch.distributed as dist

        dist.destroy_process_group()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
