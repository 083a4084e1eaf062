"""Light train functions for the launcher's tests: real ranks, real gloo, no model to load.

They have the train functions' signature (`start, rows, out_dir, config, progress`) so that
`training.rank` runs them as it runs a stage; `config` is any config class (unused).
"""

from __future__ import annotations

import time
from typing import Any

from training.results import TrainResult


def _group(timeout_s: float | None = None) -> Any:
    """The gloo group; with `timeout_s`, a collective a peer never joins raises after that."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s) if timeout_s else None
        dist.init_process_group("gloo", timeout=timeout)
    return dist


def train_all_reduce_forever(start: str, rows: list, out_dir: str, config: Any, progress: Any):
    """All-reduce a tensor each step (every rank in lock step, like DDP) and never finish."""
    import torch

    dist = _group()
    step = 0
    while True:
        total = torch.ones(1)
        dist.all_reduce(total)
        step += 1
        if progress:
            progress(step, 0, {"world": float(total.item())})
        time.sleep(0.2)


def train_fails_on_rank_1(start: str, rows: list, out_dir: str, config: Any, progress: Any):
    """Rank 1 raises after the group formed; rank 0 waits in an all-reduce for it."""
    import torch

    dist = _group()
    if dist.get_rank() == 1:
        raise ValueError("rows of rank 1 are unreadable")
    dist.all_reduce(torch.ones(1))
    return TrainResult(output_dir=out_dir, metrics={})


def fsdp2_step(model: Any, batch: Any) -> None:
    """One SGD step (lr 0.1) of the causal LM loss on `batch`: the same on each rank."""
    import torch

    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model(input_ids=batch, labels=batch).loss.backward()
    optimiser.step()


def fsdp2_batch() -> Any:
    import torch

    return torch.arange(2, 34).reshape(2, 16)


def train_fsdp2_and_save(start: str, rows: list, out_dir: str, config: Any, progress: Any):
    """Shard `start` with torch's FSDP2 (`fully_shard`, what accelerate applies on GPUs) over
    gloo, take one step, and save through `training.saving` on every rank."""
    import torch
    from accelerate import Accelerator
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from training.models import load_tokenizer
    from training.saving import is_sharded, save_causal_lm

    # A save that is not collective hangs in an all-gather (rank 0's heartbeat goes on, so the
    # stall limit never fires): the group's timeout turns that into a rank's error.
    dist = _group(timeout_s=30)
    accelerator = Accelerator(cpu=True)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32)
    for block in model.transformer.h:
        fully_shard(block)
    fully_shard(model)
    fsdp2_step(model, fsdp2_batch())
    local = sum(p.to_local().numel() for p in model.parameters() if isinstance(p, DTensor))
    sharded = is_sharded(model, accelerator)
    if progress:
        progress(1, 1, {})
    save_causal_lm(model, load_tokenizer(start), out_dir, accelerator)
    dist.barrier()
    return TrainResult(
        output_dir=out_dir,
        metrics={"sharded": sharded, "local_params": local, "rank": dist.get_rank()},
    )
