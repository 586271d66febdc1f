#!/usr/bin/env python3
"""memval: FSDP2 mixed precision on the CPU, measured (issue 20).

Usage:
    python3 fsdp_mp.py --train train.py --job job.json

The job file is {"world": 1 or 2, "jobs": [{"job": <a train.py job: arch,
layer, workload>, "fsdp_mp": "bf16" | "bf16:fp32" | ..., "reshard": true
(zero 3) or false (zero 2)}, ...]}, run one after the other by the same
ranks. The hand-built model of train.py (build_classes) is built in
fp32 on the CPU of each of "world" ranks (torch.multiprocessing, gloo),
each of its layers and then the whole model wrapped with torch 2.x's
torch.distributed.fsdp.fully_shard(mp_policy=MixedPrecisionPolicy(
param_dtype, reduce_dtype), reshard_after_forward=reshard), and one step
of forward, backward and AdamW is run. Rank 0 prints one JSON line per
job:

  shard_param_bytes, shard_param_dtypes   the local shards of the parameters
  shard_grad_bytes, shard_grad_dtypes     the local shards of the gradients
  optim_state_bytes, optim_state_dtypes   AdamW's states (0-dim steps included)
  gathered_dtypes                         the dtypes of the parameters a layer computes with
  layer_gathered_bytes                    one layer's gathered parameters, bytes
  max_gathered_bytes, max_gathered_layers the most parameter bytes (and layers)
                                          gathered at once in forward, root included
  after_forward_gathered_bytes            what is still gathered after the forward
  saved_bytes                             what autograd saved in the forward (train.py's
                                          SavedCounter), leaving out the shards and the
                                          gathered parameters' and buffers' storages

Exit codes: 0 ok, 2 bad job or missing PyTorch, 1 other.
"""

import argparse
import importlib.util
import json
import os
import sys

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def load_train(path):
    spec = importlib.util.spec_from_file_location("memval_train", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def nbytes(t):
    return t.numel() * t.element_size()


def local(t):
    return t.to_local() if hasattr(t, "to_local") else t


def rank_main(rank, world, port, train_path, jobs, out):
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        tr = load_train(train_path)
        results = [run_one(torch, tr, job, world) for job in jobs]
        if rank == 0:
            with open(out, "w") as f:
                for r in results:
                    f.write(json.dumps(r) + "\n")
    finally:
        dist.destroy_process_group()


def run_one(torch, tr, job, world):
    """One job on this rank: the measurements above."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from torch.distributed.tensor import DTensor

    inner = job["job"]
    a, layer = inner["arch"], inner.get("layer")
    w = tr.normalize_workload(dict(inner["workload"]))
    if w["precision"] != "fp32":
        raise tr.JobError("fsdp_mp.py builds the model in fp32 (the shards' dtype); got precision %s" % w["precision"])
    p, _, r = job["fsdp_mp"].partition(":")
    mp = MixedPrecisionPolicy(param_dtype=getattr(torch, DTYPES[p]), reduce_dtype=getattr(torch, DTYPES[r or p]))
    torch.manual_seed(int(inner.get("seed") or 0))
    model = tr.build_classes(torch)(a, w, layer, "cpu")
    for blk in model.h:
        fully_shard(blk, mp_policy=mp, reshard_after_forward=job["reshard"])
    fully_shard(model, mp_policy=mp, reshard_after_forward=job["reshard"])
    model.train()

    # FSDP2 swaps a module's parameters for the gathered ones and back:
    # read them from the modules each time
    units = [lambda blk=blk: list(blk.parameters()) for blk in model.h]
    units.append(lambda: [q for n, q in model.named_parameters() if not n.startswith("h.")])  # the root's own
    res = {"gathered_dtypes": set(), "layer_gathered_bytes": 0, "max_gathered_bytes": 0, "max_gathered_layers": 0}
    # the gathered parameters autograd saves are weights, not
    # activations: the hooks add their storages to the counter's
    # exclusions before the unit computes
    # shards and buffers (the causal mask) are not activations, as in train.py
    exclude = {tr.storage_key(local(q))[0] for q in list(model.parameters()) + list(model.buffers())}
    gathered_now = {}

    def gathered():
        n, layers = 0, 0
        for i, u in enumerate(units):
            g = [q for q in u() if not isinstance(q, DTensor)]
            n += sum(nbytes(q) for q in g)
            if g and i < len(model.h):
                layers += 1
        return n, layers

    def pre(mod, args):
        qs = list(mod.parameters())
        res["gathered_dtypes"].update(str(q.dtype).replace("torch.", "") for q in qs)
        res["layer_gathered_bytes"] = sum(nbytes(q) for q in qs if not isinstance(q, DTensor))
        gathered_now[mod] = {tr.storage_key(q)[0] for q in qs if not isinstance(q, DTensor)}
        exclude.update(gathered_now[mod])
        n, layers = gathered()
        res["max_gathered_bytes"] = max(res["max_gathered_bytes"], n)
        res["max_gathered_layers"] = max(res["max_gathered_layers"], layers)

    def root_pre(mod, args):
        gathered_now[mod] = {tr.storage_key(q)[0] for q in units[-1]() if not isinstance(q, DTensor)}
        exclude.update(gathered_now[mod])

    def post(mod, args, out):
        # resharded after forward, a gathered storage's address may be
        # reused by an activation: no longer excluded
        exclude.difference_update(gathered_now.pop(mod, ()))

    for blk in model.h:
        blk.register_forward_pre_hook(pre)
        blk.register_forward_hook(post)
    model.register_forward_pre_hook(root_pre)

    counter = tr.SavedCounter(torch, exclude)
    gen = torch.Generator().manual_seed(int(inner.get("seed") or 0))
    ids = torch.randint(a["vocab"], (w["batch"], w["seq"]), generator=gen)
    with counter.hooks():
        loss, logits = model(ids)
    res["after_forward_gathered_bytes"] = gathered()[0]
    res["saved_bytes"] = counter.bytes
    del logits
    loss.backward()
    res["shard_param_bytes"] = sum(nbytes(local(q)) for q in model.parameters())
    res["shard_param_dtypes"] = sorted({str(local(q).dtype).replace("torch.", "") for q in model.parameters()})
    res["shard_grad_bytes"] = sum(nbytes(local(q.grad)) for q in model.parameters())
    res["shard_grad_dtypes"] = sorted({str(local(q.grad).dtype).replace("torch.", "") for q in model.parameters()})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    opt.step()
    sb, sd = 0, set()
    for st in opt.state.values():
        for v in st.values():
            if torch.is_tensor(v):
                sb += nbytes(local(v))
                sd.add(str(v.dtype).replace("torch.", ""))
    res["optim_state_bytes"], res["optim_state_dtypes"] = sb, sorted(sd)
    res["gathered_dtypes"] = sorted(res["gathered_dtypes"])
    res["world"], res["torch"] = world, torch.__version__
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="scenarios/train.py")
    ap.add_argument("--job", required=True, help="the job JSON file")
    args = ap.parse_args(argv)
    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError:
        sys.stderr.write("memval: fsdp_mp.py needs PyTorch\n")
        return 2
    with open(args.job) as f:
        spec = json.load(f)
    world, jobs = int(spec.get("world") or 1), spec.get("jobs") or []
    bad = [j.get("fsdp_mp") for j in jobs if str(j.get("fsdp_mp", "")).split(":")[0] not in ("bf16", "fp16")]
    if world not in (1, 2) or not jobs or bad:
        sys.stderr.write("memval: fsdp_mp.py: world must be 1 or 2, jobs not empty and each fsdp_mp "
                         "bf16[:REDUCE] or fp16[:REDUCE] (got world %r, fsdp_mp %r)\n" % (world, bad))
        return 2
    out = args.job + ".out.json"
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if world == 1:
        rank_main(0, 1, port, args.train, jobs, out)
    else:
        mp.spawn(rank_main, args=(world, port, args.train, jobs, out), nprocs=world, join=True)
    with open(out) as f:
        print(f.read(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
